// google-analytics-4: GA4 Measurement Protocol — `POST <endpoint>/mp/collect?measurement_id=…&
// api_secret=…` with `{"client_id": anonymousId (else userId), "user_id": userId, "events":
// [{"name", "params", "timestamp_micros"}]}`, at most 25 events per request, one request per
// client in a batch. Mapping per ../shared/reference/destinations.md:
//   page → page_view (page_location, page_title, page_referrer);
//   Segment e-commerce: Product Viewed → view_item, Product Added → add_to_cart,
//   Checkout Started → begin_checkout, Order Completed → purchase (transaction_id, value,
//   currency, items[] from products[]);
//   other track events → snake_case name (letters, digits, '_'; starts with a letter; ≤ 40
//   chars; reserved prefixes google_/ga_/firebase_ get an "x_" prefix);
//   params ← scalar properties (names sanitized likewise, ≤ 25); timestamp_micros only when the
//   event is at most 72 h older than it was received; identify/group/alias are unmappable.
// The collect endpoint answers 2xx even for bad payloads, so classification is the framework's
// default.
#pragma once

#include <string>
#include <string_view>

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType GoogleAnalytics4Type();

// "Order Completed" → "order_completed"; "3D view!" → "x3d_view" (exposed for tests).
std::string Ga4Name(std::string_view segment_name);

}  // namespace sy::destinations
