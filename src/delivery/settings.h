// Declarative settings tables: each destination declares its `settings:` keys (name, type,
// default, description) once; ParseSettings validates a config's raw settings against the table,
// rejecting unknown keys and wrong types with "<file>:<line>: <path>.<key>: <problem>", and the
// same table renders help text. Plain values; thread-safe to share once built.
#pragma once

#include <cstdint>
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
  kDurationMs,  // "500ms", "30s"
  kStringMap,   // {Header: value}
  kStringList,
};

struct SettingSpec {
  std::string name;
  SettingType type = SettingType::kString;
  bool required = false;
  std::string default_value;  // as written in YAML; "" = none
  std::string description;
};

using SettingsTable = std::vector<SettingSpec>;
using SettingValue = std::variant<std::string, int64_t, bool, std::map<std::string, std::string>,
                                  std::vector<std::string>>;

// Typed values of one destination's settings, defaults filled in. Accessors return the default
// of the type for keys not in the table (a programming error caught by the destination's tests).
class Settings {
 public:
  std::string String(std::string_view key) const;
  int64_t Int(std::string_view key) const;  // also durations (milliseconds)
  bool Bool(std::string_view key) const;
  std::map<std::string, std::string> StringMap(std::string_view key) const;
  std::vector<std::string> StringList(std::string_view key) const;
  bool Has(std::string_view key) const { return values_.find(key) != values_.end(); }

  void Set(std::string key, SettingValue v) { values_[std::move(key)] = std::move(v); }

 private:
  std::map<std::string, SettingValue, std::less<>> values_;
};

// `file` and `path` (e.g. "destinations[0].settings") prefix every error; all errors are
// reported at once, one per line.
Result<Settings> ParseSettings(const SettingsTable& table,
                               const std::vector<config::RawSetting>& raw, const std::string& file,
                               const std::string& path, int section_line);

// Help text: one line per setting ("  url (url, required): where events are POSTed").
std::string SettingsHelp(const SettingsTable& table);

}  // namespace sy::delivery
