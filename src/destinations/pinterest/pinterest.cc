#include "destinations/pinterest/pinterest.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>

#include "base/time_format.h"
#include "delivery/event_fields.h"
#include "delivery/user_identity.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

std::string StandardEventName(std::string_view segment_name) {
  static const std::pair<std::string_view, std::string_view> kSpec[] = {
      {"Order Completed", "checkout"},
      {"Product Added", "add_to_cart"},
      {"Products Searched", "search"},
      {"Product List Viewed", "view_category"},
      {"Product Category Viewed", "view_category"},
      {"Signed Up", "signup"},
  };
  for (const auto& [from, to] : kSpec)
    if (from == segment_name) return std::string(to);
  return "custom";
}

// Pinterest takes prices and values as decimal strings ("25.5").
std::string Decimal(double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", d);
  return buf;
}

json::object CustomData(const json::object& props) {
  json::object c;
  std::optional<double> value;
  for (const char* key : {"revenue", "total", "value", "price"})
    if (!value) value = delivery::NumberOf(props.if_contains(key));
  if (value) c["value"] = Decimal(*value);
  if (const json::value* cur = props.if_contains("currency"); cur && cur->is_string())
    c["currency"] = *cur;
  json::array ids, contents;
  auto add = [&](const json::object& p) {
    std::string id = delivery::IdText(p.if_contains("product_id"));
    if (id.empty()) id = delivery::IdText(p.if_contains("sku"));
    if (id.empty()) return;
    ids.push_back(json::value(id));
    json::object item{{"id", id}};
    if (auto price = delivery::NumberOf(p.if_contains("price")))
      item["item_price"] = Decimal(*price);
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
  if (!ids.empty()) {
    c["num_items"] = static_cast<int64_t>(ids.size());
    c["content_ids"] = std::move(ids);
    c["contents"] = std::move(contents);
  }
  if (std::string o = delivery::IdText(props.if_contains("order_id")); !o.empty())
    c["order_id"] = o;
  if (const json::value* q = props.if_contains("query"); q && q->is_string())
    c["search_string"] = *q;
  return c;
}

class Pinterest final : public delivery::Destination {
 public:
  Pinterest(std::string endpoint, const std::string& ad_account_id, const std::string& token,
            std::string action_source)
      : auth_("Bearer " + token), action_source_(std::move(action_source)) {
    while (!endpoint.empty() && endpoint.back() == '/')
      endpoint.pop_back();
    url_ = endpoint + "/v5/ad_accounts/" + ad_account_id + "/events";
  }

  // The API for Conversions takes up to 1,000 events per request.
  delivery::DestinationLimits limits() const override { return {1000, 1u << 20}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    json::array data;
    delivery::HttpRequest r;
    delivery::MapEachEvent(
        events, &out, [&](size_t i, const json::object& e, std::string_view type) {
          std::string name;
          if (type == "track") {
            if (delivery::FieldString(e, {"event"}).empty())
              return delivery::EventMapping::Unmappable("pinterest: track without event");
            name = StandardEventName(delivery::FieldString(e, {"event"}));
          } else if (type == "page") {
            name = "page_visit";
          } else {
            return delivery::EventMapping::Skip("pinterest has no mapping for type '" +
                                                std::string(type) + "'");
          }
          json::object user;
          auto hashed = [&](std::string_view key, const std::string& normalized) {
            std::string h = delivery::Sha256Identifier(normalized);
            if (!h.empty()) user[key] = json::array{json::value(h)};
          };
          hashed("em", delivery::TrimAndLowercase(delivery::UserEmail(e)));
          hashed("ph", delivery::PhoneDigits(delivery::UserPhone(e)));
          std::string id = delivery::FieldString(e, {"userId"});
          if (id.empty()) id = delivery::FieldString(e, {"anonymousId"});
          hashed("external_id", id);
          std::string ip = delivery::FieldString(e, {"context", "ip"});
          std::string agent = delivery::FieldString(e, {"context", "userAgent"});
          if (!user.contains("em") && (ip.empty() || agent.empty()))
            return delivery::EventMapping::Unmappable(
                "pinterest: user_data needs an email, or context.ip with context.userAgent");
          delivery::SetIfNotEmpty(user, "client_ip_address", ip);
          delivery::SetIfNotEmpty(user, "client_user_agent", agent);

          json::object ev;
          ev["event_name"] = name;
          ev["action_source"] = action_source_;
          auto ts = ParseIso8601(delivery::FieldString(e, {"timestamp"}));
          ev["event_time"] = (ts ? ts->value() : events[i].received_at.value()) / 1000;
          ev["event_id"] = events[i].message_id;
          delivery::SetIfNotEmpty(ev, "event_source_url",
                                  delivery::FieldString(e, {"context", "page", "url"}));
          ev["user_data"] = std::move(user);
          if (type == "track") {
            if (const json::value* p = e.if_contains("properties"); p && p->is_object()) {
              json::object custom = CustomData(p->as_object());
              if (!custom.empty()) ev["custom_data"] = std::move(custom);
            }
          }
          data.push_back(std::move(ev));
          r.events.push_back(i);
          return delivery::EventMapping::Mapped();
        });
    if (r.events.empty()) return out;
    json::object body;
    body["data"] = std::move(data);
    r.url = url_;
    r.headers = {{"Content-Type", "application/json"}, {"Authorization", auth_}};
    r.body = json::serialize(body);
    out.requests.push_back(std::move(r));
    return out;
  }

  std::vector<delivery::Outcome> Classify(const delivery::HttpRequest& request,
                                          const delivery::HttpResponse& response) const override {
    size_t n = request.events.size();
    boost::system::error_code ec;
    json::value doc = json::parse(response.body, ec);
    const json::object* o = !ec && doc.is_object() ? &doc.as_object() : nullptr;
    if (response.status == 200) {
      std::vector<delivery::Outcome> out(n, delivery::Outcome::Delivered());
      const json::value* events = o ? o->if_contains("events") : nullptr;
      if (events == nullptr || !events->is_array()) return out;
      // One answer per event, in request order.
      const json::array& answers = events->as_array();
      for (size_t k = 0; k < n && k < answers.size(); ++k) {
        if (!answers[k].is_object()) continue;
        const json::object& a = answers[k].as_object();
        if (delivery::FieldString(a, {"status"}) != "failed") continue;
        std::string message = delivery::FieldString(a, {"error_message"});
        out[k] = delivery::Outcome::Rejected("pinterest: " +
                                             (message.empty() ? std::string("failed") : message));
      }
      return out;
    }
    std::string reason = "pinterest: http " + std::to_string(response.status);
    if (o != nullptr) {
      std::string message = delivery::FieldString(*o, {"message"});
      if (!message.empty()) reason = "pinterest: " + message;
      if (const json::value* c = o->if_contains("code"); c && c->is_int64())
        reason += " (code " + std::to_string(c->as_int64()) + ")";
    }
    delivery::Outcome outcome = delivery::ClassifyByStatus(response);
    if (response.status == 401 || response.status == 403) {
      outcome = delivery::Outcome::AuthFailure(reason);
    } else if (outcome.kind == delivery::Outcome::Kind::kDelivered) {  // a 2xx but 200
      outcome = delivery::Outcome::Rejected("pinterest: unexpected http " +
                                            std::to_string(response.status));
    } else if (response.status != 0) {
      outcome.reason = reason;
    }
    return std::vector<delivery::Outcome>(n, outcome);
  }

 private:
  std::string url_;
  std::string auth_;
  std::string action_source_;
};

struct PinterestSettings {
  std::string ad_account_id;
  std::string access_token;
  std::string action_source;
  std::string endpoint;
};

}  // namespace

