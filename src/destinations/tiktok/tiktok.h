// tiktok: TikTok Events API 2.0 — `POST <endpoint>/open_api/v1.3/event/track/` with the
// `Access-Token` header and `{"event_source": "web", "event_source_id": <pixel_code>,
// "data": [...]}`, up to 1,000 events per request.
//
// Mapping (as Segment's TikTok Conversions and RudderStack's TikTok Ads destinations do):
// - track → event from the e-commerce spec (Product Viewed → ViewContent, Product Added →
//   AddToCart, Product Added to Wishlist → AddToWishlist, Checkout Started → InitiateCheckout,
//   Payment Info Entered → AddPaymentInfo, Order Completed → CompletePayment, Products Searched →
//   Search), any other name as a custom event; properties: value ← revenue/total/value/price,
//   currency, contents[] ← products (content_id ← product_id/sku, content_name, content_category,
//   price, quantity), content_type "product", order_id, query.
// - identify, page, screen, group and alias have no Events API concept here: skipped.
// - event_id ← messageId (TikTok deduplicates pixel and server copies by it), event_time ←
//   timestamp (unix seconds; received time when absent), page.url/referrer ← context.page,
//   user: email, phone (SHA-256 of the trimmed lowercased email / E.164 "+<digits>"),
//   external_id (SHA-256 of userId, else anonymousId), ip, user_agent; values already hashed pass
//   unchanged.
//
// Classification: TikTok answers HTTP 200 for most errors, with a non-zero `code` in
// `{"code", "message", "request_id", "data"}`; the body code decides: 0 delivered; 40100 (rate
// limit) and 5xxxx (TikTok's side) retried; 40001 (no permission), 40102 (token expired), 40104
// (no token) and 40105 (token invalid or revoked) → AuthFailure; any other code rejected with
// TikTok's message (the whole request: TikTok validates the batch as one). A non-200 HTTP status
// follows the framework's convention (401/403 → AuthFailure).
#pragma once

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType TiktokType();

}  // namespace sy::destinations
