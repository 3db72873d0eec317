// Strong types for ids and positions, so an Offset cannot be passed as a count.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

namespace sy {

// Position of a record in the event log. Offsets start at 0 and grow by one per event,
// with no gaps, for the life of a data directory.
class Offset {
 public:
  constexpr Offset() = default;
  constexpr explicit Offset(uint64_t v) : v_(v) {}
  constexpr uint64_t value() const { return v_; }
  constexpr Offset Next() const { return Offset(v_ + 1); }
  constexpr Offset Plus(uint64_t n) const { return Offset(v_ + n); }
  constexpr auto operator<=>(const Offset&) const = default;

 private:
  uint64_t v_ = 0;
};

// Milliseconds since the Unix epoch, UTC.
class TimestampMs {
 public:
  constexpr TimestampMs() = default;
  constexpr explicit TimestampMs(int64_t v) : v_(v) {}
  constexpr int64_t value() const { return v_; }
  constexpr auto operator<=>(const TimestampMs&) const = default;

 private:
  int64_t v_ = 0;
};

}  // namespace sy

template <>
struct std::hash<sy::Offset> {
  size_t operator()(sy::Offset o) const noexcept { return std::hash<uint64_t>{}(o.value()); }
};
