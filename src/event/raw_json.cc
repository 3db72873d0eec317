#include "event/raw_json.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <random>

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

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The code unit of the "XXXX" after a "\\u" at s[i], or -1.
int32_t ReadHex4(std::string_view s, size_t i) {
  if (i + 4 > s.size()) return -1;
  int32_t v = 0;
  for (size_t k = i; k < i + 4; ++k) {
    int d = HexDigit(s[k]);
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

void UnescapeJsonString(std::string_view s, std::string* out) {
  size_t i = 0;
  while (i < s.size()) {
    size_t bs = s.find('\\', i);
    if (bs == std::string_view::npos) bs = s.size();
    out->append(s.substr(i, bs - i));
    if (bs + 1 >= s.size()) return;
    char e = s[bs + 1];
    i = bs + 2;
    switch (e) {
      case 'b':
        out->push_back('\b');
        break;
      case 'f':
        out->push_back('\f');
        break;
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'u': {
        int32_t hi = ReadHex4(s, i);
        if (hi < 0) return;
        i += 4;
        uint32_t cp = static_cast<uint32_t>(hi);
        if (hi >= 0xD800 && hi <= 0xDBFF) {
          int32_t lo =
              i + 1 < s.size() && s[i] == '\\' && s[i + 1] == 'u' ? ReadHex4(s, i + 2) : -1;
          if (lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((static_cast<uint32_t>(hi) - 0xD800) << 10) +
                 (static_cast<uint32_t>(lo) - 0xDC00);
            i += 6;
          } else {
            cp = 0xFFFD;
          }
        } else if (hi >= 0xDC00 && hi <= 0xDFFF) {
          cp = 0xFFFD;
        }
        AppendUtf8(cp, out);
        break;
      }
      default:  // '"', '\\', '/'
        out->push_back(e);
    }
  }
}

void DecodedKeys(std::span<const RawMember> members, std::string* storage,
                 std::vector<std::string_view>* keys) {
  storage->clear();
  keys->clear();
  // A decoded key is never longer than its escaped text, so reserving the escaped keys' total
  // length keeps `storage` from moving while views into it are taken.
  size_t escaped_bytes = 0;
  for (const auto& m : members)
    if (m.key.find('\\') != std::string_view::npos) escaped_bytes += m.key.size();
  storage->reserve(escaped_bytes);
  for (const auto& m : members) {
    if (escaped_bytes == 0 || m.key.find('\\') == std::string_view::npos) {
      keys->push_back(m.key);
      continue;
    }
    const size_t start = storage->size();
    UnescapeJsonString(m.key, storage);
    keys->push_back(std::string_view(*storage).substr(start));
  }
}

bool MarkShadowedKeys(std::span<const std::string_view> keys, std::vector<uint8_t>* shadowed) {
  shadowed->assign(keys.size(), 0);
  const size_t n = keys.size();
  bool any = false;
  // Few keys (every ordinary event): comparing each pair is cheaper than hashing.
  constexpr size_t kPairwiseMax = 16;
  if (n <= kPairwiseMax) {
    for (size_t i = 0; i < n; ++i)
      for (size_t j = i + 1; j < n; ++j)
        if (keys[i] == keys[j]) {
          (*shadowed)[i] = 1;
          any = true;
          break;
        }
    return any;
  }
  // Open addressing over key indices, walking from the last key back: a key already in the
  // table is a later duplicate. The seed is random per process so that no one can send keys
  // chosen to collide.
  static const uint64_t seed =
      (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  thread_local std::vector<uint32_t> table;  // index + 1; 0 = empty
  size_t cap = 64;
  while (cap < 2 * n)
    cap *= 2;
  table.assign(cap, 0);
  const size_t mask = cap - 1;
  for (size_t i = n; i-- > 0;) {
    size_t h = static_cast<size_t>(XXH3_64bits_withSeed(keys[i].data(), keys[i].size(), seed));
    for (size_t slot = h & mask;; slot = (slot + 1) & mask) {
      uint32_t e = table[slot];
      if (e == 0) {
        table[slot] = static_cast<uint32_t>(i + 1);
        break;
      }
      if (keys[e - 1] == keys[i]) {
        (*shadowed)[i] = 1;
        any = true;
        break;
      }
    }
  }
  return any;
}

}  // namespace sy::event
