// bigquery: streams every call into Google BigQuery with `tabledata.insertAll`
// (`POST <endpoint>/bigquery/v2/projects/<project>/datasets/<dataset>/tables/<table>/insertAll`),
// one request per table of ≤ 500 rows and ≤ 10 MB (BigQuery's recommended rows per request and
// its request size limit), `insertId` = messageId (BigQuery's best-effort dedupe), rows that name
// no unknown columns (`skipInvalidRows: false`, `ignoreUnknownValues: false`).
//
// Auth: a service account. Its JSON key (the `service_account_json` setting) gives the client
// email, the RSA private key and the token URI; Switchyard signs a JWT (RS256, OpenSSL) for the
// scope bigquery.insertdata and exchanges it at the token URI (the OAuth 2.0 JWT bearer grant)
// for an access token, cached until a minute before it expires and fetched again after a 401.
// The exchange is the first step of a two-step request (Destination::FollowUp): the insertAll
// waits in the token request's `carry`.
//
// Rows, as Segment's warehouses lay them out: table per event type — a track goes to the table
// named after its event (snake_case), the other calls to `identifies`, `pages`, `screens`,
// `groups`, `aliases` — or every row to the one `table` (with `type` and `event` columns).
// Columns: `id` (messageId), `anonymous_id`, `user_id`, `received_at`, `sent_at`, `timestamp`,
// `original_timestamp`, the call's own (`event`, `event_text`, `name`, `group_id`,
// `previous_id`), its properties (track, page, screen) or traits (identify, group) flattened to
// snake_case columns (nested objects joined with `_`, arrays as JSON text), and `context_*` the
// same way.
//
// Classification: insertAll's 200 names failed rows in `insertErrors` (by row index): a row with
// reason `invalid` is rejected with BigQuery's message; `stopped` (an invalid row elsewhere in
// the request stopped it), `backendError`, `internalError`, `timeout` retried. A 400/404 (bad
// request, no such table) rejects the request's events with the error message; 403
// `rateLimitExceeded`/`quotaExceeded` and 429/5xx retry; 401 after a fresh token, 403
// `accessDenied`, and a token refusal (`invalid_grant`, `invalid_client`) are an AuthFailure.
#pragma once

#include <string>

#include "base/clock.h"
#include "delivery/destination.h"

namespace sy::destinations {

// `clock` dates the JWTs and ages the cached token (tests pass a FakeClock).
delivery::DestinationType BigqueryType(const Clock* clock = SystemClock::Get());

// The column name Segment's warehouses give a key: snake_case ("orderId" → "order_id",
// "Page URL" → "page_url"), only [a-z0-9_], never starting with a digit.
std::string BigqueryColumnName(std::string_view key);

}  // namespace sy::destinations
