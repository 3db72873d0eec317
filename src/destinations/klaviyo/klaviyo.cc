#include "destinations/klaviyo/klaviyo.h"

#include <boost/json.hpp>

#include "base/time_format.h"
#include "delivery/event_fields.h"
#include "delivery/user_identity.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

// Traits that become profile fields rather than custom properties.
constexpr std::string_view kProfileTraits[] = {"email",    "phone",     "firstName", "first_name",
                                               "lastName", "last_name", "company",   "title",
                                               "avatar",   "address",   "id"};

std::string Phone(const json::object& e) {
  std::string raw = delivery::UserPhone(e);
  // Klaviyo takes E.164; a number written with its "+" is made digits-only behind it, anything
  // else is passed as written (Klaviyo's answer names the problem).
  if (!raw.empty() && raw.front() == '+') return "+" + delivery::PhoneDigits(raw);
  return raw;
}

class Klaviyo final : public delivery::Destination {
 public:
  Klaviyo(std::string endpoint, const std::string& api_key, std::string revision)
      : auth_("Klaviyo-API-Key " + api_key), revision_(std::move(revision)) {
    while (!endpoint.empty() && endpoint.back() == '/')
      endpoint.pop_back();
    endpoint_ = std::move(endpoint);
  }

  // /api/events and /api/profile-import take one resource per request.
  delivery::DestinationLimits limits() const override { return {1, 1u << 20}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    delivery::MapEachEvent(
        events, &out, [&](size_t i, const json::object& e, std::string_view type) {
          if (type != "track" && type != "identify")
            return delivery::EventMapping::Skip("klaviyo has no mapping for type '" +
                                                std::string(type) + "'");
          json::object ids;
          delivery::SetIfNotEmpty(ids, "email", delivery::TrimAndLowercase(delivery::UserEmail(e)));
          delivery::SetIfNotEmpty(ids, "phone_number", Phone(e));
          delivery::SetIfNotEmpty(ids, "external_id", delivery::FieldString(e, {"userId"}));
          if (ids.empty())
            return delivery::EventMapping::Unmappable(
                "klaviyo: no email, phone or userId to name the profile");
          json::object attributes;
          std::string path;
          std::string resource;
          if (type == "track") {
            std::string name = delivery::FieldString(e, {"event"});
            if (name.empty())
              return delivery::EventMapping::Unmappable("klaviyo: track without event");
            json::object props;
            if (const json::value* p = e.if_contains("properties"); p && p->is_object())
              props = p->as_object();
            for (const char* key : {"revenue", "value", "total"}) {
              const json::value* v = props.if_contains(key);
              if (v && v->is_number()) {
                attributes["value"] = *v;
                break;
              }
            }
            auto ts = ParseIso8601(delivery::FieldString(e, {"timestamp"}));
            attributes["properties"] = std::move(props);
            attributes["time"] = FormatIso8601(ts ? *ts : events[i].received_at);
            attributes["unique_id"] = events[i].message_id;
            attributes["metric"] = {
                {"data", {{"type", "metric"}, {"attributes", {{"name", name}}}}}};
            attributes["profile"] = {{"data", {{"type", "profile"}, {"attributes", ids}}}};
            path = "/api/events";
            resource = "event";
          } else {
            attributes = std::move(ids);
            ProfileFields(e, attributes);
            path = "/api/profile-import";
            resource = "profile";
          }
          json::object body{{"data", {{"type", resource}, {"attributes", std::move(attributes)}}}};
          delivery::HttpRequest r;
          r.url = endpoint_ + path;
          r.headers = {{"Content-Type", "application/vnd.api+json"},
                       {"Accept", "application/vnd.api+json"},
                       {"revision", revision_},
                       {"Authorization", auth_}};
          r.body = json::serialize(body);
          r.events = {i};
          out.requests.push_back(std::move(r));
          return delivery::EventMapping::Mapped();
        });
    return out;
  }

  std::vector<delivery::Outcome> Classify(const delivery::HttpRequest& request,
                                          const delivery::HttpResponse& response) const override {
    return std::vector<delivery::Outcome>(request.events.size(), ClassifyResponse(response));
  }

