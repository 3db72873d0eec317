#include "base/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>
#include <utility>

namespace sy {
namespace {
std::mutex g_mu;
spdlog::level::level_enum g_level = spdlog::level::info;
}  // namespace

std::shared_ptr<spdlog::logger> ModuleLogger(const std::string& module) {
  std::lock_guard lock(g_mu);
  if (auto existing = spdlog::get(module)) return existing;
  auto logger = spdlog::stderr_color_mt(module);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ [%n] %v", spdlog::pattern_time_type::utc);
  logger->set_level(g_level);
  return logger;
}

void SetLogLevel(const std::string& level) {
  std::lock_guard lock(g_mu);
  g_level = spdlog::level::from_str(level);
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->set_level(g_level); });
}

}  // namespace sy

namespace sy {

bool LogRateLimiter::Allow(uint64_t* suppressed) {
  const int64_t now = clock_->MonotonicNanos();
  std::lock_guard lock(mu_);
  if (!started_ || now - window_start_ns_ >= interval_ns_) {
    started_ = true;
    window_start_ns_ = now;
    used_ = 0;
  }
  if (used_ >= lines_) {
    ++held_back_;
    return false;
  }
  ++used_;
  *suppressed = std::exchange(held_back_, 0);
  return true;
}

}  // namespace sy
