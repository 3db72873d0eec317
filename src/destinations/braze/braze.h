// braze: `POST <endpoint>/users/track` (Bearer REST API key; the endpoint is the workspace's REST
// instance, https://rest.<instance>.braze.com). One request carries ≤ 75 attribute objects, ≤ 75
// events and ≤ 75 purchases (Braze's documented per-call limits); the encoder splits a chunk into
// as many requests as those limits need. Mapping (Segment's Braze destination):
//   identify → an attributes object: the standard profile fields (first_name ← firstName,
//     last_name ← lastName, email, phone, gender, dob ← birthday as YYYY-MM-DD, home_city ←
//     address.city, country ← address.country, image_url ← avatar) and every other trait as a
//     custom attribute;
//   track → an event {name, time, properties}; `Order Completed` with `products` → one purchase
//     per product {product_id, currency (default USD), price, quantity, time, properties}
//     (an order of more than 75 products is unmappable: it fits no request);
//   page, screen, group, alias → skipped (Braze has no concept for them in /users/track):
//     counted as filtered.
// The user: userId as external_id; without one, anonymousId as a user alias
// {alias_name: anonymousId, alias_label: "anonymous_id"} (attributes then carry
// `_update_existing_only: false` so Braze creates the alias-only profile). Neither: unmappable.
// Braze has no idempotency key on /users/track.
//
// Classification: 2xx delivered, except the objects named in the response's `errors`
// ({type, input_array, index}: Braze's non-fatal errors), whose events are rejected with the
// type; 401/403 AuthFailure; 429 retried after `X-RateLimit-Reset` (epoch seconds, against the
// response's arrival) or Retry-After; other 4xx rejected with Braze's `message`; 5xx retried.
// Which array entry belongs to which event travels in the request URL's fragment (not sent).
#pragma once

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType BrazeType();

}  // namespace sy::destinations
