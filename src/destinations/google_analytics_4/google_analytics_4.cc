#include "destinations/google_analytics_4/google_analytics_4.h"

#include <boost/json.hpp>
#include <cctype>
#include <map>

#include "base/time_format.h"
#include "delivery/event_fields.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

constexpr size_t kMaxEventsPerRequest = 25;
constexpr size_t kMaxParams = 25;
constexpr int64_t kMaxTimestampAgeMs = 72LL * 3600 * 1000;

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// Segment e-commerce spec → GA4 recommended events.
const std::map<std::string, std::string, std::less<>>& EcommerceNames() {
  static const std::map<std::string, std::string, std::less<>> kNames = {
      {"Product Viewed", "view_item"},           {"Product Added", "add_to_cart"},
      {"Product Removed", "remove_from_cart"},   {"Checkout Started", "begin_checkout"},
      {"Order Completed", "purchase"},           {"Order Refunded", "refund"},
      {"Product List Viewed", "view_item_list"},
  };
  return kNames;
}

json::object Item(const json::object& p) {
  json::object item;
  auto copy = [&](std::string_view from, std::string_view to) {
    if (const json::value* v = p.if_contains(from); v && !v->is_object() && !v->is_array())
      item[to] = *v;
  };
  copy("product_id", "item_id");
  if (!item.contains("item_id")) copy("sku", "item_id");
  copy("name", "item_name");
  copy("category", "item_category");
  copy("brand", "item_brand");
  copy("variant", "item_variant");
  copy("price", "price");
  copy("quantity", "quantity");
  copy("coupon", "coupon");
  return item;
}

class GoogleAnalytics4 final : public delivery::Destination {
 public:
  GoogleAnalytics4(const std::string& endpoint, const std::string& measurement_id,
                   const std::string& api_secret) {
    std::string base = endpoint;
    while (!base.empty() && base.back() == '/')
      base.pop_back();
    url_ = base + "/mp/collect?measurement_id=" + PercentEncode(measurement_id) +
           "&api_secret=" + PercentEncode(api_secret);
  }

