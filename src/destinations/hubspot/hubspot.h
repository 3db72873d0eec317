// hubspot: HubSpot's CRM and custom events APIs with a private app's token (Bearer).
// - identify → contacts upserted by email: `POST <endpoint>/crm/v3/objects/contacts/batch/upsert`
//   `{"inputs": [{"idProperty": "email", "id": <email>, "properties": {...}}]}`, up to 100 inputs
//   per request; two identifies of one email in a batch become one input (HubSpot refuses
//   duplicate ids in a batch), later traits winning. Properties (HubSpot's default contact
//   properties only, as strings): email, firstname, lastname, phone, company (company or
//   company.name), website, jobtitle ← title, address ← address.street, city, state, zip ←
//   address.postal_code, country. An identify without an email is unmappable.
// - track → a custom event occurrence: `POST <endpoint>/events/v3/send` `{"eventName", "email",
//   "occurredAt", "properties"}`, one per request. HubSpot only takes events defined in the
//   account under their internal names (pe<portal>_<name>): the `events` setting maps Segment
//   event names to them, and a track whose name it does not map is skipped. The properties are
//   the event's scalar properties (they must be defined on the HubSpot event). A track without an
//   email is unmappable.
// - page, screen, group and alias: skipped.
//
// Classification: 2xx delivered. A 207 from the batch upsert names the failed inputs by id
// (email) in `errors[].context.ids`: those events are rejected with HubSpot's message, the others
// delivered. The stream classifies without the request body, so the upsert's URL carries, in its
// fragment (never sent), a short digest of each event's email in `events` order. 401 and 403
// (missing scopes) → AuthFailure; 429 retried after Retry-After, else after
// X-HubSpot-RateLimit-Interval-Milliseconds; 5xx retried; another 4xx `{"status": "error",
// "message", "category"}` rejects the request's events with HubSpot's message.
#pragma once

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType HubspotType();

}  // namespace sy::destinations
