// One spdlog logger per module ("ingest", "log", …), key=value context in messages.
// Levels by consequence: ERROR = data loss or operator action needed; WARN = degraded but
// self-healing; INFO = lifecycle; DEBUG = per-request detail. No payloads or personal data.
//
// Hot paths (anything a client or a failing disk can trigger at will: accept errors, request
// errors, retries) log through SY_LOG_RATE_LIMITED, never directly: a condition that repeats a
// thousand times a second must not turn into gigabytes of log.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "base/clock.h"

namespace sy {

// Returns the module's logger, creating it (stderr, shared format) on first use. Thread-safe.
// Each module's .cc keeps it behind a file-local `Logger()` (named so, not `Log()`, so that it
// does not read like the event log).
std::shared_ptr<spdlog::logger> ModuleLogger(const std::string& module);

// Sets the level of every module logger ("debug", "info", "warn", "error", "off").
void SetLogLevel(const std::string& level);

// Lets at most `lines` lines through per `interval` (a fixed window that starts with the first
// line after the previous window ended); the lines it holds back are counted, and the count is
// handed to the next line let through so that it can say how many were suppressed.
// Thread-safe (a mutex: the cost is paid per call, which is cheap next to formatting a line).
class LogRateLimiter {
 public:
  static constexpr int kDefaultLines = 10;
  static constexpr std::chrono::milliseconds kDefaultInterval{10'000};

  explicit LogRateLimiter(int lines = kDefaultLines,
                          std::chrono::milliseconds interval = kDefaultInterval,
                          const Clock* clock = SystemClock::Get())
      : lines_(lines), interval_ns_(interval.count() * 1'000'000), clock_(clock) {}

  // True when this line may be logged. Then `*suppressed` is the number of lines held back
  // since the previous line let through (0 when none); otherwise it is left alone.
  bool Allow(uint64_t* suppressed);

 private:
  const int lines_;
  const int64_t interval_ns_;
  const Clock* clock_;
  std::mutex mu_;
  int64_t window_start_ns_ = 0;  // guarded by mu_
  int used_ = 0;                 // lines let through in this window; guarded by mu_
  uint64_t held_back_ = 0;       // guarded by mu_
  bool started_ = false;         // guarded by mu_
};

}  // namespace sy

// Logs like `logger->level(fmt, args...)`, at most LogRateLimiter::kDefaultLines lines per
// 10 s from this call site; a line let through after others were held back ends with
// " suppressed=K". Usage: SY_LOG_RATE_LIMITED(Logger(), warn, "accept failed error={}", msg);
#define SY_LOG_RATE_LIMITED(logger, lvl, ...)                                              \
  do {                                                                                     \
    static ::sy::LogRateLimiter sy_log_limiter_;                                           \
    uint64_t sy_log_suppressed_ = 0;                                                       \
    if ((logger)->should_log(::spdlog::level::lvl) &&                                      \
        sy_log_limiter_.Allow(&sy_log_suppressed_)) {                                      \
      if (sy_log_suppressed_ == 0) {                                                       \
        (logger)->lvl(__VA_ARGS__);                                                        \
      } else {                                                                             \
        (logger)->lvl("{} suppressed={}", ::fmt::format(__VA_ARGS__), sy_log_suppressed_); \
      }                                                                                    \
    }                                                                                      \
  } while (0)
