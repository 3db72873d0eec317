// EventRouter: decides whether a stored event goes to one destination, and applies that
// destination's filters. The rules, in order:
//   1. the event's source is in the destination's `sources` (an empty list means every source);
//   1b. a record a tracking plan blocked (log header `sy-blocked`) goes to no destination
//      (kBlockedByPlan, counted as filtered; `switchyard violations release` appends a copy
//      without the mark);
//   1c. consent: a destination with `consent_categories` receives an event only when its
//      `context.consent.categoryPreferences` grants every one of them (`true`); an event without
//      preferences follows its source's `consent.default` (kConsentDenied, counted as filtered);
//   2. the event's `integrations` object: the destination's display name or configured name, if
//      present, decides (false → skip; true or an options object → send); otherwise "All"
//      decides (default true). Segment semantics.
//   3. filters.drop_events: a track event whose `event` is listed is skipped;
//   4. filters.drop_properties: listed keys are removed from `properties` (and `traits`).
// Thread-compatible: one instance per stream, called from the stream's thread (Route keeps scratch
// space, so even its const calls must not run concurrently).
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "delivery/destination.h"
#include "event/raw_json.h"
#include "log/event_log.h"

namespace sy::delivery {

enum class RouteDecision {
  kSend,
  kOtherSource,
  kIntegrationsOff,
  kDroppedEvent,
  kUnparseable,
  kBlockedByPlan,
  kConsentDenied
};
std::string_view RouteDecisionName(RouteDecision d);

class EventRouter {
 public:
  // `integrations_preset`: every event's integrations object is known to switch this
  // destination on (the log was written for it alone: replay), so rule 2 is not evaluated.
  EventRouter(const config::DestinationConfig& config, std::string display_name,
              bool integrations_preset = false);

  // On kSend, fills `out` (payload rewritten only if a property was dropped). An event whose
  // bytes cannot hold an integrations key (no `"integrations"`, no \u escape) is not parsed at
  // all when the destination has no filters: the log holds only JSON that ingest validated.
  RouteDecision Route(const log::LogEntry& entry, RoutedEvent* out) const;
  // Same, taking the payload from `entry` instead of copying it.
  RouteDecision Route(log::LogEntry&& entry, RoutedEvent* out) const;

 private:
  // The decision; on kSend with a property dropped, `*rewritten` is the new payload.
  RouteDecision Decide(const log::LogEntry& entry, std::optional<std::string>* rewritten) const;
  // Rule 2 from the raw text (event/raw_json.h), for a destination without filters: no DOM, no
  // allocation. nullopt when the raw text cannot settle it exactly (escapes in the keys).
  std::optional<RouteDecision> DecideByRawIntegrations(std::string_view payload) const;
  // Rule 1c, from the raw text: false when consent keeps the event from this destination.
  bool ConsentAllows(const log::LogEntry& entry) const;

  std::set<std::string, std::less<>> sources_;
  std::string name_;
  std::string display_name_;
  std::set<std::string, std::less<>> drop_events_;
  std::set<std::string, std::less<>> drop_properties_;
  bool integrations_preset_;
  std::vector<std::string> consent_categories_;
  std::set<std::string, std::less<>> consent_deny_sources_;
  mutable std::vector<event::RawMember> scratch_;  // DecideByRawIntegrations; reused
};

// The user an event belongs to for per-user ordering: userId, else anonymousId, else "".
std::string UserKeyOf(std::string_view payload);

// Whether `payload` (a stored event) carries `context.consent.categoryPreferences` as an object,
// and if so whether it grants every category in `needed` (value `true`; anything else, or a
// missing category, does not grant). Keys are compared decoded; of duplicate keys the last
// counts, as in a parse. nullopt: no preferences object.
std::optional<bool> ConsentGrantsAll(std::string_view payload,
                                     const std::vector<std::string>& needed);

}  // namespace sy::delivery