delivery::DestinationType PinterestType() {
  using S = PinterestSettings;
  auto t = delivery::MakeDestinationType<S>(
      "pinterest", "Pinterest Conversions API",
      "Sends conversion events to Pinterest's API for Conversions (hashed user data, event_id "
      "= messageId).",
      delivery::SettingsTable<S>()
          .String("ad_account_id", &S::ad_account_id, "the ad account the events belong to")
          .Required()
          .Secret("access_token", &S::access_token, "conversion access token (Bearer)")
          .Required()
          .Enum("action_source", &S::action_source, {"web", "app_android", "app_ios", "offline"},
                "where the conversions happened")
          .Default("web")
          .Url("endpoint", &S::endpoint, "API base URL")
          .Default("https://api.pinterest.com"),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (!delivery::IsPathSegment(s.ad_account_id))
          return InvalidArgument("ad_account_id: must be letters, digits, '-', '_' or '.'");
        if (s.access_token.empty()) return InvalidArgument("access_token: must not be empty");
        return std::unique_ptr<delivery::Destination>(
            new Pinterest(s.endpoint, s.ad_account_id, s.access_token, s.action_source));
      });
  t.support = {
      "track (e-commerce → standard events, others custom), page → page_visit; identify, screen, "
      "group, alias skipped",
      "≤ 1,000 events per request", "messageId as event_id",
      "not forwarded (Pinterest has no deletion call for conversion events)"};
  return t;
}

}  // namespace sy::destinations
