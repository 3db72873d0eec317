#include "destinations/flaky/flaky.h"

#include <map>

namespace sy::destinations {
namespace {

class Flaky final : public delivery::Destination {
 public:
  Flaky(std::vector<std::string> pattern, int64_t retry_after_ms, size_t max_events)
      : pattern_(std::move(pattern)), retry_after_ms_(retry_after_ms), max_events_(max_events) {}

  delivery::DestinationLimits limits() const override { return {max_events_, 64u << 20}; }
  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent>) const override {
    return {};
  }
  std::optional<std::vector<delivery::Outcome>> DeliverInProcess(
      std::span<const delivery::RoutedEvent> batch) override {
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

namespace {

struct FlakySettings {
  std::vector<std::string> pattern;
  int64_t retry_after_ms = 0;
  int64_t max_events = 0;
};

}  // namespace

delivery::DestinationType FlakyType() {
  using S = FlakySettings;
  auto t = delivery::MakeDestinationType<S>(
      "flaky", "Flaky", "Test destination: answers ok / retry / reject per attempt, by pattern.",
      delivery::SettingsTable<S>()
          .List("pattern", &S::pattern,
                "outcome per attempt of each event: ok, retry or reject; the last repeats "
                "(empty: [ok])")
          .Items({"ok", "retry", "reject"})
          .Duration("retry_after", &S::retry_after_ms,
                    "Retry-After hint sent with each retry (0: none)")
          .Default("0ms")
          .Min(0)
          .Int("max_events", &S::max_events, "events per request")
          .Default("100")
          .Min(1),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        std::vector<std::string> pattern = s.pattern;
        if (pattern.empty()) pattern = {"ok"};
        return std::unique_ptr<delivery::Destination>(
            new Flaky(std::move(pattern), s.retry_after_ms, static_cast<size_t>(s.max_events)));
      });
  t.support = {"all six (scripted answers)", "in-process", "n/a", "n/a"};
  return t;
}

}  // namespace sy::destinations
