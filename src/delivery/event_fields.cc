#include "delivery/event_fields.h"

#include <cmath>
#include <cstdlib>

namespace sy::delivery {

namespace json = boost::json;

const json::value* FieldAt(const json::object& o, std::initializer_list<std::string_view> path) {
  const json::object* cur = &o;
  const json::value* v = nullptr;
  for (auto key : path) {
    if (cur == nullptr) return nullptr;
    v = cur->if_contains(key);
    if (v == nullptr) return nullptr;
    cur = v->is_object() ? &v->as_object() : nullptr;
  }
  return v;
}

std::string FieldString(const json::object& o, std::initializer_list<std::string_view> path) {
  const json::value* v = FieldAt(o, path);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : "";
}

std::optional<double> NumberOf(const json::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_number()) return v->to_number<double>();
  if (v->is_string()) {
    const std::string s(v->as_string());
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) return d;
  }
  return std::nullopt;
}

std::optional<int64_t> CountOf(const json::value* v) {
  std::optional<double> d = NumberOf(v);
  constexpr double kExact = 9007199254740992.0;  // 2^53: every integer up to it is a double
  if (!d || !(std::fabs(*d) <= kExact) || std::trunc(*d) != *d) return std::nullopt;
  return static_cast<int64_t>(*d);
}

std::string IdText(const json::value* v) {
  if (v == nullptr) return "";
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_int64()) return std::to_string(v->as_int64());
  if (v->is_uint64()) return std::to_string(v->as_uint64());
  return "";
}

bool IsPathSegment(std::string_view s) {
  if (s.empty() || s == "." || s == "..") return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_' || c == '.'))
      return false;
  }
  return true;
}

size_t RestoreZerosReadAsNaN(json::value& v) {
  // Recursion depth is bounded by ingest's max_json_depth.
  switch (v.kind()) {
    case json::kind::double_:
      if (std::isnan(v.get_double())) {
        v = 0.0;
        return 1;
      }
      return 0;
    case json::kind::array: {
      size_t n = 0;
      for (auto& e : v.get_array())
        n += RestoreZerosReadAsNaN(e);
      return n;
    }
    case json::kind::object: {
      size_t n = 0;
      for (auto& kv : v.get_object())
        n += RestoreZerosReadAsNaN(kv.value());
      return n;
    }
    default:
      return 0;
  }
}

void SetIfNotEmpty(json::object& o, std::string_view key, const std::string& value) {
  if (!value.empty()) o[key] = value;
}

}  // namespace sy::delivery
