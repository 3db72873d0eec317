#include "event/raw_json.h"

#include <algorithm>
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

// One byte of a nested object or array, outside the 16-byte fast path: updates the string state
// and depth. Returns the index of the next byte to look at; sets *end when the container closes.
size_t StepContainer(std::string_view t, size_t i, bool* in_string, int* depth, size_t* end) {
  char c = t[i];
  if (*in_string) {
    if (c == '\\') return i + 2;  // the backslash and the character it escapes
    if (c == '"') *in_string = false;
    return i + 1;
  }
  if (c == '"') {
    *in_string = true;
  } else if (c == '{' || c == '[') {
    ++*depth;
  } else if ((c == '}' || c == ']') && --*depth == 0) {
    *end = i + 1;
  }
  return i + 1;
}

// `i` at the '{' or '[' opening a container; returns the index just past its closing bracket
// (t.size() if it does not close). With SSE2, 16 bytes at a time: in a block without a backslash,
// which bytes lie inside strings follows from the quote positions alone (a prefix XOR of the
// quote bits), so only brackets outside strings are looked at one by one; a block holding a
// backslash goes byte by byte.
size_t SkipContainer(std::string_view t, size_t i) {
  bool in_string = false;
  int depth = 0;
  size_t end = 0;
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i lower = _mm_set1_epi8(0x20);
  const __m128i open = _mm_set1_epi8('{');   // also '[' once folded with 0x20
  const __m128i close = _mm_set1_epi8('}');  // also ']'
  while (i + 16 <= t.size()) {
    __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(t.data() + i));
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, backslash)) != 0) {
      const size_t stop = i + 16;
      while (i < stop && i < t.size()) {
        i = StepContainer(t, i, &in_string, &depth, &end);
        if (end != 0) return end;
      }
      continue;
    }
    unsigned quotes = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, quote)));
    __m128i folded = _mm_or_si128(chunk, lower);
    unsigned brackets = static_cast<unsigned>(_mm_movemask_epi8(
        _mm_or_si128(_mm_cmpeq_epi8(folded, open), _mm_cmpeq_epi8(folded, close))));
    // Bit k of `inside`: byte k is an opening quote or inside a string.
    unsigned inside = quotes;
    inside ^= inside << 1;
    inside ^= inside << 2;
    inside ^= inside << 4;
    inside ^= inside << 8;
    if (in_string) inside = ~inside;
    inside &= 0xffff;
    for (unsigned outside = brackets & ~inside; outside != 0; outside &= outside - 1) {
      const size_t k = i + static_cast<size_t>(__builtin_ctz(outside));
      if (t[k] == '{' || t[k] == '[') {
        ++depth;
      } else if (--depth == 0) {
        return k + 1;
      }
    }
    in_string = (inside >> 15) & 1;
    i += 16;
  }
#endif
  while (i < t.size()) {
    i = StepContainer(t, i, &in_string, &depth, &end);
    if (end != 0) return end;
  }
  return t.size();
}

// `i` at the first character of a value; returns the index just past it.
size_t SkipValue(std::string_view t, size_t i) {
  if (i >= t.size()) return t.size();
  char c = t[i];
  if (c == '"') return SkipString(t, i);
  if (c == '{' || c == '[') return SkipContainer(t, i);
  // number, true, false, null
  while (i < t.size() && !IsSpace(t[i]) && t[i] != ',' && t[i] != '}' && t[i] != ']')
    ++i;
  return i;
}

// Parses the object starting at t[i] == '{' and appends its members. `value_end(key, j)` returns
// the end of the value starting at t[j]. Returns the index past the '}', or npos.
template <typename ValueEnd>
size_t ParseObject(std::string_view t, size_t i, std::vector<RawMember>* members,
                   ValueEnd value_end) {
  i = SkipSpace(t, i + 1);
  if (i < t.size() && t[i] == '}') return i + 1;
  while (i < t.size()) {
    if (t[i] != '"') return std::string_view::npos;
    size_t key_end = SkipString(t, i);
    std::string_view key = t.substr(i + 1, key_end - i - 2);
    i = SkipSpace(t, key_end);
    if (i >= t.size() || t[i] != ':') return std::string_view::npos;
    i = SkipSpace(t, i + 1);
    size_t v_end = value_end(key, i);
    if (v_end == std::string_view::npos || v_end > t.size()) return std::string_view::npos;
    members->push_back({key, t.substr(i, v_end - i)});
    i = SkipSpace(t, v_end);
    if (i >= t.size()) return std::string_view::npos;
    if (t[i] == '}') return i + 1;
    if (t[i] != ',') return std::string_view::npos;
    i = SkipSpace(t, i + 1);
  }
  return std::string_view::npos;
}

size_t SkipAny(std::string_view t, size_t i) {
  return SkipValue(t, i);
}

}  // namespace

bool SplitObject(std::string_view t, std::vector<RawMember>* members) {
  members->clear();
  size_t i = SkipSpace(t, 0);
  if (i >= t.size() || t[i] != '{') return false;
  return ParseObject(t, i, members, [&](std::string_view, size_t j) { return SkipAny(t, j); }) !=
         std::string_view::npos;
}

