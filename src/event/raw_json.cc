#include "event/raw_json.h"

#include <cstring>

namespace sy::event {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

size_t SkipSpace(std::string_view t, size_t i) {
  while (i < t.size() && IsSpace(t[i]))
    ++i;
  return i;
}

// `i` at an opening quote; returns the index just past the closing quote.
size_t SkipString(std::string_view t, size_t i) {
  ++i;
  while (i < t.size()) {
    const char* p = static_cast<const char*>(std::memchr(t.data() + i, '"', t.size() - i));
    if (p == nullptr) return t.size();
    size_t q = static_cast<size_t>(p - t.data());
    // The quote is escaped if preceded by an odd number of backslashes.
    size_t b = q;
    while (b > i && t[b - 1] == '\\')
      --b;
    if ((q - b) % 2 == 0) return q + 1;
    i = q + 1;
  }
  return t.size();
}

// `i` at the first character of a value; returns the index just past it.
size_t SkipValue(std::string_view t, size_t i) {
  if (i >= t.size()) return t.size();
  char c = t[i];
  if (c == '"') return SkipString(t, i);
  if (c == '{' || c == '[') {
    int depth = 0;
    while (i < t.size()) {
      char d = t[i];
      if (d == '"') {
        i = SkipString(t, i);
        continue;
      }
      if (d == '{' || d == '[') {
        ++depth;
      } else if (d == '}' || d == ']') {
        if (--depth == 0) return i + 1;
      }
      ++i;
    }
    return t.size();
  }
  // number, true, false, null
  while (i < t.size() && !IsSpace(t[i]) && t[i] != ',' && t[i] != '}' && t[i] != ']')
    ++i;
  return i;
}

}  // namespace

bool SplitObject(std::string_view t, std::vector<RawMember>* members) {
  members->clear();
  size_t i = SkipSpace(t, 0);
  if (i >= t.size() || t[i] != '{') return false;
  i = SkipSpace(t, i + 1);
  if (i < t.size() && t[i] == '}') return true;
  while (i < t.size()) {
    if (t[i] != '"') return false;
    size_t key_end = SkipString(t, i);
    std::string_view key = t.substr(i + 1, key_end - i - 2);
    i = SkipSpace(t, key_end);
    if (i >= t.size() || t[i] != ':') return false;
    i = SkipSpace(t, i + 1);
    size_t v_end = SkipValue(t, i);
    members->push_back({key, t.substr(i, v_end - i)});
    i = SkipSpace(t, v_end);
    if (i >= t.size()) return false;
    if (t[i] == '}') return true;
    if (t[i] != ',') return false;
    i = SkipSpace(t, i + 1);
  }
  return false;
}

bool SplitArray(std::string_view t, std::vector<std::string_view>* elements) {
  elements->clear();
  size_t i = SkipSpace(t, 0);
  if (i >= t.size() || t[i] != '[') return false;
  i = SkipSpace(t, i + 1);
  if (i < t.size() && t[i] == ']') return true;
  while (i < t.size()) {
    size_t end = SkipValue(t, i);
    elements->push_back(t.substr(i, end - i));
    i = SkipSpace(t, end);
    if (i >= t.size()) return false;
    if (t[i] == ']') return true;
    if (t[i] != ',') return false;
    i = SkipSpace(t, i + 1);
  }
  return false;
}

RawKind KindOf(std::string_view v) {
  switch (v.empty() ? 'n' : v.front()) {
    case '{':
      return RawKind::kObject;
    case '[':
      return RawKind::kArray;
    case '"':
      return RawKind::kString;
    case 't':
      return RawKind::kTrue;
    case 'f':
      return RawKind::kFalse;
    case 'n':
      return RawKind::kNull;
    default:
      return RawKind::kNumber;
  }
}

bool PlainString(std::string_view v, std::string_view* content) {
  if (v.size() < 2 || v.front() != '"') return false;
  std::string_view c = v.substr(1, v.size() - 2);
  if (c.find('\\') != std::string_view::npos) return false;
  *content = c;
  return true;
}

}  // namespace sy::event
