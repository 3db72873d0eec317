#include "delivery/event_fields.h"

#include <cmath>

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
