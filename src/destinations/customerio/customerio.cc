#include "destinations/customerio/customerio.h"

#include <openssl/sha.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>

#include "base/time_format.h"
#include "delivery/event_fields.h"
#include "http/basic_auth.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

// Customer.io's documented cap on a Track API request body.
constexpr size_t kMaxBody = 32 * 1024;

// A path segment: everything but unreserved characters percent-encoded.
std::string PathSegment(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

class Customerio final : public delivery::Destination {
 public:
  Customerio(std::string endpoint, const std::string& site_id, const std::string& api_key)
      : auth_(http::BasicAuthorization(site_id, api_key)) {
    while (!endpoint.empty() && endpoint.back() == '/')
      endpoint.pop_back();
    endpoint_ = std::move(endpoint);
  }

  // Track API v1: one call per request.
  delivery::DestinationLimits limits() const override { return {1, kMaxBody}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    delivery::MapEachEvent(
        events, &out, [&](size_t i, const json::object& e, std::string_view type) {
          if (type == "group" || type == "alias") {
            return delivery::EventMapping::Skip("customer.io's track API v1 has no " +
                                                std::string(type));
          }
          const std::string user = delivery::FieldString(e, {"userId"});
          const std::string anon = delivery::FieldString(e, {"anonymousId"});
          auto ts = ParseIso8601(delivery::FieldString(e, {"timestamp"}));
          const TimestampMs at = ts ? *ts : events[i].received_at;
          delivery::HttpRequest r;
          json::object body;
          if (type == "identify") {
            if (user.empty()) {
              return delivery::EventMapping::Skip("customer.io identifies people by userId");
            }
            if (const json::value* t = delivery::FieldAt(e, {"traits"}); t && t->is_object())
              body = t->as_object();
            if (auto created = ParseIso8601(delivery::FieldString(e, {"traits", "createdAt"}))) {
              body.erase("createdAt");
              body["created_at"] = created->value() / 1000;
            }
            r.method = "PUT";
            r.url = endpoint_ + "/api/v1/customers/" + PathSegment(user);
          } else if (type == "track" || type == "page" || type == "screen") {
            std::string name;
            if (type == "track") {
              name = delivery::FieldString(e, {"event"});
            } else if (type == "page") {
              name = delivery::FieldString(e, {"context", "page", "url"});
              if (name.empty()) name = delivery::FieldString(e, {"properties", "url"});
              body["type"] = "page";
            } else {
              name = delivery::FieldString(e, {"name"});
              body["type"] = "screen";
            }
            if (name.empty()) {
              return delivery::EventMapping::Unmappable(std::string(type) +
                                                        (type == "track"  ? " without event"
                                                         : type == "page" ? " without a URL"
                                                                          : " without a name"));
            }
            body["name"] = name;
            const json::value* p = delivery::FieldAt(e, {"properties"});
            body["data"] = p && p->is_object() ? *p : json::object();
            body["timestamp"] = at.value() / 1000;
            body["id"] = CustomerioEventId(at.value(), events[i].message_id);
            if (!user.empty()) {
              r.url = endpoint_ + "/api/v1/customers/" + PathSegment(user) + "/events";
            } else if (!anon.empty()) {
              body["anonymous_id"] = anon;
              r.url = endpoint_ + "/api/v1/events";
            } else {
              return delivery::EventMapping::Unmappable(
                  "customer.io needs a userId or anonymousId");
            }
          } else {
            return delivery::EventMapping::Unmappable("customer.io has no mapping for type '" +
                                                      std::string(type) + "'");
          }
          r.body = json::serialize(body);
          if (r.body.size() > kMaxBody) {
            return delivery::EventMapping::Unmappable("request of " +
                                                      std::to_string(r.body.size()) +
                                                      " bytes: customer.io takes at most 32 KB");
          }
          r.headers = {{"Content-Type", "application/json"}, {"Authorization", auth_}};
          r.events = {i};
          out.requests.push_back(std::move(r));
          return delivery::EventMapping::Mapped();
        });
    return out;
  }

  std::vector<delivery::Outcome> Classify(const delivery::HttpRequest& request,
                                          const delivery::HttpResponse& response) const override {
    delivery::Outcome o = delivery::ClassifyByStatus(response);
    if (response.status == 401 || response.status == 403) {
      o = delivery::Outcome::AuthFailure("customer.io: " + Message(response));
    } else if (o.kind == delivery::Outcome::Kind::kRejected && response.status != 0) {
      o = delivery::Outcome::Rejected("customer.io: " + Message(response));
    }
    return std::vector<delivery::Outcome>(request.events.size(), o);
  }

 private:
  // Customer.io's error body: {"meta": {"error": "..."}} (or "errors": [...]).
  static std::string Message(const delivery::HttpResponse& response) {
    boost::system::error_code ec;
    json::value doc = json::parse(response.body, ec);
    if (!ec && doc.is_object()) {
      std::string m = delivery::FieldString(doc.as_object(), {"meta", "error"});
      if (!m.empty()) return m;
      const json::value* errors = delivery::FieldAt(doc.as_object(), {"meta", "errors"});
      if (errors && errors->is_array() && !errors->as_array().empty() &&
          errors->as_array()[0].is_string())
        return std::string(errors->as_array()[0].as_string());
    }
    return "http " + std::to_string(response.status);
  }

  std::string endpoint_;
  std::string auth_;
};

struct CustomerioSettings {
  std::string site_id;
  std::string api_key;
  std::string endpoint;
};

}  // namespace

