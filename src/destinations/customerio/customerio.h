// customerio: Customer.io's Track API v1, one call per request (Basic auth `site_id:api_key`):
//   identify → `PUT <endpoint>/api/v1/customers/{userId}` with the traits as attributes
//     (`created_at` ← traits.createdAt as unix seconds);
//   track → `POST <endpoint>/api/v1/customers/{userId}/events` `{name, data, timestamp, id}`, or
//     without a userId `POST <endpoint>/api/v1/events` with `anonymous_id`;
//   page → the same with `type: "page"` and `name` ← the page URL (Customer.io's page views);
//   screen → `type: "screen"`, `name` ← the screen name;
//   group and alias → skipped (no v1 concept: objects and merges are other APIs), counted as
//     filtered.
// `id` is a ULID made from the event's timestamp and the SHA-256 of its messageId: Customer.io
// dedupes events on it, and a resend gets the same one. Customer.io caps a Track API request at
// 32 KB: an event whose request would be larger is unmappable. v1, not the v2 batch API: v2's
// per-entry error answers could not be checked against its documentation here.
//
// Classification: 2xx delivered; 401/403 AuthFailure; 429 and 5xx retried (Retry-After); other
// 4xx rejected with Customer.io's `meta.error`.
#pragma once

#include <string>

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType CustomerioType();

// The ULID Customer.io gets as an event's `id` (exposed for tests).
std::string CustomerioEventId(int64_t timestamp_ms, const std::string& message_id);

}  // namespace sy::destinations
