#include "destinations/meta_conversions/meta_conversions.h"

#include <algorithm>
#include <boost/json.hpp>

#include "base/time_format.h"
#include "delivery/event_fields.h"
#include "delivery/user_identity.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

// Meta refuses events whose event_time is more than 7 days in the past.
constexpr int64_t kMaxEventAgeMs = 7LL * 24 * 3600 * 1000;

std::string StandardEventName(std::string_view segment_name) {
  static const std::pair<std::string_view, std::string_view> kSpec[] = {
      {"Product Viewed", "ViewContent"},        {"Product List Viewed", "ViewContent"},
      {"Product Added", "AddToCart"},           {"Product Added to Wishlist", "AddToWishlist"},
      {"Checkout Started", "InitiateCheckout"}, {"Payment Info Entered", "AddPaymentInfo"},
      {"Order Completed", "Purchase"},          {"Products Searched", "Search"},
  };
  for (const auto& [from, to] : kSpec)
    if (from == segment_name) return std::string(to);
  return std::string(segment_name);
}

// custom_data from Segment's e-commerce properties; see the header.
json::object CustomData(const json::object& props) {
  json::object c;
  for (const auto& [k, v] : props)
    if (k != "email" && k != "phone" && k != "products") c[k] = v;
  std::optional<double> value;
  for (const char* key : {"revenue", "total", "value", "price"})
    if (!value) value = delivery::NumberOf(props.if_contains(key));
  if (value) {
    c["value"] = *value;
    if (!props.contains("currency")) c["currency"] = "USD";
  }
  json::array ids, contents;
  auto add_product = [&](const json::object& p) {
    std::string id = delivery::IdText(p.if_contains("product_id"));
    if (id.empty()) id = delivery::IdText(p.if_contains("sku"));
    if (id.empty()) return;
    ids.push_back(json::value(id));
    json::object item{{"id", id}};
    if (auto q = delivery::CountOf(p.if_contains("quantity"))) item["quantity"] = *q;
    if (auto price = delivery::NumberOf(p.if_contains("price"))) item["item_price"] = *price;
    contents.push_back(std::move(item));
  };
  if (const json::value* products = props.if_contains("products");
      products && products->is_array()) {
    for (const auto& p : products->as_array())
      if (p.is_object()) add_product(p.as_object());
    c["num_items"] = static_cast<int64_t>(contents.size());
  } else {
    add_product(props);
  }
  if (!ids.empty()) {
    c["content_ids"] = std::move(ids);
    c["contents"] = std::move(contents);
    c["content_type"] = "product";
  }
  if (const json::value* q = props.if_contains("query"); q && q->is_string())
    c["search_string"] = *q;
  if (const json::value* n = props.if_contains("name"); n && n->is_string()) c["content_name"] = *n;
  if (const json::value* n = props.if_contains("category"); n && n->is_string())
    c["content_category"] = *n;
  return c;
}

class MetaConversions final : public delivery::Destination {
 public:
  MetaConversions(std::string endpoint, const std::string& api_version, const std::string& pixel_id,
                  std::string access_token, std::string action_source, std::string test_event_code)
      : access_token_(std::move(access_token)),
        action_source_(std::move(action_source)),
        test_event_code_(std::move(test_event_code)) {
    while (!endpoint.empty() && endpoint.back() == '/')
      endpoint.pop_back();
    url_ = endpoint + "/" + api_version + "/" + pixel_id + "/events";
  }

