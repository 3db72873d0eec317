#include "base/clock.h"

namespace sy {

TimestampMs SystemClock::Now() const {
  using namespace std::chrono;
  return TimestampMs(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

int64_t SystemClock::MonotonicNanos() const {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

SystemClock* SystemClock::Get() {
  static auto* clock = new SystemClock();
  return clock;
}

}  // namespace sy
