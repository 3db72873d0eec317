#include "delivery/settings.h"

#include <boost/json.hpp>

#include <algorithm>
#include <set>
#include <sstream>

#include "base/time_format.h"

namespace sy::delivery {
namespace {

std::string JoinAllowed(const std::vector<std::string>& allowed) {
  std::string out;
  for (const auto& a : allowed)
    out += (out.empty() ? "" : ", ") + a;
  return out;
}

bool IsAllowed(const SettingSpec& spec, const std::string& v) {
  return spec.allowed.empty() ||
         std::find(spec.allowed.begin(), spec.allowed.end(), v) != spec.allowed.end();
}

std::string Bound(const SettingSpec& spec, int64_t v) {
  return std::to_string(v) + (spec.type == SettingType::kDurationMs ? "ms" : "");
}

// Converts one scalar to the spec's type and checks its range or values; returns the problem,
// or "" on success.
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
    case SettingType::kEnum:
      if (!IsAllowed(spec, s)) return "expected one of: " + JoinAllowed(spec.allowed);
      *out = s;
      return "";
    case SettingType::kInt:
    case SettingType::kDurationMs: {
      int64_t v = 0;
      if (spec.type == SettingType::kInt) {
        try {
          size_t used = 0;
          v = std::stoll(s, &used);
          if (used != s.size()) return "expected an integer";
        } catch (...) {
          return "expected an integer";
        }
      } else {
        auto ms = ParseDurationMs(s);
        if (!ms) return "expected a duration such as 500ms, 30s, 5m";
        v = *ms;
      }
      if (spec.min && spec.max && (v < *spec.min || v > *spec.max))
        return "out of range [" + Bound(spec, *spec.min) + ", " + Bound(spec, *spec.max) + "]";
      if (spec.min && v < *spec.min) return "must be at least " + Bound(spec, *spec.min);
      if (spec.max && v > *spec.max) return "must be at most " + Bound(spec, *spec.max);
      *out = v;
      return "";
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
    case SettingType::kStringMap:
      return "expected a mapping";
    case SettingType::kStringList:
      return "expected a list";
    case SettingType::kJson: {
      // A scalar here is JSON text (a default, or a value written as a JSON string).
      boost::system::error_code ec;
      boost::json::value v = boost::json::parse(s, ec);
      if (ec || !(v.is_object() || v.is_array())) return "expected a mapping or a list";
      *out = boost::json::serialize(v);
      return "";
    }
  }
  return "unsupported type";
}

// Converts a raw value of any shape to the spec's type; returns the problem, or "".
std::string Convert(const SettingSpec& spec, const config::RawSetting& r, SettingValue* out) {
  if (spec.type == SettingType::kJson) {
    if (r.kind == config::RawSetting::Kind::kScalar) return ConvertScalar(spec, r.scalar, out);
    if (!r.json.empty()) {
      *out = r.json;
      return "";
    }
    // Built in memory without JSON (tests' Map/List): scalars as strings.
    boost::json::value v;
    if (r.kind == config::RawSetting::Kind::kMap) {
      boost::json::object o;
      for (const auto& [k, item] : r.map)
        o[k] = item;
      v = std::move(o);
    } else {
      boost::json::array a;
      for (const auto& item : r.list)
        a.push_back(boost::json::string(item));
      v = std::move(a);
    }
    *out = boost::json::serialize(v);
    return "";
  }
  if (r.kind == config::RawSetting::Kind::kTree) {
    if (spec.type == SettingType::kStringMap) return "expected a mapping of scalars";
    if (spec.type == SettingType::kStringList) return "expected a list of scalars";
  }
  if (spec.type == SettingType::kStringMap) {
    if (r.kind != config::RawSetting::Kind::kMap) return "expected a mapping";
    *out = std::map<std::string, std::string>(r.map.begin(), r.map.end());
    return "";
  }
  if (spec.type == SettingType::kStringList) {
    if (r.kind != config::RawSetting::Kind::kList) return "expected a list";
    for (const auto& item : r.list) {
      if (!IsAllowed(spec, item))
        return "'" + item + "' is not one of: " + JoinAllowed(spec.allowed);
    }
    *out = r.list;
    return "";
  }
  if (r.kind != config::RawSetting::Kind::kScalar) {
    std::string name(SettingTypeName(spec.type));
    return std::string(std::string_view("aeiou").find(name[0]) != std::string_view::npos
                           ? "expected an "
                           : "expected a ") +
           name;
  }
  return ConvertScalar(spec, r.scalar, out);
}

}  // namespace

