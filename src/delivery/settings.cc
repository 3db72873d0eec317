#include "delivery/settings.h"

#include <sstream>

#include "base/time_format.h"

namespace sy::delivery {
namespace {

template <typename T>
T Get(const std::map<std::string, SettingValue, std::less<>>& m, std::string_view key) {
  auto it = m.find(key);
  if (it == m.end()) return T{};
  if (const T* v = std::get_if<T>(&it->second)) return *v;
  return T{};
}

std::string_view TypeName(SettingType t) {
  switch (t) {
    case SettingType::kString:
      return "string";
    case SettingType::kSecret:
      return "secret";
    case SettingType::kUrl:
      return "url";
    case SettingType::kInt:
      return "integer";
    case SettingType::kBool:
      return "bool";
    case SettingType::kDurationMs:
      return "duration";
    case SettingType::kStringMap:
      return "mapping";
    case SettingType::kStringList:
      return "list";
  }
  return "?";
}

// Converts one scalar to the spec's type; returns the problem, or "" on success.
std::string ConvertScalar(const SettingSpec& spec, const std::string& s, SettingValue* out) {
  switch (spec.type) {
    case SettingType::kString:
    case SettingType::kSecret:
      *out = s;
      return "";
    case SettingType::kUrl:
      if (!(s.starts_with("http://") || s.starts_with("https://")) || s.size() < 10) {
        return "expected an http:// or https:// URL";
      }
      *out = s;
      return "";
    case SettingType::kInt: {
      try {
        size_t used = 0;
        int64_t v = std::stoll(s, &used);
        if (used != s.size()) return "expected an integer";
        *out = v;
        return "";
      } catch (...) {
        return "expected an integer";
      }
    }
    case SettingType::kBool:
      if (s == "true") {
        *out = true;
      } else if (s == "false") {
        *out = false;
      } else {
        return "expected true or false";
      }
      return "";
    case SettingType::kDurationMs: {
      auto v = ParseDurationMs(s);
      if (!v) return "expected a duration such as 500ms, 30s, 5m";
      *out = *v;
      return "";
    }
    case SettingType::kStringMap:
      return "expected a mapping";
    case SettingType::kStringList:
      return "expected a list";
  }
  return "unsupported type";
}

}  // namespace

std::string Settings::String(std::string_view key) const {
  return Get<std::string>(values_, key);
}
int64_t Settings::Int(std::string_view key) const {
  return Get<int64_t>(values_, key);
}
bool Settings::Bool(std::string_view key) const {
  return Get<bool>(values_, key);
}
std::map<std::string, std::string> Settings::StringMap(std::string_view key) const {
  return Get<std::map<std::string, std::string>>(values_, key);
}
std::vector<std::string> Settings::StringList(std::string_view key) const {
  return Get<std::vector<std::string>>(values_, key);
}

Result<Settings> ParseSettings(const SettingsTable& table,
                               const std::vector<config::RawSetting>& raw, const std::string& file,
                               const std::string& path, int section_line) {
  std::ostringstream errors;
  auto error = [&](int line, const std::string& key, const std::string& problem) {
    errors << file << ":" << line << ": " << path << "." << key << ": " << problem << "\n";
  };
  Settings out;
  for (const auto& spec : table) {
    if (spec.default_value.empty()) continue;
    SettingValue v;
    if (ConvertScalar(spec, spec.default_value, &v).empty()) out.Set(spec.name, std::move(v));
  }
  for (const auto& r : raw) {
    const SettingSpec* spec = nullptr;
    for (const auto& s : table)
      if (s.name == r.key) spec = &s;
    if (!spec) {
      std::string known;
      for (const auto& s : table)
        known += (known.empty() ? "" : ", ") + s.name;
      error(r.line, r.key, "unknown key (known keys: " + known + ")");
      continue;
    }
    SettingValue v;
    std::string problem;
    if (spec->type == SettingType::kStringMap) {
      if (r.kind != config::RawSetting::Kind::kMap) {
        problem = "expected a mapping";
      } else {
        v = std::map<std::string, std::string>(r.map.begin(), r.map.end());
      }
    } else if (spec->type == SettingType::kStringList) {
      if (r.kind != config::RawSetting::Kind::kList) {
        problem = "expected a list";
      } else {
        v = r.list;
      }
    } else if (r.kind != config::RawSetting::Kind::kScalar) {
      problem = "expected a " + std::string(TypeName(spec->type));
    } else {
      problem = ConvertScalar(*spec, r.scalar, &v);
    }
    if (!problem.empty()) {
      error(r.line, r.key, problem);
    } else {
      out.Set(r.key, std::move(v));
    }
  }
  for (const auto& spec : table) {
    if (!spec.required) continue;
    bool given = false;
    for (const auto& r : raw)
      given = given || r.key == spec.name;
    if (!given) error(section_line, spec.name, "required key is missing");
  }
  std::string e = errors.str();
  if (!e.empty()) return InvalidArgument(e);
  return out;
}

std::string SettingsHelp(const SettingsTable& table) {
  std::string out;
  for (const auto& s : table) {
    out += "  " + s.name + " (" + std::string(TypeName(s.type));
    if (s.required) out += ", required";
    if (!s.default_value.empty()) out += ", default " + s.default_value;
    out += "): " + s.description + "\n";
  }
  return out;
}

}  // namespace sy::delivery
