// intercom: Segment calls → Intercom's REST API (`Authorization: Bearer <access token>`,
// `Intercom-Version` header, JSON), one call per request (Intercom has no batch endpoint for
// these).
//
//   track    → `POST /events`: `event_name` ← event, `created_at` ← timestamp (Unix seconds),
//              `user_id` ← userId, else `email` ← context.traits.email / properties.email;
//              `metadata` ← the first 10 properties (in the event's order) whose values are
//              strings, numbers or booleans — Intercom takes at most 10 and no nested values; the
//              rest are left out. A track with neither user id nor email is skipped (Intercom
//              files events only under a known user).
//   identify → a contact. Intercom has no upsert, so a two-step request (FollowUp): first
//              `POST /contacts/search` for `external_id` = userId (else `email`), then
//              `PUT /contacts/<id>` when found, else `POST /contacts` (role `user` with a userId,
//              else `lead`). Fields: `external_id`, `email`, `phone`, `name` (← name, else
//              firstName + lastName), `signed_up_at` (← createdAt), `custom_attributes` ← the
//              other scalar traits.
//   group    → `POST /companies` (create or update by `company_id` ← groupId): `name`,
//              `plan`, `size`, `website`, `industry`, `monthly_spend`, `custom_attributes`.
//   page, screen, alias → skipped (no Intercom concept reachable with this API).
//
// Classification: 2xx delivered; 401/403 AuthFailure; 404 (no such user for an event) and
// 400/422 rejected with Intercom's `errors[].code: message`; a 409 on create (the contact
// appeared since the search) retried; 429 retried after `X-RateLimit-Reset` (Unix seconds)
// or Retry-After; 5xx retried.
#pragma once

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType IntercomType();

}  // namespace sy::destinations
