// posthog: every Segment call → `POST <endpoint>/batch/` (PostHog's batch capture: a JSON object
// `{"api_key", "batch": [...]}`, the project API key in the body, no auth header; the request
// body ≤ 20 MB, no documented event count — Switchyard sends ≤ 1,000 events per request).
// Mapping (as PostHog's own Segment/RudderStack integrations do): track → the event by name;
// page → `$pageview` (`$current_url`); screen → `$screen` (`$screen_name`); identify →
// `$identify` with `$set` = traits (and `$anon_distinct_id`); group → `$groupidentify`
// (`$group_type` from the `group_type` setting, `$group_key`, `$group_set` = traits); alias →
// `$create_alias` (distinct_id = previousId, `alias` = userId, as posthog-python sends it).
// Otherwise `distinct_id` = userId, else anonymousId; an event with neither is unmappable. `uuid` =
// messageId when it is a UUID, else a UUID derived from the SHA-256 of the messageId (PostHog
// accepts only UUIDs there and dedupes on it).
//
// Classification: 2xx delivered; 401/403 (`invalid_api_key`) AuthFailure; a 400 rejects the
// whole request with PostHog's `detail` (batch capture validates the request as a whole);
// otherwise the framework's convention (429/5xx retried with Retry-After; 413 split).
#pragma once

#include <string>

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType PosthogType();

// The `uuid` PostHog gets for a messageId: the messageId itself when it is a UUID (lowercased),
// else a version-8 UUID from the first 16 bytes of its SHA-256 (stable: a resend dedupes).
std::string PosthogUuid(const std::string& message_id);

}  // namespace sy::destinations
