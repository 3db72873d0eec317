// Declarative settings tables. Each destination declares its `settings:` keys once, each bound to
// a typed field of its own settings struct:
//
//   struct WebhookSettings { std::string url; bool batch = false; int64_t max_events = 0; };
//   SettingsTable<WebhookSettings>()
//       .Url("url", &WebhookSettings::url, "where events are POSTed").Required()
//       .Bool("batch", &WebhookSettings::batch, "send a JSON array").Default("false")
//       .Int("max_events", &WebhookSettings::max_events, "events per request")
//           .Default("100").Range(1, 10'000);
//
// ParseSettings checks a config's raw settings against the table and fills the struct: an
// unknown (misspelt) key, a wrong type, a missing `Required()` key, a value outside `Range`/`Min`
// or not in an enum's values is an error naming "<file>:<line>: <path>.<key>: <problem>", all of
// them at once, one per line. A key not given takes the table's `Default`, the one place a
// default is written (with none, the field keeps its initialiser: give settings structs no
// initialisers but zeros, so `switchyard destinations` and the docs tell the truth). Code reads the
// struct's fields, so it cannot ask for a key the table does not declare. The same table renders
// help text, `switchyard destinations` and docs/destinations/.
//
// Plain values; a table is immutable once built and safe to share between threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/status.h"
#include "config/config.h"

namespace sy::delivery {

enum class SettingType {
  kString,
  kSecret,  // a string never logged or printed
  kUrl,     // http:// or https:// URL
  kInt,
  kBool,
  kDurationMs,  // "500ms", "30s"; bound to an int64_t of milliseconds
  kEnum,        // one of `allowed`
  kStringMap,   // {Header: value}
  kStringList,  // [a, b]; each item one of `allowed` when that is not empty
  kJson,        // any mapping or list, nested (or JSON text); bound to a std::string of JSON text,
                // which the destination's factory parses and checks itself (the mapped `http`
                // destination's `mappings`)
};

// One row of a table, as the docs, the CLI and the conformance suite read it.
struct SettingSpec {
  std::string name;
  SettingType type = SettingType::kString;
  bool required = false;
  std::string default_value;  // as written in YAML; "" = none
  std::string description;
  std::optional<int64_t> min, max;   // kInt; kDurationMs (in ms)
  std::vector<std::string> allowed;  // kEnum's values; kStringList's allowed items
};

using SettingValue = std::variant<std::string, int64_t, bool, std::map<std::string, std::string>,
                                  std::vector<std::string>>;

// Where raw settings came from, to name them in errors: "<file>:<line>: <path>.<key>: …" with
// the key's own line, or `line` (the destination entry's) for a missing key.
struct SettingsOrigin {
  std::string file;
  std::string path;  // e.g. "destinations[0].settings"
  int line = 0;
};

// "string", "secret", "url", "integer", "bool", "duration", "enum", "mapping", "list", "json".
std::string_view SettingTypeName(SettingType type);

// The type-erased core of ParseSettings: one value per spec, in the table's order (nullopt: not
// given and no default), or every error.
Result<std::vector<std::optional<SettingValue>>> ParseSettingValues(
    const std::vector<SettingSpec>& specs, const std::vector<config::RawSetting>& raw,
    const SettingsOrigin& origin);

// Checks a table's own declarations: names unique and non-empty, a description for each, no
// default on a required key, every default valid for its row (type, range, enum). Run by the
// destination conformance suite for every built-in type.
Status CheckSettingsTable(const std::vector<SettingSpec>& specs);

// Help text: one line per setting ("  url (url, required): where events are POSTed").
std::string SettingsHelp(const std::vector<SettingSpec>& specs);

// A settings table bound to the fields of S. Each type method adds a row; Required, Default,
// Range, Min and Items qualify the row added last. The field's C++ type must match the setting
// type (std::string for String/Secret/Url/Enum/Json, int64_t for Int/Duration, bool, std::map,
// std::vector<std::string>): a mismatch does not compile.
template <typename S>
class SettingsTable {
 public:
  using StringMap = std::map<std::string, std::string>;
  using StringList = std::vector<std::string>;

