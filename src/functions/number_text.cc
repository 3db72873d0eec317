#include "functions/number_text.h"

#include <cstdlib>
#include <unordered_map>
#include <vector>

#include "event/raw_json.h"

namespace sy::functions {
namespace {

// The double a JSON number's text denotes (correctly rounded, as JSON.parse reads it).
double NumberValue(std::string_view text) {
  std::string s(text);
  return std::strtod(s.c_str(), nullptr);
}

// Appends `out` to `dst`, with numbers at paths that `in` also has restored to `in`'s text.
// Recurses only where both are objects or both arrays, so the depth is at most the input's
// (bounded by ingest's max_json_depth).
void Merge(std::string_view in, std::string_view out, std::string* dst) {
  const event::RawKind out_kind = event::KindOf(out);
  const event::RawKind in_kind = event::KindOf(in);
  if (out_kind == event::RawKind::kNumber && in_kind == event::RawKind::kNumber) {
    dst->append(in != out && NumberValue(in) == NumberValue(out) ? in : out);
    return;
  }
  if (out_kind == event::RawKind::kObject && in_kind == event::RawKind::kObject) {
    std::vector<event::RawMember> in_members, out_members;
    if (!event::SplitObject(in, &in_members) || !event::SplitObject(out, &out_members)) {
      dst->append(out);
      return;
    }
    // Keys compared as their raw text: JSON.stringify writes a key's escapes its own way, so a
    // key with escapes may not match (its numbers are then written as the output has them).
    std::unordered_map<std::string_view, std::string_view> by_key;
    by_key.reserve(in_members.size());
    for (const auto& m : in_members)
      by_key[m.key] = m.value;  // a duplicate key: the last, as JSON.parse keeps it
    dst->push_back('{');
    for (size_t i = 0; i < out_members.size(); ++i) {
      if (i) dst->push_back(',');
      dst->push_back('"');
      dst->append(out_members[i].key);
      dst->append("\":");
      auto it = by_key.find(out_members[i].key);
      if (it == by_key.end()) {
        dst->append(out_members[i].value);
      } else {
        Merge(it->second, out_members[i].value, dst);
      }
    }
    dst->push_back('}');
    return;
  }
  if (out_kind == event::RawKind::kArray && in_kind == event::RawKind::kArray) {
    std::vector<std::string_view> in_items, out_items;
    if (!event::SplitArray(in, &in_items) || !event::SplitArray(out, &out_items)) {
      dst->append(out);
      return;
    }
    dst->push_back('[');
    for (size_t i = 0; i < out_items.size(); ++i) {
      if (i) dst->push_back(',');
      if (i < in_items.size()) {
        Merge(in_items[i], out_items[i], dst);
      } else {
        dst->append(out_items[i]);
      }
    }
    dst->push_back(']');
    return;
  }
  dst->append(out);
}

}  // namespace

std::string KeepNumberText(std::string_view input, std::string_view output) {
  if (input == output) return std::string(output);
  std::string out;
  out.reserve(output.size() + 16);
  Merge(input, output, &out);
  return out;
}

}  // namespace sy::functions
