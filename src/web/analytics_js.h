// The browser library (sdk/js), minified, as built when this binary was: it holds the settings
// placeholder kSettingsPlaceholder exactly once (sdk/js/build.mjs checks), where WebEndpoints
// writes each source's settings document. Thread-safe (static, immutable bytes).
#pragma once

#include <string_view>

namespace sy::web {

inline constexpr std::string_view kSettingsPlaceholder = "\"@@SWITCHYARD_SETTINGS@@\"";

std::string_view AnalyticsJsBundle();

}  // namespace sy::web
