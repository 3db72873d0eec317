// klaviyo: Klaviyo's JSON:API — track → `POST <endpoint>/api/events`, identify →
// `POST <endpoint>/api/profile-import` (create or update by email / phone / external_id), one
// event per request, with `Authorization: Klaviyo-API-Key <private key>` and the required
// `revision` header (the API version the payloads are written against).
//
// Mapping (as Segment's and RudderStack's Klaviyo destinations do):
// - track → an event of metric `event`, properties ← properties, value ← revenue/value/total,
//   time ← timestamp (ISO 8601; received time when absent), unique_id ← messageId (Klaviyo
//   deduplicates by it), profile ← email, phone_number, external_id ← userId.
// - identify → a profile: email, phone_number, external_id ← userId, first_name, last_name,
//   organization ← company(.name), title, image ← avatar, location ← address (street → address1,
//   city, state → region, country, postal_code → zip) and context.ip, properties ← the other
//   traits.
// - page, screen, group and alias: skipped. An event with no email, phone or userId names no
//   profile Klaviyo can use: unmappable.
//
// Classification: 2xx delivered; 401 (not_authenticated) and 403 (permission_denied: the key
// lacks the scope) → AuthFailure; 429 (Retry-After) and 5xx retried; any other status rejected
// with the first of JSON:API's `errors[]` (`detail`, `code`, `source.pointer`).
#pragma once

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType KlaviyoType();

}  // namespace sy::destinations
