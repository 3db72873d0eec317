// pinterest: Pinterest API for Conversions — `POST <endpoint>/v5/ad_accounts/<ad_account_id>/
// events` with `Authorization: Bearer <token>` and `{"data": [...]}`, up to 1,000 events per
// request.
//
// Mapping (as Segment's and RudderStack's Pinterest Conversions destinations do):
// - track → event_name from the e-commerce spec (Order Completed → checkout, Product Added →
//   add_to_cart, Products Searched → search, Product List Viewed / Product Category Viewed →
//   view_category, Signed Up → signup), any other name → `custom` (Pinterest takes no free
//   names); custom_data: value ← revenue/total/value/price (a decimal string, as Pinterest wants),
//   currency, content_ids and contents ← products (id ← product_id/sku, item_price, quantity),
//   num_items, order_id, search_string ← query.
// - page → page_visit. identify, screen, group and alias: skipped.
// - event_id ← messageId (Pinterest deduplicates tag and API copies by it), event_time ←
//   timestamp (unix seconds), action_source ← the setting, event_source_url ← context.page.url,
//   user_data: em, ph, external_id (arrays of SHA-256 of the trimmed lowercased email, the
//   phone's digits, userId else anonymousId), client_ip_address, client_user_agent.
//   Pinterest requires em, or client_ip_address together with client_user_agent: an event with
//   neither is unmappable.
//
// Classification: a 200 answers per event (`events[i].status` "processed" or "failed" with
// `error_message`), so a failed event is rejected alone; 401/403 → AuthFailure; 429 and 5xx
// retried (Retry-After); another 4xx `{"code", "message"}` rejects the request's events with
// Pinterest's message.
#pragma once

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType PinterestType();

}  // namespace sy::destinations