std::string_view SettingTypeName(SettingType t) {
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
    case SettingType::kEnum:
      return "enum";
    case SettingType::kStringMap:
      return "mapping";
    case SettingType::kStringList:
      return "list";
    case SettingType::kJson:
      return "json";
  }
  return "?";
}

Result<std::vector<std::optional<SettingValue>>> ParseSettingValues(
    const std::vector<SettingSpec>& specs, const std::vector<config::RawSetting>& raw,
    const SettingsOrigin& origin) {
  std::ostringstream errors;
  auto error = [&](int line, const std::string& key, const std::string& problem) {
    errors << origin.file << ":" << line << ": " << origin.path << "." << key << ": " << problem
           << "\n";
  };
  std::vector<std::optional<SettingValue>> values(specs.size());
  std::vector<bool> given(specs.size(), false);
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].default_value.empty()) continue;
    SettingValue v;
    // CheckSettingsTable (the conformance suite) proves every default converts.
    if (ConvertScalar(specs[i], specs[i].default_value, &v).empty()) values[i] = std::move(v);
  }
  for (const auto& r : raw) {
    size_t i = 0;
    while (i < specs.size() && specs[i].name != r.key)
      ++i;
    if (i == specs.size()) {
      std::string known;
      for (const auto& s : specs)
        known += (known.empty() ? "" : ", ") + s.name;
      error(r.line, r.key,
            specs.empty() ? "unknown key (this type has no settings)"
                          : "unknown key (known keys: " + known + ")");
      continue;
    }
    given[i] = true;
    // A value config could not read (it reported it): given, but nothing more to say.
    if (r.kind == config::RawSetting::Kind::kMalformed) continue;
    SettingValue v;
    std::string problem = Convert(specs[i], r, &v);
    if (!problem.empty()) {
      error(r.line, r.key, problem);
    } else {
      values[i] = std::move(v);
    }
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].required && !given[i])
      error(origin.line, specs[i].name, "required key is missing");
  }
  std::string e = errors.str();
  if (!e.empty()) return InvalidArgument(e);
  return values;
}

Status CheckSettingsTable(const std::vector<SettingSpec>& specs) {
  std::string errors;
  std::set<std::string> names;
  for (const auto& s : specs) {
    auto problem = [&](const std::string& p) { errors += s.name + ": " + p + "\n"; };
    if (s.name.empty()) problem("empty name");
    if (!names.insert(s.name).second) problem("declared twice");
    if (s.description.empty()) problem("no description");
    if (s.required && !s.default_value.empty()) problem("required, yet has a default");
    if (s.type == SettingType::kEnum && s.allowed.empty()) problem("an enum without values");
    if (!s.allowed.empty() && s.type != SettingType::kEnum && s.type != SettingType::kStringList)
      problem("allowed values on a type that has none");
    if ((s.min || s.max) && s.type != SettingType::kInt && s.type != SettingType::kDurationMs)
      problem("a range on a type that has none");
    if (s.min && s.max && *s.min > *s.max) problem("min above max");
    if (!s.default_value.empty()) {
      SettingValue v;
      std::string p = ConvertScalar(s, s.default_value, &v);
      if (!p.empty()) problem("default '" + s.default_value + "': " + p);
    }
  }
  if (!errors.empty()) return InvalidArgument(errors);
  return Status::Ok();
}

std::string SettingsHelp(const std::vector<SettingSpec>& specs) {
  std::string out;
  for (const auto& s : specs) {
    out += "  " + s.name + " (" + std::string(SettingTypeName(s.type));
    if (s.required) out += ", required";
    if (!s.default_value.empty()) out += ", default " + s.default_value;
    out += "): " + s.description + "\n";
  }
  return out;
}

}  // namespace sy::delivery
