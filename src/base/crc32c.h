// CRC-32C (Castagnoli), as used by the log's record framing. Hardware-accelerated with SSE4.2
// when the CPU has it, table-driven otherwise. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sy::crc32c {

// Extend `crc` (of earlier bytes) with `n` more bytes. Value(data) == Extend(0, data, n).
uint32_t Extend(uint32_t crc, const void* data, size_t n);
inline uint32_t Value(const void* data, size_t n) {
  return Extend(0, data, n);
}
inline uint32_t Value(std::string_view s) {
  return Extend(0, s.data(), s.size());
}

}  // namespace sy::crc32c
