#include "event/raw_json.h"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// Index of the first '"' or '\\' at or after `i`, or t.size(). 16 bytes at a time with SSE2
// (every x86-64 has it); JSON strings in events are mostly short and escape-free.
size_t FindQuoteOrBackslash(std::string_view t, size_t i) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  while (i + 16 <= t.size()) {
    __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(t.data() + i));
    int mask = _mm_movemask_epi8(
        _mm_or_si128(_mm_cmpeq_epi8(chunk, quote), _mm_cmpeq_epi8(chunk, backslash)));
    if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
    i += 16;
  }
#endif
  while (i < t.size() && t[i] != '"' && t[i] != '\\')
    ++i;
  return i;
}

// `i` at an opening quote; returns the index just past the closing quote.
size_t SkipString(std::string_view t, size_t i) {
  ++i;
  while (true) {
    i = FindQuoteOrBackslash(t, i);
    if (i >= t.size()) return t.size();
    if (t[i] == '"') return i + 1;
    i += 2;  // a backslash and the character it escapes
  }
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
