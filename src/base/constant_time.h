// Comparison of secrets (tokens) whose duration does not depend on the bytes compared, so a
// client timing its requests learns nothing about how much of a guessed token was right.
// Thread-safe (pure).
#pragma once

#include <cstddef>
#include <string_view>

namespace sy {

// True when `presented` equals `expected`. Reads every byte of `expected` whatever `presented`
// holds: the time depends only on expected.size() (the secret's length, which is not secret:
// ADMIN_TOKEN is always 32 hex digits). No early exit: differences are OR-ed together.
inline bool ConstantTimeEquals(std::string_view presented, std::string_view expected) {
  unsigned char diff = presented.size() == expected.size() ? 0 : 1;
  const size_t n = presented.size();
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char p = i < n ? static_cast<unsigned char>(presented[i]) : 0;
    diff |= static_cast<unsigned char>(p ^ static_cast<unsigned char>(expected[i]));
  }
  // Read through a volatile so the compiler cannot turn the loop into an early-exit compare.
  volatile unsigned char result = diff;
  return result == 0;
}

}  // namespace sy
