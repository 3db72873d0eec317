// The browser library (sdk/js), minified, as built when this binary was: it holds the settings
// placeholder kSettingsPlaceholder exactly once (sdk/js/build.mjs checks), where WebEndpoints
// writes each source's settings document. Thread-safe (static, immutable bytes).
#pragma once

#include <string_view>

namespace sy::web {

inline constexpr std::string_view kSettingsPlaceholder = "\"@@SWITCHYARD_SETTINGS@@\"";

std::string_view AnalyticsJsBundle();

// The browser integrations (sdk/js/src/integrations/*.js), each minified on its own, as one text:
// for each, a line "@@SY_INTEGRATION <id>" then its code (which registers the integration in
// window.__syIntegrations for the library to find). Thread-safe (static, immutable bytes).
inline constexpr std::string_view kIntegrationMarker = "@@SY_INTEGRATION ";
std::string_view AnalyticsJsIntegrations();

}  // namespace sy::web
