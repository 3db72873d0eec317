// iterable: Iterable's bulk APIs with the `Api-Key` header — track → `POST
// <endpoint>/api/events/trackBulk` `{"events": [{email, userId, eventName, id, createdAt,
// dataFields}]}`; identify → `POST <endpoint>/api/users/bulkUpdate` `{"users": [{email, userId,
// dataFields, preferUserId: true, mergeNestedObjects: true}]}`. ≤ 4 MB per request (Iterable's
// request cap); ≤ 1,000 events or users per request is Switchyard's own bound (Iterable
// documents no count).
// Mapping (Segment's Iterable destination): userId → userId; email ← traits.email, else
// properties.email, else context.traits.email; a call with neither is skipped (Iterable keys
// every profile and event on one of them). track: eventName ← event, id ← messageId (Iterable
// updates an event whose id it has already seen instead of adding one: resends do not
// duplicate), createdAt ← timestamp (unix seconds), dataFields ← properties. identify: dataFields
// ← traits. page, screen, group and alias are skipped (counted as filtered).
//
// Classification: 2xx delivered, except events whose identifier the response lists in
// `failedUpdates` (invalid, not found, forgotten, conflicting emails / userIds) or whose name is
// in `disallowedEventNames`: those are rejected with the list's name. Which identifier each event
// carries travels in the request URL's fragment (not sent). 401 (`BadApiKey`) and 403
// AuthFailure; 429 (`RateLimitExceeded`) and 5xx retried; other 4xx rejected with Iterable's
// `code: msg`.
#pragma once

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType IterableType();

}  // namespace sy::destinations
