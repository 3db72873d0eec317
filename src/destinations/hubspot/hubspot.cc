#include "destinations/hubspot/hubspot.h"

#include <boost/json.hpp>
#include <cstdio>
#include <map>

#include "base/time_format.h"
#include "delivery/event_fields.h"
#include "delivery/user_identity.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

constexpr std::string_view kUpsertPath = "/crm/v3/objects/contacts/batch/upsert";

// The digest of an email that the upsert URL's fragment carries per event (16 hex digits of its
// SHA-256: enough to tell a batch's emails apart, and no address in logs).
std::string EmailDigest(std::string_view lowercased_email) {
  return delivery::Sha256Identifier(lowercased_email).substr(0, 16);
}

// A scalar as HubSpot's property values are written: strings ("3", "true").
std::optional<std::string> ScalarString(const json::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_bool()) return v->as_bool() ? "true" : "false";
  if (v->is_int64()) return std::to_string(v->as_int64());
  if (v->is_uint64()) return std::to_string(v->as_uint64());
  if (v->is_double()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.15g", v->as_double());
    return std::string(buf);
  }
  return std::nullopt;
}

void ContactProperties(const json::object& e, json::object& props) {
  auto set = [&](std::string_view key, const std::string& v) {
    if (!v.empty()) props[key] = v;
  };
  auto trait = [&](std::string_view name) { return delivery::UserTrait(e, name); };
  auto either = [&](std::string_view a, std::string_view b) {
    std::string v = trait(a);
    return v.empty() ? trait(b) : v;
  };
  set("firstname", either("firstName", "first_name"));
  set("lastname", either("lastName", "last_name"));
  set("phone", trait("phone"));
  std::string company = trait("company");
  set("company",
      company.empty() ? delivery::FieldString(e, {"traits", "company", "name"}) : company);
  set("website", trait("website"));
  set("jobtitle", trait("title"));
  set("address", delivery::FieldString(e, {"traits", "address", "street"}));
  set("city", delivery::FieldString(e, {"traits", "address", "city"}));
  set("state", delivery::FieldString(e, {"traits", "address", "state"}));
  set("zip", delivery::FieldString(e, {"traits", "address", "postal_code"}));
  set("country", delivery::FieldString(e, {"traits", "address", "country"}));
}

class Hubspot final : public delivery::Destination {
 public:
  Hubspot(std::string endpoint, const std::string& token, std::map<std::string, std::string> events)
      : auth_("Bearer " + token), events_(std::move(events)) {
    while (!endpoint.empty() && endpoint.back() == '/')
      endpoint.pop_back();
    endpoint_ = std::move(endpoint);
  }

  // Batch upsert: at most 100 inputs per request.
  delivery::DestinationLimits limits() const override { return {100, 1u << 20}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    // Inputs by email, in the order each email first appears; later traits win.
    std::vector<std::pair<std::string, json::object>> inputs;
    std::map<std::string, size_t> input_of;
    delivery::HttpRequest upsert;
    std::string digests;
    delivery::MapEachEvent(
        events, &out, [&](size_t i, const json::object& e, std::string_view type) {
          if (type != "identify" && type != "track")
            return delivery::EventMapping::Skip("hubspot has no mapping for type '" +
                                                std::string(type) + "'");
          std::string email = delivery::TrimAndLowercase(delivery::UserEmail(e));
          if (type == "track") {
            std::string name = delivery::FieldString(e, {"event"});
            auto mapped = events_.find(name);
            if (mapped == events_.end())
              return delivery::EventMapping::Skip("hubspot: event '" + name +
                                                  "' is not mapped to a custom event");
            if (email.empty())
              return delivery::EventMapping::Unmappable(
                  "hubspot: custom events need the user's email");
            json::object props;
            if (const json::value* p = e.if_contains("properties"); p && p->is_object())
              for (const auto& [k, v] : p->as_object())
                if (auto s = ScalarString(&v)) props[k] = *s;
            auto ts = ParseIso8601(delivery::FieldString(e, {"timestamp"}));
            json::object body{{"eventName", mapped->second},
                              {"email", email},
                              {"occurredAt", FormatIso8601(ts ? *ts : events[i].received_at)},
                              {"properties", std::move(props)}};
            out.requests.push_back(Request("/events/v3/send", json::serialize(body), {i}));
            return delivery::EventMapping::Mapped();
          }
          if (email.empty())
            return delivery::EventMapping::Unmappable(
                "hubspot: identify needs traits.email (contacts are upserted by email)");
          auto [it, fresh] = input_of.emplace(email, inputs.size());
          if (fresh) inputs.emplace_back(email, json::object{{"email", email}});
          ContactProperties(e, inputs[it->second].second);
          upsert.events.push_back(i);
          digests += (digests.empty() ? "" : ",") + EmailDigest(email);
          return delivery::EventMapping::Mapped();
        });
    if (!inputs.empty()) {
      json::array array;
      for (auto& [email, props] : inputs)
        array.push_back({{"idProperty", "email"}, {"id", email}, {"properties", std::move(props)}});
      json::object body{{"inputs", std::move(array)}};
      auto r = Request(std::string(kUpsertPath), json::serialize(body), std::move(upsert.events));
      r.url += "#" + digests;
      out.requests.insert(out.requests.begin(), std::move(r));
    }
    return out;
  }

