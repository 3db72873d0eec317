#include "delivery/event_fields.h"

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

void SetIfNotEmpty(json::object& o, std::string_view key, const std::string& value) {
  if (!value.empty()) o[key] = value;
}

}  // namespace sy::delivery
