#include "destinations/flaky/flaky.h"

#include <map>

namespace sy::destinations {
namespace {

class Flaky final : public delivery::Destination {
 public:
  Flaky(std::vector<std::string> pattern, int64_t retry_after_ms, size_t max_events)
      : pattern_(std::move(pattern)), retry_after_ms_(retry_after_ms), max_events_(max_events) {}

  delivery::DestinationLimits limits() const override { return {max_events_, 64u << 20}; }
  delivery::EncodedBatch Encode(std::span<const delivery::StoredEvent>) const override {
    return {};
  }
  std::optional<std::vector<delivery::Outcome>> DeliverInProcess(
      std::span<const delivery::StoredEvent> batch) override {
    std::vector<delivery::Outcome> out;
    for (const auto& ev : batch) {
      size_t attempt = attempts_[ev.offset.value()]++;
      const std::string& step = pattern_[std::min(attempt, pattern_.size() - 1)];
      if (step == "ok") {
        out.push_back(delivery::Outcome::Delivered());
      } else if (step == "reject") {
        out.push_back(delivery::Outcome::Rejected("flaky: reject"));
      } else {
        std::optional<int64_t> after;
        if (retry_after_ms_ > 0) after = retry_after_ms_;
        out.push_back(delivery::Outcome::Retry("flaky: retry", after));
      }
    }
    return out;
  }

 private:
  std::vector<std::string> pattern_;
  int64_t retry_after_ms_;
  size_t max_events_;
  std::map<uint64_t, size_t> attempts_;  // per offset; the stream thread only
};

}  // namespace

delivery::DestinationType FlakyType() {
  delivery::DestinationType t;
  t.type = "flaky";
  t.display_name = "Flaky";
  t.description = "Test destination: answers ok / retry / reject per attempt, by pattern.";
  t.settings = {
      {"pattern", delivery::SettingType::kStringList, false, "",
       "outcome per attempt of each event: ok, retry or reject; the last repeats (default [ok])"},
      {"retry_after", delivery::SettingType::kDurationMs, false, "",
       "Retry-After hint sent with each retry"},
      {"max_events", delivery::SettingType::kInt, false, "100", "events per request"},
  };
  t.create = [](const delivery::Settings& s) -> Result<std::unique_ptr<delivery::Destination>> {
    std::vector<std::string> pattern = s.StringList("pattern");
    if (pattern.empty()) pattern = {"ok"};
    for (const auto& p : pattern) {
      if (p != "ok" && p != "retry" && p != "reject")
        return InvalidArgument("pattern: expected ok, retry or reject, got '" + p + "'");
    }
    if (s.Int("max_events") < 1) return InvalidArgument("max_events: must be at least 1");
    return std::unique_ptr<delivery::Destination>(new Flaky(
        std::move(pattern), s.Int("retry_after"), static_cast<size_t>(s.Int("max_events"))));
  };
  return t;
}

}  // namespace sy::destinations