 private:
  static void ProfileFields(const json::object& e, json::object& a) {
    auto trait = [&](std::string_view name) { return delivery::UserTrait(e, name); };
    auto first_of = [&](std::string_view x, std::string_view y) {
      std::string v = trait(x);
      return v.empty() ? trait(y) : v;
    };
    delivery::SetIfNotEmpty(a, "first_name", first_of("firstName", "first_name"));
    delivery::SetIfNotEmpty(a, "last_name", first_of("lastName", "last_name"));
    std::string company = trait("company");
    if (company.empty()) company = delivery::FieldString(e, {"traits", "company", "name"});
    delivery::SetIfNotEmpty(a, "organization", company);
    delivery::SetIfNotEmpty(a, "title", trait("title"));
    delivery::SetIfNotEmpty(a, "image", trait("avatar"));
    json::object location;
    delivery::SetIfNotEmpty(location, "address1",
                            delivery::FieldString(e, {"traits", "address", "street"}));
    delivery::SetIfNotEmpty(location, "city",
                            delivery::FieldString(e, {"traits", "address", "city"}));
    delivery::SetIfNotEmpty(location, "region",
                            delivery::FieldString(e, {"traits", "address", "state"}));
    delivery::SetIfNotEmpty(location, "country",
                            delivery::FieldString(e, {"traits", "address", "country"}));
    delivery::SetIfNotEmpty(location, "zip",
                            delivery::FieldString(e, {"traits", "address", "postal_code"}));
    delivery::SetIfNotEmpty(location, "ip", delivery::FieldString(e, {"context", "ip"}));
    if (!location.empty()) a["location"] = std::move(location);
    json::object properties;
    if (const json::value* t = e.if_contains("traits"); t && t->is_object()) {
      for (const auto& [k, v] : t->as_object()) {
        bool profile_field = false;
        for (auto p : kProfileTraits)
          profile_field = profile_field || k == p;
        if (!profile_field) properties[k] = v;
      }
    }
    if (!properties.empty()) a["properties"] = std::move(properties);
  }

  static delivery::Outcome ClassifyResponse(const delivery::HttpResponse& response) {
    delivery::Outcome o = delivery::ClassifyByStatus(response);
    if (o.kind == delivery::Outcome::Kind::kDelivered || response.status == 0) return o;
    std::string reason = "klaviyo: http " + std::to_string(response.status);
    boost::system::error_code ec;
    json::value doc = json::parse(response.body, ec);
    const json::value* errors =
        !ec && doc.is_object() ? doc.as_object().if_contains("errors") : nullptr;
    if (errors && errors->is_array() && !errors->as_array().empty() &&
        errors->as_array()[0].is_object()) {
      const json::object& first = errors->as_array()[0].as_object();
      std::string detail = delivery::FieldString(first, {"detail"});
      if (detail.empty()) detail = delivery::FieldString(first, {"title"});
      reason = "klaviyo: " + detail;
      std::string code = delivery::FieldString(first, {"code"});
      std::string pointer = delivery::FieldString(first, {"source", "pointer"});
      if (!code.empty() || !pointer.empty())
        reason += " (" + code + (pointer.empty() ? "" : " at " + pointer) + ")";
    }
    if (response.status == 401 || response.status == 403)
      return delivery::Outcome::AuthFailure(reason);
    o.reason = reason;
    return o;
  }

  std::string endpoint_;
  std::string auth_;
  std::string revision_;
};

// "2025-10-15", optionally with a ".pre" style suffix.
bool IsRevision(const std::string& r) {
  if (r.size() < 10) return false;
  for (size_t i = 0; i < 10; ++i) {
    bool dash = i == 4 || i == 7;
    if (dash ? r[i] != '-' : (r[i] < '0' || r[i] > '9')) return false;
  }
  return r.size() == 10 || r[10] == '.';
}

struct KlaviyoSettings {
  std::string api_key;
  std::string revision;
  std::string endpoint;
};

}  // namespace

delivery::DestinationType KlaviyoType() {
  using S = KlaviyoSettings;
  auto t = delivery::MakeDestinationType<S>(
      "klaviyo", "Klaviyo",
      "Sends events (/api/events) and profiles (/api/profile-import) to Klaviyo's JSON:API.",
      delivery::SettingsTable<S>()
          .Secret("api_key", &S::api_key,
                  "private API key (pk_…) with the events:write and profiles:write scopes")
          .Required()
          .String("revision", &S::revision,
                  "API revision the payloads are written against (the `revision` header)")
          .Default("2025-10-15")
          .Url("endpoint", &S::endpoint, "API base URL")
          .Default("https://a.klaviyo.com"),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (s.api_key.empty()) return InvalidArgument("api_key: must not be empty");
        if (!IsRevision(s.revision))
          return InvalidArgument("revision: must be a date like 2025-10-15");
        return std::unique_ptr<delivery::Destination>(
            new Klaviyo(s.endpoint, s.api_key, s.revision));
      });
  t.support = {"track → event, identify → profile import; page, screen, group, alias skipped",
               "no: one event per request", "messageId as unique_id",
               "not forwarded (Klaviyo: data privacy deletion jobs)"};
  return t;
}

}  // namespace sy::destinations