bool SplitBatchBody(std::string_view t, std::vector<RawMember>* top, bool* has_batch_array,
                    std::vector<RawItem>* items, std::vector<RawMember>* item_members) {
  top->clear();
  items->clear();
  item_members->clear();
  *has_batch_array = false;
  size_t i = SkipSpace(t, 0);
  if (i >= t.size() || t[i] != '{') return false;
  auto value_end = [&](std::string_view key, size_t j) -> size_t {
    if (key != "batch") return SkipAny(t, j);
    *has_batch_array = false;  // the last "batch" member decides, as for any duplicate key
    items->clear();
    item_members->clear();
    if (j >= t.size() || t[j] != '[') return SkipAny(t, j);
    // The batch array: split each element (and each object element's members) as we go.
    *has_batch_array = true;
    j = SkipSpace(t, j + 1);
    if (j < t.size() && t[j] == ']') return j + 1;
    while (j < t.size()) {
      RawItem item;
      size_t end;
      if (t[j] == '{') {
        item.is_object = true;
        item.first_member = static_cast<uint32_t>(item_members->size());
        end = ParseObject(t, j, item_members,
                          [&](std::string_view, size_t k) { return SkipAny(t, k); });
        if (end == std::string_view::npos) return end;
        item.member_count = static_cast<uint32_t>(item_members->size() - item.first_member);
      } else {
        end = SkipAny(t, j);
      }
      item.text = t.substr(j, end - j);
      items->push_back(item);
      j = SkipSpace(t, end);
      if (j >= t.size()) return std::string_view::npos;
      if (t[j] == ']') return j + 1;
      if (t[j] != ',') return std::string_view::npos;
      j = SkipSpace(t, j + 1);
    }
    return std::string_view::npos;
  };
  return ParseObject(t, i, top, value_end) != std::string_view::npos;
}

namespace {

// A walk over a structural index (see SplitBatchBodyIndexed). Positions past the index read as
// the end of the text, so a truncated index ends the walk instead of reading out of bounds.
class StructuralWalk {
 public:
  StructuralWalk(std::string_view t, std::span<const uint32_t> idx) : t_(t), idx_(idx) {}

  bool done() const { return k_ >= idx_.size(); }
  size_t pos() const { return Pos(k_); }
  char ch() const { return done() ? '\0' : t_[pos()]; }
  void Next() { ++k_; }

  // At the first character of a value: moves past it and returns its end in the text.
  size_t SkipValue() {
    char c = ch();
    if (c == '{' || c == '[') {
      int depth = 0;
      for (; !done(); ++k_) {
        char d = t_[Pos(k_)];
        if (d == '{' || d == '[') {
          ++depth;
        } else if (d == '}' || d == ']') {
          if (--depth == 0) return Pos(k_++) + 1;
        }
      }
      return t_.size();
    }
    // A scalar or a string ends where the next structural character starts, less whitespace.
    ++k_;
    size_t end = pos();
    while (end > 0 && IsSpace(t_[end - 1]))
      --end;
    return end;
  }

  // At '{': appends the object's members; returns the end past '}', or npos. `on_value(key)` is
  // called at each value's first character and returns the value's end (it must move past it).
  template <typename OnValue>
  size_t Object(std::vector<RawMember>* members, OnValue on_value) {
    Next();  // '{'
    if (ch() == '}') return Pos(k_++) + 1;
    while (!done()) {
      if (ch() != '"') return std::string_view::npos;
      size_t key_start = pos();
      size_t key_end = SkipValue();  // past the closing quote
      if (ch() != ':' || key_end < key_start + 2) return std::string_view::npos;
      Next();
      std::string_view key = t_.substr(key_start + 1, key_end - key_start - 2);
      size_t v_start = pos();
      size_t v_end = on_value(key);
      if (v_end == std::string_view::npos || v_end > t_.size() || v_end < v_start) {
        return std::string_view::npos;
      }
      members->push_back({key, t_.substr(v_start, v_end - v_start)});
      if (ch() == '}') return Pos(k_++) + 1;
      if (ch() != ',') return std::string_view::npos;
      Next();
    }
    return std::string_view::npos;
  }

 private:
  size_t Pos(size_t k) const {
    return k < idx_.size() ? std::min<size_t>(idx_[k], t_.size()) : t_.size();
  }

  std::string_view t_;
  std::span<const uint32_t> idx_;
  size_t k_ = 0;
};

}  // namespace

bool SplitBatchBodyIndexed(std::string_view t, std::span<const uint32_t> structurals,
                           std::vector<RawMember>* top, bool* has_batch_array,
                           std::vector<RawItem>* items, std::vector<RawMember>* item_members) {
  top->clear();
  items->clear();
  item_members->clear();
  *has_batch_array = false;
  StructuralWalk w(t, structurals);
  if (w.ch() != '{') return false;
  auto on_value = [&](std::string_view key) -> size_t {
    if (key != "batch") return w.SkipValue();
    *has_batch_array = false;  // the last "batch" member decides, as for any duplicate key
    items->clear();
    item_members->clear();
    if (w.ch() != '[') return w.SkipValue();
    *has_batch_array = true;
    w.Next();  // '['
    if (w.ch() == ']') {
      size_t end = w.pos() + 1;
      w.Next();
      return end;
    }
    while (!w.done()) {
      RawItem item;
      size_t start = w.pos();
      size_t end;
      if (w.ch() == '{') {
        item.is_object = true;
        item.first_member = static_cast<uint32_t>(item_members->size());
        end = w.Object(item_members, [&](std::string_view) { return w.SkipValue(); });
        if (end == std::string_view::npos) return end;
        item.member_count = static_cast<uint32_t>(item_members->size() - item.first_member);
      } else {
        end = w.SkipValue();
      }
      item.text = t.substr(start, end - start);
      items->push_back(item);
      if (w.ch() == ']') {
        size_t array_end = w.pos() + 1;
        w.Next();
        return array_end;
      }
      if (w.ch() != ',') return std::string_view::npos;
      w.Next();
    }
    return std::string_view::npos;
  };
  return w.Object(top, on_value) != std::string_view::npos;
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
