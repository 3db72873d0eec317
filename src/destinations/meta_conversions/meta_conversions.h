// meta: Meta (Facebook) Conversions API — `POST <endpoint>/<api_version>/<pixel_id>/
// events` with `{"data": [...], "access_token": …}`, up to 1,000 events per request.
//
// Mapping (as Segment's and RudderStack's Facebook Conversions destinations do):
// - track → event_name from the e-commerce spec (Product Viewed → ViewContent, Product List
//   Viewed → ViewContent, Product Added → AddToCart, Product Added to Wishlist → AddToWishlist,
//   Checkout Started → InitiateCheckout, Payment Info Entered → AddPaymentInfo, Order Completed →
//   Purchase, Products Searched → Search), any other name as a custom event; custom_data = the
//   properties (without email/phone, which go hashed into user_data, and products, which become
//   content_ids/contents), value ← revenue/total/value/price, currency (USD when a value has
//   none), order_id, search_string ← query, content_type "product" when there are contents.
//   A Purchase without a value is unmappable (Meta requires value and currency).
// - page → PageView. identify, screen, group and alias have no Conversions API concept: skipped.
// - event_id ← messageId (Meta deduplicates the pixel's and the server's copies by it),
//   event_time ← timestamp (unix seconds; received time when absent) — an event more than 7 days
//   older than its arrival is unmappable (Meta refuses it), action_source ← the setting,
//   event_source_url ← context.page.url.
// - user_data: em, ph (SHA-256 of the trimmed lowercased email / of the phone's digits),
//   fn, ln (SHA-256 of trimmed lowercased traits.firstName/lastName), external_id (SHA-256 of
//   userId, else anonymousId), client_ip_address ← context.ip, client_user_agent ←
//   context.userAgent. Values already hashed (64 hex digits) pass unchanged.
//   With action_source `website`, Meta requires client_user_agent and event_source_url: an event
//   without them is unmappable rather than failing the whole batch at Meta.
//
// Classification: Meta refuses a whole batch for one bad event, with a Graph API error
// `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`:
// - code 190 (invalid or expired token), 102, 10 and 200–299 (permissions), or HTTP 401/403 →
//   AuthFailure;
// - codes 4, 17, 32, 613, 80004 (rate limits), HTTP 429 → retried after Retry-After or the
//   `X-Business-Use-Case-Usage` header's estimated_time_to_regain_access (minutes);
// - codes 1, 2, `is_transient: true`, HTTP 5xx → retried;
// - anything else (100 invalid parameter, …) → every event of the request rejected with Meta's
//   message (redriving the good ones is safe: Meta deduplicates by event_id).
#pragma once

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType MetaConversionsType();

}  // namespace sy::destinations
