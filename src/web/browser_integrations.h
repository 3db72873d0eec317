// Browser integrations: the vendor tags Switchyard's dynamic JavaScript loads in a visitor's
// browser for destinations in device mode (`mode: device|both`, docs/browser.md). One entry per
// destination type that has a tag; the code of each is sdk/js/src/integrations/<id>.js, bundled
// into a source's script only when one of its destinations uses it.
//
// Two kinds of type:
//   - device-only types (`ga4-gtag`, `meta-pixel`, …): tools reached only through their tag.
//     No server destination exists; `mode: device` is required and the table below is the
//     type's whole settings table (config is checked against it here).
//   - cloud types with a tag (`meta-conversions`, `tiktok`): `mode: both` sends events from the
//     server and from the tag, because the vendor drops the second copy (both carry messageId
//     as the event id). The server's settings table checks the settings; the table below only
//     says which of them the browser may see and adds browser-only keys (`tag_url`).
//
// Browser-safe: every value in the settings document reaches every visitor of the site. A
// setting is copied there only when its row says `browser_safe` (ids the vendor's own tag puts in
// the page); secrets and API tokens never are, whatever the type.
//
// Plain data built once on first use; every function is thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace sy::web {

struct BrowserSetting {
  enum class Kind { kString, kBool, kStringMap, kUrl };
  std::string key;
  Kind kind = Kind::kString;
  bool required = false;
  // True: the value may reach every visitor (copied into the settings document).
  bool browser_safe = true;
  // True: read by the browser integration only; removed from what the server's type checks.
  bool browser_only = true;
  std::string default_value;  // "" = none
  std::string description;
};

struct BrowserIntegration {
  std::string type;          // the destination type, as written in config
  std::string id;            // sdk/js/src/integrations/<id>.js; `integration` in the document
  std::string display_name;  // its name in a call's integrations object (Segment's)
  bool device_only = true;   // false: a server type too; `mode: both` allowed
  std::string tag_url;       // the `tag_url` default; `{key}` takes that setting's value
  std::string consent_hint;  // the consent category docs suggest for it
  std::vector<BrowserSetting> settings;
};

// Every integration, in the order docs list them.
const std::vector<BrowserIntegration>& BrowserIntegrations();

// The integration of a destination type; nullptr when the type has no tag.
const BrowserIntegration* FindBrowserIntegration(std::string_view type);

// True when `type` is a device-only type (no server destination exists).
bool IsDeviceOnlyType(std::string_view type);

// Checks one destination's `mode` against its type, and a device-only type's settings against
// its table. `path` is "destinations[i]". Errors "<file>:<line>: <path>.<key>: <problem>\n",
// concatenated; "" when fine. Cloud types' settings are the server table's to check.
std::string CheckDeviceMode(const config::DestinationConfig& d, const std::string& file,
                            const std::string& path);

// The settings the server's type reads: `d.settings` without the browser-only keys of its
// integration (`tag_url`). For a cloud-mode destination or a type without a tag, all of them.
std::vector<config::RawSetting> CloudSettings(const config::DestinationConfig& d);

// True when a stream delivers this destination's events from the server (mode cloud or both).
inline bool RunsInCloud(const config::DestinationConfig& d) {
  return d.mode != config::DeliveryMode::kDevice;
}

}  // namespace sy::web