  // The Conversions API takes up to 1,000 events per request.
  delivery::DestinationLimits limits() const override { return {1000, 1u << 20}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    json::array data;
    delivery::HttpRequest r;
    delivery::MapEachEvent(
        events, &out, [&](size_t i, const json::object& e, std::string_view type) {
          json::object ev;
          json::object props;
          if (const json::value* p = e.if_contains("properties"); p && p->is_object())
            props = p->as_object();
          std::string name;
          if (type == "track") {
            name = StandardEventName(delivery::FieldString(e, {"event"}));
          } else if (type == "page") {
            name = "PageView";
          } else {
            return delivery::EventMapping::Skip("meta-conversions has no mapping for type '" +
                                                std::string(type) + "'");
          }
          if (name.empty()) return delivery::EventMapping::Unmappable("meta: track without event");
          ev["event_name"] = name;
          int64_t received = events[i].received_at.value();
          auto ts = ParseIso8601(delivery::FieldString(e, {"timestamp"}));
          int64_t at = ts ? ts->value() : received;
          if (received - at > kMaxEventAgeMs)
            return delivery::EventMapping::Unmappable(
                "meta: event_time more than 7 days before the event arrived");
          ev["event_time"] = at / 1000;
          ev["event_id"] = events[i].message_id;
          ev["action_source"] = action_source_;
          std::string page_url = delivery::FieldString(e, {"context", "page", "url"});
          std::string agent = delivery::FieldString(e, {"context", "userAgent"});
          if (action_source_ == "website" && (page_url.empty() || agent.empty()))
            return delivery::EventMapping::Unmappable(
                "meta: website events need context.page.url and "
                "context.userAgent (event_source_url, client_user_agent)");
          delivery::SetIfNotEmpty(ev, "event_source_url", page_url);

          json::object user;
          auto hashed = [&](std::string_view key, const std::string& normalized) {
            std::string h = delivery::Sha256Identifier(normalized);
            if (!h.empty()) user[key] = json::array{json::value(h)};
          };
          hashed("em", delivery::TrimAndLowercase(delivery::UserEmail(e)));
          hashed("ph", delivery::PhoneDigits(delivery::UserPhone(e)));
          hashed("fn", delivery::TrimAndLowercase(delivery::UserTrait(e, "firstName")));
          hashed("ln", delivery::TrimAndLowercase(delivery::UserTrait(e, "lastName")));
          std::string id = delivery::FieldString(e, {"userId"});
          if (id.empty()) id = delivery::FieldString(e, {"anonymousId"});
          hashed("external_id", id);
          delivery::SetIfNotEmpty(user, "client_ip_address",
                                  delivery::FieldString(e, {"context", "ip"}));
          delivery::SetIfNotEmpty(user, "client_user_agent", agent);
          ev["user_data"] = std::move(user);

          if (type == "track") {
            json::object custom = CustomData(props);
            if (name == "Purchase" && !custom.contains("value"))
              return delivery::EventMapping::Unmappable(
                  "meta: Purchase needs properties.revenue, total or value");
            if (!custom.empty()) ev["custom_data"] = std::move(custom);
          }
          data.push_back(std::move(ev));
          r.events.push_back(i);
          return delivery::EventMapping::Mapped();
        });
    if (r.events.empty()) return out;
    json::object body;
    body["data"] = std::move(data);
    if (!test_event_code_.empty()) body["test_event_code"] = test_event_code_;
    body["access_token"] = access_token_;
    r.url = url_;
    r.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
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
    if (response.status >= 200 && response.status < 300) return delivery::Outcome::Delivered();
    if (response.status == 0) return delivery::ClassifyByStatus(response);
    boost::system::error_code ec;
    json::value doc = json::parse(response.body, ec);
    const json::value* err =
        !ec && doc.is_object() ? doc.as_object().if_contains("error") : nullptr;
    int64_t code = -1;
    std::string reason = "meta: http " + std::to_string(response.status);
    bool transient = false;
    if (err != nullptr && err->is_object()) {
      const json::object& o = err->as_object();
      if (const json::value* c = o.if_contains("code"); c && c->is_int64()) code = c->as_int64();
      std::string message = delivery::FieldString(o, {"message"});
      std::string user_message = delivery::FieldString(o, {"error_user_msg"});
      reason = "meta: " + (message.empty() ? std::string("error") : message);
      if (!user_message.empty()) reason += ": " + user_message;
      reason += " (code " + std::to_string(code);
      if (const json::value* s = o.if_contains("error_subcode"); s && s->is_int64())
        reason += "/" + std::to_string(s->as_int64());
      reason += ")";
      if (const json::value* t = o.if_contains("is_transient"); t && t->is_bool())
        transient = t->as_bool();
    }
    if (code == 190 || code == 102 || code == 10 || (code >= 200 && code <= 299) ||
        response.status == 401 || response.status == 403)
      return delivery::Outcome::AuthFailure(reason);
    if (code == 4 || code == 17 || code == 32 || code == 613 || code == 80004 ||
        response.status == 429) {
      auto after = delivery::RetryAfterMs(response);
      if (!after) after = BusinessUseCaseWaitMs(response.Header("X-Business-Use-Case-Usage"));
      return delivery::Outcome::Retry(reason, after);
    }
    if (code == 1 || code == 2 || transient || response.status >= 500)
      return delivery::Outcome::Retry(reason, delivery::RetryAfterMs(response));
    return delivery::Outcome::Rejected(reason);
  }

