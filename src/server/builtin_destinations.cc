#include "server/builtin_destinations.h"

#include "destinations/amplitude/amplitude.h"
#include "destinations/blackhole/blackhole.h"
#include "destinations/flaky/flaky.h"
#include "destinations/google_analytics_4/google_analytics_4.h"
#include "destinations/mixpanel/mixpanel.h"
#include "destinations/segment/segment.h"
#include "destinations/slack/slack.h"
#include "destinations/webhook/webhook.h"
#include "warehouse/warehouse_destination.h"

namespace sy::server {

const std::vector<delivery::DestinationType>& BuiltinDestinations() {
  // One line per destination, in alphabetical order.
  // clang-format off
  static const std::vector<delivery::DestinationType> kTypes = {
      destinations::AmplitudeType(),
      destinations::BlackholeType(),
      destinations::FlakyType(),
      destinations::GoogleAnalytics4Type(),
      destinations::MixpanelType(),
      warehouse::PostgresType(),
      destinations::SegmentType(),
      destinations::SlackType(),
      warehouse::SqliteType(),
      destinations::WebhookType(),
  };
  // clang-format on
  return kTypes;
}

const delivery::DestinationType* FindDestinationType(std::string_view type) {
  for (const auto& t : BuiltinDestinations())
    if (t.type == type) return &t;
  return nullptr;
}

namespace {

std::string Path(size_t i) {
  return "destinations[" + std::to_string(i) + "]";
}

}  // namespace

Result<std::unique_ptr<delivery::Destination>> CreateDestination(const config::DestinationConfig& d,
                                                                 const std::string& file) {
  const delivery::DestinationType* t = FindDestinationType(d.type);
  if (!t) return InvalidArgument("unknown destination type '" + d.type + "'");
  SY_ASSIGN_OR_RETURN(auto settings,
                      delivery::ParseSettings(t->settings, d.settings, file, "settings", d.line));
  return t->create(settings);
}

Status ValidateDestinations(const config::Config& config) {
  std::string errors;
  for (size_t i = 0; i < config.destinations.size(); ++i) {
    const auto& d = config.destinations[i];
    const delivery::DestinationType* t = FindDestinationType(d.type);
    if (!t) {
      std::string known;
      for (const auto& k : BuiltinDestinations())
        known += (known.empty() ? "" : ", ") + k.type;
      errors += config.file + ":" + std::to_string(d.line) + ": " + Path(i) +
                ".type: unknown destination type '" + d.type + "' (known: " + known + ")\n";
      continue;
    }
    auto settings = delivery::ParseSettings(t->settings, d.settings, config.file,
                                            Path(i) + ".settings", d.line);
    if (!settings.ok()) {
      errors += settings.status().message();
      continue;
    }
    auto made = t->create(*settings);
    if (!made.ok()) {
      errors += config.file + ":" + std::to_string(d.line) + ": " + Path(i) +
                ".settings: " + made.status().message() + "\n";
    }
  }
  if (!errors.empty()) return InvalidArgument(errors);
  return Status::Ok();
}

}  // namespace sy::server
