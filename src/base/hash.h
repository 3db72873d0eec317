// Stable 128-bit hashing (XXH3) for keys that are persisted, such as dedupe keys.
// Stable across processes, builds and machines. Thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

namespace sy {

struct Hash128 {
  uint64_t lo = 0;
  uint64_t hi = 0;
  bool operator==(const Hash128&) const = default;
};

// Hash of the pair (a, b); the length of `a` is mixed in so ("ab","c") != ("a","bc").
Hash128 HashPair(std::string_view a, std::string_view b);

struct Hash128Hasher {
  size_t operator()(const Hash128& h) const noexcept {
    return static_cast<size_t>(h.lo ^ (h.hi * 0x9E3779B97F4A7C15ull));
  }
};

}  // namespace sy