  std::vector<delivery::Outcome> Classify(const delivery::HttpRequest& request,
                                          const delivery::HttpResponse& response) const override {
    size_t n = request.events.size();
    boost::system::error_code ec;
    json::value doc = json::parse(response.body, ec);
    const json::object* o = !ec && doc.is_object() ? &doc.as_object() : nullptr;
    if (response.status == 207 && o != nullptr) return MultiStatus(request, *o);
    delivery::Outcome outcome = delivery::ClassifyByStatus(response);
    if (outcome.kind == delivery::Outcome::Kind::kDelivered || response.status == 0)
      return std::vector<delivery::Outcome>(n, outcome);
    std::string reason = "hubspot: http " + std::to_string(response.status);
    if (o != nullptr) reason = Reason(*o, reason);
    if (response.status == 401 || response.status == 403) {
      outcome = delivery::Outcome::AuthFailure(reason);
    } else if (response.status == 429) {
      auto after = delivery::RetryAfterMs(response);
      if (!after) {
        std::string interval = response.Header("X-HubSpot-RateLimit-Interval-Milliseconds");
        char* end = nullptr;
        long long ms = std::strtoll(interval.c_str(), &end, 10);
        if (!interval.empty() && *end == '\0' && ms > 0 && ms <= 86'400'000) after = ms;
      }
      outcome = delivery::Outcome::Retry(reason, after);
    } else {
      outcome.reason = reason;
    }
    return std::vector<delivery::Outcome>(n, outcome);
  }

 private:
  static std::string Reason(const json::object& o, std::string fallback) {
    std::string message = delivery::FieldString(o, {"message"});
    if (message.empty()) return fallback;
    std::string category = delivery::FieldString(o, {"category"});
    return "hubspot: " + message + (category.empty() ? "" : " (" + category + ")");
  }

  // A 207 to the batch upsert: the errors name failed inputs by id (the email).
  std::vector<delivery::Outcome> MultiStatus(const delivery::HttpRequest& request,
                                             const json::object& o) const {
    size_t n = request.events.size();
    std::vector<delivery::Outcome> out(n, delivery::Outcome::Delivered());
    std::vector<std::string> digests;
    if (size_t hash = request.url.find('#'); hash != std::string::npos) {
      std::string_view rest = std::string_view(request.url).substr(hash + 1);
      while (!rest.empty()) {
        size_t comma = rest.find(',');
        digests.emplace_back(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
      }
    }
    const json::value* errors = o.if_contains("errors");
    if (errors == nullptr || !errors->is_array()) return out;
    for (const auto& err : errors->as_array()) {
      if (!err.is_object()) continue;
      std::string reason = Reason(err.as_object(), "hubspot: input failed");
      const json::value* ids = delivery::FieldAt(err.as_object(), {"context", "ids"});
      if (ids == nullptr || !ids->is_array() || digests.size() != n) {
        // Nothing names the failed inputs: every event of the request carries the error.
        for (auto& outcome : out)
          outcome = delivery::Outcome::Rejected(reason);
        continue;
      }
      for (const auto& id : ids->as_array()) {
        if (!id.is_string()) continue;
        std::string digest = EmailDigest(delivery::TrimAndLowercase(id.as_string()));
        for (size_t k = 0; k < n; ++k)
          if (digests[k] == digest) out[k] = delivery::Outcome::Rejected(reason);
      }
    }
    return out;
  }

  delivery::HttpRequest Request(std::string path, std::string body, std::vector<size_t> idx) const {
    delivery::HttpRequest r;
    r.url = endpoint_ + path;
    r.headers = {{"Content-Type", "application/json"}, {"Authorization", auth_}};
    r.body = std::move(body);
    r.events = std::move(idx);
    return r;
  }

  std::string endpoint_;
  std::string auth_;
  std::map<std::string, std::string> events_;
};

struct HubspotSettings {
  std::string access_token;
  std::map<std::string, std::string> events;
  std::string endpoint;
};

}  // namespace

delivery::DestinationType HubspotType() {
  using S = HubspotSettings;
  auto t = delivery::MakeDestinationType<S>(
      "hubspot", "HubSpot",
      "Upserts contacts by email (identify) and sends custom events (track) to HubSpot.",
      delivery::SettingsTable<S>()
          .Secret("access_token", &S::access_token,
                  "private app access token (scopes crm.objects.contacts.write, "
                  "analytics.behavioral_events.send)")
          .Required()
          .Map("events", &S::events,
               "Segment event name → HubSpot custom event internal name (pe<portal>_<name>); "
               "track events not listed are skipped")
          .Url("endpoint", &S::endpoint, "API base URL")
          .Default("https://api.hubapi.com"),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (s.access_token.empty()) return InvalidArgument("access_token: must not be empty");
        for (const auto& [from, to] : s.events)
          if (to.empty()) return InvalidArgument("events." + from + ": must name a HubSpot event");
        return std::unique_ptr<delivery::Destination>(
            new Hubspot(s.endpoint, s.access_token, s.events));
      });
  t.support = {
      "identify → contact upsert by email, track → custom event (names mapped in settings); page, "
      "screen, group, alias skipped",
      "≤ 100 contacts per upsert; one custom event per request",
      "none (an upsert by email repeats harmlessly)",
      "not forwarded (HubSpot: GDPR delete of a contact)"};
  return t;
}

}  // namespace sy::destinations
