// heap: Heap's server-side APIs, bulk forms — track → `POST <endpoint>/api/track` with
// `{"app_id", "events": [{identity, event, timestamp, properties, idempotency_key}]}`; identify →
// `POST <endpoint>/api/add_user_properties` with `{"app_id", "users": [{identity, properties}]}`
// (≤ 1,000 events / users per request). The app_id travels in the body; no auth header.
// Heap's constraints (its docs and heap-ruby's validations): identity ≤ 255 characters; event
// names ≤ 1,024; properties flat, values numbers or strings ≤ 1,024 characters — nested objects
// are flattened with dots ("address.city"), booleans become "true"/"false", arrays JSON text,
// nulls dropped, long strings cut at 1,024 characters.
// Mapping (Segment's Heap destination takes track and identify): identity ← userId;
// idempotency_key ← messageId; timestamp ← timestamp. An event without a userId is skipped
// (Heap's server-side APIs attach data to an identified user), and so are page, screen, group
// and alias: counted as filtered. An identity or event name over Heap's limits is unmappable.
//
// Classification: 2xx delivered; 401/403 AuthFailure; a 400 (Heap validates the request as a
// whole) rejects every event of it with Heap's message; otherwise the framework's convention
// (429/5xx retried with Retry-After).
#pragma once

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType HeapType();

}  // namespace sy::destinations