  delivery::DestinationLimits limits() const override { return {kMaxEventsPerRequest, 130 * 1024}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    struct Group {
      std::string client_id, user_id;
      json::array events;
      std::vector<size_t> idx;
    };
    std::vector<Group> groups;  // in order of first appearance
    delivery::MapEachEvent(
        events, &out, [&](size_t i, const json::object& e, std::string_view type) {
          std::string user = delivery::FieldString(e, {"userId"});
          std::string client = delivery::FieldString(e, {"anonymousId"});
          if (client.empty()) client = user;
          json::object ev;
          json::object params;
          const json::value* pv = e.if_contains("properties");
          const json::object empty;
          const json::object& props = pv && pv->is_object() ? pv->as_object() : empty;
          if (type == "page") {
            ev["name"] = "page_view";
            std::string url = delivery::FieldString(props, {"url"});
            if (url.empty()) url = delivery::FieldString(e, {"context", "page", "url"});
            std::string title = delivery::FieldString(props, {"title"});
            if (title.empty()) title = delivery::FieldString(e, {"context", "page", "title"});
            std::string referrer = delivery::FieldString(props, {"referrer"});
            if (referrer.empty())
              referrer = delivery::FieldString(e, {"context", "page", "referrer"});
            if (!url.empty()) params["page_location"] = url;
            if (!title.empty()) params["page_title"] = title;
            if (!referrer.empty()) params["page_referrer"] = referrer;
          } else if (type == "track") {
            std::string name = delivery::FieldString(e, {"event"});
            auto eco = EcommerceNames().find(name);
            if (eco != EcommerceNames().end()) {
              ev["name"] = eco->second;
              if (const json::value* v = props.if_contains("order_id"))
                params["transaction_id"] = *v;
              for (const char* k : {"revenue", "total", "value", "price"}) {
                const json::value* v = props.if_contains(k);
                if (v && v->is_number() && !params.contains("value")) params["value"] = *v;
              }
              std::string currency = delivery::FieldString(props, {"currency"});
              if (!currency.empty()) params["currency"] = currency;
              json::array items;
              if (const json::value* products = props.if_contains("products");
                  products && products->is_array()) {
                for (const auto& p : products->as_array())
                  if (p.is_object()) items.push_back(Item(p.as_object()));
              } else if (props.contains("product_id") || props.contains("sku")) {
                items.push_back(Item(props));
              }
              if (!items.empty()) params["items"] = std::move(items);
            } else {
              std::string ga = Ga4Name(name);
              if (ga.empty()) {
                return delivery::EventMapping::Unmappable("track event has no usable name");
              }
              ev["name"] = ga;
            }
          } else {
            return delivery::EventMapping::Unmappable(
                "google-analytics-4 has no mapping for type '" + std::string(type) + "'");
          }
          for (const auto& [k, v] : props) {
            if (params.size() >= kMaxParams) break;
            if (v.is_object() || v.is_array() || v.is_null()) continue;
            std::string key = Ga4Name(k);
            if (!key.empty() && !params.contains(key)) params[key] = v;
          }
          ev["params"] = std::move(params);
          auto ts = ParseIso8601(delivery::FieldString(e, {"timestamp"}));
          if (ts && events[i].received_at.value() - ts->value() <= kMaxTimestampAgeMs) {
            ev["timestamp_micros"] = ts->value() * 1000;
          }
          Group* g = nullptr;
          for (auto& x : groups)
            if (x.client_id == client && x.user_id == user) g = &x;
          if (!g) {
            groups.push_back({client, user, {}, {}});
            g = &groups.back();
          }
          g->events.push_back(std::move(ev));
          g->idx.push_back(i);
          return delivery::EventMapping::Mapped();
        });
    for (auto& g : groups) {
      json::object body;
      body["client_id"] = g.client_id;
      if (!g.user_id.empty()) body["user_id"] = g.user_id;
      body["events"] = std::move(g.events);
      delivery::HttpRequest r;
      r.url = url_;
      r.headers = {{"Content-Type", "application/json"}};
      r.body = json::serialize(body);
      r.events = std::move(g.idx);
      out.requests.push_back(std::move(r));
    }
    return out;
  }

 private:
  std::string url_;
};

}  // namespace

std::string Ga4Name(std::string_view in) {
  std::string out;
  bool underscore = false;
  for (unsigned char c : in) {
    if (std::isalnum(c)) {
      if (underscore && !out.empty()) out.push_back('_');
      underscore = false;
      out.push_back(static_cast<char>(std::tolower(c)));
    } else {
      underscore = true;
    }
  }
  if (out.empty()) return out;
  if (!std::isalpha(static_cast<unsigned char>(out[0]))) out = "x" + out;
  for (const char* reserved : {"google_", "ga_", "firebase_"}) {
    if (out.starts_with(reserved)) out = "x_" + out;
  }
  if (out.size() > 40) out.resize(40);
  return out;
}

namespace {

struct GoogleAnalytics4Settings {
  std::string measurement_id;
  std::string api_secret;
  std::string endpoint;
};

}  // namespace

delivery::DestinationType GoogleAnalytics4Type() {
  using S = GoogleAnalytics4Settings;
  auto t = delivery::MakeDestinationType<S>(
      "google-analytics-4", "Google Analytics 4",
      "Sends events to GA4 through the Measurement Protocol.",
      delivery::SettingsTable<S>()
          .String("measurement_id", &S::measurement_id, "G-XXXXXXX")
          .Required()
          .Secret("api_secret", &S::api_secret, "Measurement Protocol API secret")
          .Required()
          .Url("endpoint", &S::endpoint, "collection base URL")
          .Default("https://www.google-analytics.com"),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (s.measurement_id.empty() || s.api_secret.empty())
          return InvalidArgument("measurement_id and api_secret must not be empty");
        return std::unique_ptr<delivery::Destination>(
            new GoogleAnalytics4(s.endpoint, s.measurement_id, s.api_secret));
      });
  t.support = {"track, page; identify, group and alias unmappable",
               "≤ 25 events per request, one client each", "none (GA4 has no dedupe key)",
               "not forwarded (GA4: User Deletion API)"};
  return t;
}

}  // namespace sy::destinations
