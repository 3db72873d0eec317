#include "destinations/blackhole/blackhole.h"

namespace sy::destinations {
namespace {

class Blackhole final : public delivery::Destination {
 public:
  delivery::DestinationLimits limits() const override { return {10'000, 64u << 20}; }
  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent>) const override {
    return {};
  }
  std::optional<std::vector<delivery::Outcome>> DeliverInProcess(
      std::span<const delivery::RoutedEvent> batch) override {
    return std::vector<delivery::Outcome>(batch.size(), delivery::Outcome::Delivered());
  }
};

}  // namespace

namespace {

struct BlackholeSettings {};

}  // namespace

delivery::DestinationType BlackholeType() {
  using S = BlackholeSettings;
  auto t = delivery::MakeDestinationType<S>(
      "blackhole", "Blackhole", "Accepts every event and discards it (counts only).",
      delivery::SettingsTable<S>(), [](const S&) -> Result<std::unique_ptr<delivery::Destination>> {
        return std::unique_ptr<delivery::Destination>(new Blackhole());
      });
  t.support = {"all six (discarded)", "in-process", "n/a", "n/a"};
  return t;
}

}  // namespace sy::destinations