  // `X-Business-Use-Case-Usage: {"<id>": [{"type": …, "estimated_time_to_regain_access": N}]}`
  // (N in minutes): the longest wait it names, in ms; nullopt when none.
  static std::optional<int64_t> BusinessUseCaseWaitMs(const std::string& header) {
    if (header.empty()) return std::nullopt;
    boost::system::error_code ec;
    json::value doc = json::parse(header, ec);
    if (ec || !doc.is_object()) return std::nullopt;
    int64_t minutes = 0;
    for (const auto& [id, uses] : doc.as_object()) {
      if (!uses.is_array()) continue;
      for (const auto& use : uses.as_array()) {
        if (!use.is_object()) continue;
        const json::value* t = use.as_object().if_contains("estimated_time_to_regain_access");
        if (t && t->is_int64()) minutes = std::max(minutes, t->as_int64());
      }
    }
    if (minutes <= 0) return std::nullopt;
    return std::min<int64_t>(minutes, 24 * 60) * 60'000;
  }

  std::string url_;
  std::string access_token_;
  std::string action_source_;
  std::string test_event_code_;
};

bool IsApiVersion(const std::string& v) {
  // "v24.0"
  size_t dot = v.find('.');
  if (v.size() < 4 || v[0] != 'v' || dot == std::string::npos || dot < 2 || dot + 1 == v.size())
    return false;
  for (size_t i = 1; i < v.size(); ++i)
    if (i != dot && (v[i] < '0' || v[i] > '9')) return false;
  return true;
}

struct MetaConversionsSettings {
  std::string pixel_id;
  std::string access_token;
  std::string action_source;
  std::string api_version;
  std::string test_event_code;
  std::string endpoint;
};

}  // namespace

delivery::DestinationType MetaConversionsType() {
  using S = MetaConversionsSettings;
  auto t = delivery::MakeDestinationType<S>(
      "meta-conversions", "Facebook Conversions API",
      "Sends conversion events to Meta's Conversions API (hashed user data, event_id = "
      "messageId).",
      delivery::SettingsTable<S>()
          .String("pixel_id", &S::pixel_id, "the pixel (dataset) ID events are sent to")
          .Required()
          .Secret("access_token", &S::access_token, "Conversions API access token")
          .Required()
          .Enum("action_source", &S::action_source,
                {"website", "app", "email", "phone_call", "chat", "physical_store",
                 "system_generated", "business_messaging", "other"},
                "where the conversions happened (website requires context.page.url and "
                "context.userAgent on every event)")
          .Default("website")
          .String("api_version", &S::api_version, "Graph API version")
          .Default("v24.0")
          .String("test_event_code", &S::test_event_code,
                  "Events Manager test code: events show under Test Events only")
          .Url("endpoint", &S::endpoint, "Graph API base URL")
          .Default("https://graph.facebook.com"),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (!delivery::IsPathSegment(s.pixel_id))
          return InvalidArgument("pixel_id: must be letters, digits, '-', '_' or '.'");
        if (s.access_token.empty()) return InvalidArgument("access_token: must not be empty");
        if (!IsApiVersion(s.api_version))
          return InvalidArgument("api_version: must look like v24.0");
        return std::unique_ptr<delivery::Destination>(
            new MetaConversions(s.endpoint, s.api_version, s.pixel_id, s.access_token,
                                s.action_source, s.test_event_code));
      });
  t.support = {
      "track (e-commerce → standard events, others custom), page → PageView; identify, screen, "
      "group, alias skipped",
      "≤ 1,000 events per request", "messageId as event_id",
      "not forwarded (Meta has no deletion call for Conversions API events)"};
  return t;
}

}  // namespace sy::destinations
