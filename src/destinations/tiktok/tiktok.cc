#include "destinations/tiktok/tiktok.h"

#include <algorithm>
#include <boost/json.hpp>

#include "base/time_format.h"
#include "delivery/event_fields.h"
#include "delivery/user_identity.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

std::string StandardEventName(std::string_view segment_name) {
  static const std::pair<std::string_view, std::string_view> kSpec[] = {
      {"Product Viewed", "ViewContent"},
      {"Product Added", "AddToCart"},
      {"Product Added to Wishlist", "AddToWishlist"},
      {"Checkout Started", "InitiateCheckout"},
      {"Payment Info Entered", "AddPaymentInfo"},
      {"Order Completed", "CompletePayment"},
      {"Products Searched", "Search"},
  };
  for (const auto& [from, to] : kSpec)
    if (from == segment_name) return std::string(to);
  return std::string(segment_name);
}

json::object Properties(const json::object& props) {
  json::object out;
  std::optional<double> value;
  for (const char* key : {"revenue", "total", "value", "price"})
    if (!value) value = delivery::NumberOf(props.if_contains(key));
  if (value) out["value"] = *value;
  if (const json::value* c = props.if_contains("currency"); c && c->is_string())
    out["currency"] = *c;
  json::array contents;
  auto add = [&](const json::object& p) {
    std::string id = delivery::IdText(p.if_contains("product_id"));
    if (id.empty()) id = delivery::IdText(p.if_contains("sku"));
    if (id.empty()) return;
    json::object item{{"content_id", id}};
    if (const json::value* n = p.if_contains("name"); n && n->is_string())
      item["content_name"] = *n;
    if (const json::value* n = p.if_contains("category"); n && n->is_string())
      item["content_category"] = *n;
    if (auto price = delivery::NumberOf(p.if_contains("price"))) item["price"] = *price;
    if (auto q = delivery::CountOf(p.if_contains("quantity"))) item["quantity"] = *q;
    contents.push_back(std::move(item));
  };
  if (const json::value* products = props.if_contains("products");
      products && products->is_array()) {
    for (const auto& p : products->as_array())
      if (p.is_object()) add(p.as_object());
  } else {
    add(props);
  }
  if (!contents.empty()) {
    out["contents"] = std::move(contents);
    out["content_type"] = "product";
  }
  if (const json::value* o = props.if_contains("order_id"); o && !delivery::IdText(o).empty())
    out["order_id"] = delivery::IdText(o);
  if (const json::value* q = props.if_contains("query"); q && q->is_string()) out["query"] = *q;
  return out;
}

class Tiktok final : public delivery::Destination {
 public:
  Tiktok(std::string endpoint, std::string pixel_code, std::string access_token,
         std::string test_event_code)
      : pixel_code_(std::move(pixel_code)),
        access_token_(std::move(access_token)),
        test_event_code_(std::move(test_event_code)) {
    while (!endpoint.empty() && endpoint.back() == '/')
      endpoint.pop_back();
    url_ = endpoint + "/open_api/v1.3/event/track/";
  }

  // Events API 2.0: up to 1,000 events per request.
  delivery::DestinationLimits limits() const override { return {1000, 1u << 20}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    json::array data;
    delivery::HttpRequest r;
    delivery::MapEachEvent(
        events, &out, [&](size_t i, const json::object& e, std::string_view type) {
          if (type != "track")
            return delivery::EventMapping::Skip("tiktok has no mapping for type '" +
                                                std::string(type) + "'");
          std::string name = StandardEventName(delivery::FieldString(e, {"event"}));
          if (name.empty())
            return delivery::EventMapping::Unmappable("tiktok: track without event");
          json::object ev;
          ev["event"] = name;
          auto ts = ParseIso8601(delivery::FieldString(e, {"timestamp"}));
          ev["event_time"] = (ts ? ts->value() : events[i].received_at.value()) / 1000;
          ev["event_id"] = events[i].message_id;
          json::object user;
          auto hashed = [&](std::string_view key, const std::string& normalized) {
            std::string h = delivery::Sha256Identifier(normalized);
            if (!h.empty()) user[key] = h;
          };
          hashed("email", delivery::TrimAndLowercase(delivery::UserEmail(e)));
          std::string digits = delivery::PhoneDigits(delivery::UserPhone(e));
          hashed("phone", digits.empty() ? "" : "+" + digits);
          std::string id = delivery::FieldString(e, {"userId"});
          if (id.empty()) id = delivery::FieldString(e, {"anonymousId"});
          hashed("external_id", id);
          delivery::SetIfNotEmpty(user, "ip", delivery::FieldString(e, {"context", "ip"}));
          delivery::SetIfNotEmpty(user, "user_agent",
                                  delivery::FieldString(e, {"context", "userAgent"}));
          ev["user"] = std::move(user);
          json::object page;
          delivery::SetIfNotEmpty(page, "url",
                                  delivery::FieldString(e, {"context", "page", "url"}));
          delivery::SetIfNotEmpty(page, "referrer",
                                  delivery::FieldString(e, {"context", "page", "referrer"}));
          if (!page.empty()) ev["page"] = std::move(page);
          if (const json::value* p = e.if_contains("properties"); p && p->is_object()) {
            json::object props = Properties(p->as_object());
            if (!props.empty()) ev["properties"] = std::move(props);
          }
          data.push_back(std::move(ev));
          r.events.push_back(i);
          return delivery::EventMapping::Mapped();
        });
    if (r.events.empty()) return out;
    json::object body;
    body["event_source"] = "web";
    body["event_source_id"] = pixel_code_;
    if (!test_event_code_.empty()) body["test_event_code"] = test_event_code_;
    body["data"] = std::move(data);
    r.url = url_;
    r.headers = {{"Content-Type", "application/json"}, {"Access-Token", access_token_}};
    r.body = json::serialize(body);
    out.requests.push_back(std::move(r));
    return out;
  }