  SettingsTable& String(std::string name, std::string S::*field, std::string description) {
    return Add(std::move(name), SettingType::kString, field, std::move(description));
  }
  SettingsTable& Secret(std::string name, std::string S::*field, std::string description) {
    return Add(std::move(name), SettingType::kSecret, field, std::move(description));
  }
  SettingsTable& Url(std::string name, std::string S::*field, std::string description) {
    return Add(std::move(name), SettingType::kUrl, field, std::move(description));
  }
  SettingsTable& Int(std::string name, int64_t S::*field, std::string description) {
    return Add(std::move(name), SettingType::kInt, field, std::move(description));
  }
  SettingsTable& Bool(std::string name, bool S::*field, std::string description) {
    return Add(std::move(name), SettingType::kBool, field, std::move(description));
  }
  SettingsTable& Duration(std::string name, int64_t S::*field, std::string description) {
    return Add(std::move(name), SettingType::kDurationMs, field, std::move(description));
  }
  SettingsTable& Enum(std::string name, std::string S::*field, std::vector<std::string> allowed,
                      std::string description) {
    Add(std::move(name), SettingType::kEnum, field, std::move(description));
    specs_.back().allowed = std::move(allowed);
    return *this;
  }
  SettingsTable& Map(std::string name, StringMap S::*field, std::string description) {
    return Add(std::move(name), SettingType::kStringMap, field, std::move(description));
  }
  SettingsTable& List(std::string name, StringList S::*field, std::string description) {
    return Add(std::move(name), SettingType::kStringList, field, std::move(description));
  }

  SettingsTable& Json(std::string name, std::string S::*field, std::string description) {
    return Add(std::move(name), SettingType::kJson, field, std::move(description));
  }

  SettingsTable& Required() {
    specs_.back().required = true;
    return *this;
  }
  SettingsTable& Default(std::string yaml_value) {
    specs_.back().default_value = std::move(yaml_value);
    return *this;
  }
  SettingsTable& Range(int64_t min, int64_t max) {
    specs_.back().min = min;
    specs_.back().max = max;
    return *this;
  }
  SettingsTable& Min(int64_t min) {
    specs_.back().min = min;
    return *this;
  }
  // A list's allowed items.
  SettingsTable& Items(std::vector<std::string> allowed) {
    specs_.back().allowed = std::move(allowed);
    return *this;
  }

  const std::vector<SettingSpec>& specs() const { return specs_; }

  // Fills an S from the table's defaults and `raw`; see the header comment.
  Result<S> Parse(const std::vector<config::RawSetting>& raw, const SettingsOrigin& origin) const {
    SY_ASSIGN_OR_RETURN(auto values, ParseSettingValues(specs_, raw, origin));
    S out{};
    for (size_t i = 0; i < values.size(); ++i)
      if (values[i]) assign_[i](out, std::move(*values[i]));
    return out;
  }

 private:
  template <typename T>
  SettingsTable& Add(std::string name, SettingType type, T S::*field, std::string description) {
    SettingSpec spec;
    spec.name = std::move(name);
    spec.type = type;
    spec.description = std::move(description);
    specs_.push_back(std::move(spec));
    assign_.push_back([field](S& s, SettingValue&& v) { s.*field = std::get<T>(std::move(v)); });
    return *this;
  }

  std::vector<SettingSpec> specs_;
  std::vector<std::function<void(S&, SettingValue&&)>> assign_;
};

template <typename S>
Result<S> ParseSettings(const SettingsTable<S>& table, const std::vector<config::RawSetting>& raw,
                        const SettingsOrigin& origin) {
  return table.Parse(raw, origin);
}

}  // namespace sy::delivery