std::string CustomerioEventId(int64_t timestamp_ms, const std::string& message_id) {
  // ULID: 48-bit milliseconds then 80 bits, Crockford base32, 26 characters. The 80 bits are the
  // first 10 bytes of SHA-256(messageId), so the id is stable across resends.
  static constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(message_id.data()), message_id.size(), md);
  unsigned char bytes[16];
  const uint64_t ms = static_cast<uint64_t>(std::max<int64_t>(0, timestamp_ms)) & 0xFFFFFFFFFFFFull;
  for (int k = 0; k < 6; ++k)
    bytes[k] = static_cast<unsigned char>(ms >> (8 * (5 - k)));
  for (int k = 0; k < 10; ++k)
    bytes[6 + k] = md[k];
  // 128 bits as 26 base32 digits (130 bits, the top two zero): digit k is bits [5k-2, 5k+3).
  auto bit = [&](int b) { return b < 0 ? 0 : (bytes[b / 8] >> (7 - b % 8)) & 1; };
  std::string out(26, '0');
  for (int k = 0; k < 26; ++k) {
    int d = 0;
    for (int b = 5 * k - 2; b < 5 * k + 3; ++b)
      d = (d << 1) | bit(b);
    out[static_cast<size_t>(k)] = kCrockford[d];
  }
  return out;
}

delivery::DestinationType CustomerioType() {
  using S = CustomerioSettings;
  auto t = delivery::MakeDestinationType<S>(
      "customerio", "Customer.io",
      "Identifies people and tracks events, page views and screens in Customer.io (Track API "
      "v1).",
      delivery::SettingsTable<S>()
          .String("site_id", &S::site_id, "Track API site ID (Basic auth user)")
          .Required()
          .Secret("api_key", &S::api_key, "Track API key (Basic auth password)")
          .Required()
          .Url("endpoint", &S::endpoint, "Track API base URL (EU: https://track-eu.customer.io)")
          .Default("https://track.customer.io"),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (s.site_id.empty()) return InvalidArgument("site_id: must not be empty");
        if (s.api_key.empty()) return InvalidArgument("api_key: must not be empty");
        return std::unique_ptr<delivery::Destination>(
            new Customerio(s.endpoint, s.site_id, s.api_key));
      });
  t.support = {"identify, track, page, screen; group and alias skipped",
               "no (Track API v1: one call per request, ≤ 32 KB)",
               "a ULID from messageId as the event id",
               "not forwarded (Customer.io: DELETE /api/v1/customers/{id})"};
  return t;
}

}  // namespace sy::destinations
