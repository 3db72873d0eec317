// mailchimp: Mailchimp Marketing API 3.0 audience members, with Basic auth (any user name, the
// API key as password) at the data centre the key names (`…-us6` → https://us6.api.mailchimp.com).
// A member is named by the MD5 of its lowercased email; one member per request:
// - identify → `PUT <base>/3.0/lists/<list_id>/members/<md5>` (add or update):
//   `{"email_address", "status_if_new", "merge_fields": {"FNAME", "LNAME"}}` — the two merge
//   fields every audience has — from traits.firstName/lastName.
// - track → `POST <base>/3.0/lists/<list_id>/members/<md5>/events`: `{"name", "properties",
//   "occurred_at", "is_syncing": false}`. The name is the event with spaces as underscores and
//   must then be 2–30 letters, digits, `_` or `-` (else unmappable); properties are the event's
//   scalar properties as strings (Mailchimp takes string values only). The member must exist
//   (an identify first): Mailchimp answers 404 otherwise, and the event is rejected.
// - page, screen, group and alias: skipped. Either call without an email (traits,
//   context.traits, properties) is unmappable.
//
// Classification: 2xx delivered; 401 (API key invalid) and 403 (key disabled, account
// suspended, no access) → AuthFailure; 429 (Mailchimp allows 10 simultaneous connections) and 5xx
// retried; any other status rejected with the problem document's title and detail
// (`application/problem+json`: type, title, status, detail, instance).
#pragma once

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType MailchimpType();

}  // namespace sy::destinations