  std::vector<delivery::Outcome> Classify(const delivery::HttpRequest& request,
                                          const delivery::HttpResponse& response) const override {
    return std::vector<delivery::Outcome>(request.events.size(), ClassifyResponse(response));
  }

 private:
  static delivery::Outcome ClassifyResponse(const delivery::HttpResponse& response) {
    if (response.status != 200) {
      delivery::Outcome o = delivery::ClassifyByStatus(response);
      if (response.status == 401 || response.status == 403)
        return delivery::Outcome::AuthFailure("tiktok: http " + std::to_string(response.status));
      if (o.kind == delivery::Outcome::Kind::kDelivered)  // 2xx other than 200: not TikTok's
        return delivery::Outcome::Rejected("tiktok: unexpected http " +
                                           std::to_string(response.status));
      o.reason = "tiktok: " + o.reason;
      return o;
    }
    boost::system::error_code ec;
    json::value doc = json::parse(response.body, ec);
    const json::value* code =
        !ec && doc.is_object() ? doc.as_object().if_contains("code") : nullptr;
    if (code == nullptr || !code->is_int64())
      return delivery::Outcome::Retry("tiktok: answer without a code");
    int64_t c = code->as_int64();
    if (c == 0) return delivery::Outcome::Delivered();
    std::string message = delivery::FieldString(doc.as_object(), {"message"});
    std::string reason = "tiktok: " + (message.empty() ? std::string("error") : message) +
                         " (code " + std::to_string(c) + ")";
    if (c == 40001 || c == 40102 || c == 40104 || c == 40105)
      return delivery::Outcome::AuthFailure(reason);
    if (c == 40100 || (c >= 50000 && c < 60000))
      return delivery::Outcome::Retry(reason, delivery::RetryAfterMs(response));
    return delivery::Outcome::Rejected(reason);
  }

  std::string url_;
  std::string pixel_code_;
  std::string access_token_;
  std::string test_event_code_;
};

struct TiktokSettings {
  std::string pixel_code;
  std::string access_token;
  std::string test_event_code;
  std::string endpoint;
};

}  // namespace

delivery::DestinationType TiktokType() {
  using S = TiktokSettings;
  auto t = delivery::MakeDestinationType<S>(
      "tiktok", "TikTok Conversions",
      "Sends conversion events to TikTok's Events API (hashed user data, event_id = messageId).",
      delivery::SettingsTable<S>()
          .String("pixel_code", &S::pixel_code, "the TikTok pixel code (event_source_id)")
          .Required()
          .Secret("access_token", &S::access_token, "Events API access token (Access-Token)")
          .Required()
          .String("test_event_code", &S::test_event_code,
                  "Events Manager test code: events show under Test Events only")
          .Url("endpoint", &S::endpoint, "Business API base URL")
          .Default("https://business-api.tiktok.com"),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (s.pixel_code.empty()) return InvalidArgument("pixel_code: must not be empty");
        if (s.access_token.empty()) return InvalidArgument("access_token: must not be empty");
        return std::unique_ptr<delivery::Destination>(
            new Tiktok(s.endpoint, s.pixel_code, s.access_token, s.test_event_code));
      });
  t.support = {
      "track (e-commerce → standard events, others custom); identify, page, screen, group, alias "
      "skipped",
      "≤ 1,000 events per request", "messageId as event_id",
      "not forwarded (TikTok has no deletion call for Events API events)"};
  return t;
}

}  // namespace sy::destinations
