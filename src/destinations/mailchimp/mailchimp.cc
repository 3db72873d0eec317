#include "destinations/mailchimp/mailchimp.h"

#include <boost/json.hpp>
#include <cstdio>

#include "base/time_format.h"
#include "delivery/event_fields.h"
#include "delivery/user_identity.h"
#include "http/basic_auth.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

std::optional<std::string> ScalarString(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_bool()) return v.as_bool() ? "true" : "false";
  if (v.is_int64()) return std::to_string(v.as_int64());
  if (v.is_uint64()) return std::to_string(v.as_uint64());
  if (v.is_double()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.15g", v.as_double());
    return std::string(buf);
  }
  return std::nullopt;
}

// The event name Mailchimp takes, or "" when `name` cannot be one.
std::string EventName(const std::string& name) {
  std::string out = name;
  for (char& c : out)
    if (c == ' ') c = '_';
  if (out.size() < 2 || out.size() > 30) return "";
  for (char c : out)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return "";
  return out;
}

class Mailchimp final : public delivery::Destination {
 public:
  Mailchimp(std::string base, const std::string& api_key, const std::string& list_id,
            std::string status_if_new)
      : auth_(http::BasicAuthorization("switchyard", api_key)),
        status_if_new_(std::move(status_if_new)) {
    while (!base.empty() && base.back() == '/')
      base.pop_back();
    members_ = base + "/3.0/lists/" + list_id + "/members/";
  }

  // One member per request.
  delivery::DestinationLimits limits() const override { return {1, 1u << 20}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    delivery::MapEachEvent(
        events, &out, [&](size_t i, const json::object& e, std::string_view type) {
          if (type != "identify" && type != "track")
            return delivery::EventMapping::Skip("mailchimp has no mapping for type '" +
                                                std::string(type) + "'");
          std::string email = delivery::UserEmail(e);
          std::string key = delivery::TrimAndLowercase(email);
          if (key.empty())
            return delivery::EventMapping::Unmappable("mailchimp: no email to name the member");
          delivery::HttpRequest r;
          r.url = members_ + delivery::Md5Hex(key);
          r.headers = {{"Content-Type", "application/json"}, {"Authorization", auth_}};
          json::object body;
          if (type == "identify") {
            r.method = "PUT";
            body["email_address"] = key;
            body["status_if_new"] = status_if_new_;
            json::object merge;
            auto first_of = [&](std::string_view a, std::string_view b) {
              std::string v = delivery::UserTrait(e, a);
              return v.empty() ? delivery::UserTrait(e, b) : v;
            };
            delivery::SetIfNotEmpty(merge, "FNAME", first_of("firstName", "first_name"));
            delivery::SetIfNotEmpty(merge, "LNAME", first_of("lastName", "last_name"));
            if (!merge.empty()) body["merge_fields"] = std::move(merge);
          } else {
            std::string name = EventName(delivery::FieldString(e, {"event"}));
            if (name.empty())
              return delivery::EventMapping::Unmappable(
                  "mailchimp: event name must be 2-30 letters, digits, '_' or '-' (spaces "
                  "become '_')");
            r.url += "/events";
            body["name"] = name;
            json::object props;
            if (const json::value* p = e.if_contains("properties"); p && p->is_object())
              for (const auto& [k, v] : p->as_object())
                if (auto s = ScalarString(v)) props[k] = *s;
            if (!props.empty()) body["properties"] = std::move(props);
            auto ts = ParseIso8601(delivery::FieldString(e, {"timestamp"}));
            body["occurred_at"] = FormatIso8601(ts ? *ts : events[i].received_at);
            body["is_syncing"] = false;
          }
          r.body = json::serialize(body);
          r.events = {i};
          out.requests.push_back(std::move(r));
          return delivery::EventMapping::Mapped();
        });
    return out;
  }

  std::vector<delivery::Outcome> Classify(const delivery::HttpRequest& request,
                                          const delivery::HttpResponse& response) const override {
    delivery::Outcome o = delivery::ClassifyByStatus(response);
    if (o.kind != delivery::Outcome::Kind::kDelivered && response.status != 0) {
      std::string reason = "mailchimp: http " + std::to_string(response.status);
      boost::system::error_code ec;
      json::value doc = json::parse(response.body, ec);
      if (!ec && doc.is_object()) {
        std::string title = delivery::FieldString(doc.as_object(), {"title"});
        std::string detail = delivery::FieldString(doc.as_object(), {"detail"});
        if (!title.empty() || !detail.empty())
          reason = "mailchimp: " + title + (title.empty() || detail.empty() ? "" : ": ") + detail;
      }
      if (response.status == 401 || response.status == 403)
        o = delivery::Outcome::AuthFailure(reason);
      else
        o.reason = reason;
    }
    return std::vector<delivery::Outcome>(request.events.size(), o);
  }

 private:
  std::string auth_;
  std::string status_if_new_;
  std::string members_;
};

struct MailchimpSettings {
  std::string api_key;
  std::string list_id;
  std::string status_if_new;
  std::string endpoint;
};

// The data centre an API key names after its last '-' ("…-us6" → "us6"), or "".
std::string DataCentre(const std::string& key) {
  size_t dash = key.rfind('-');
  if (dash == std::string::npos || dash + 1 == key.size()) return "";
  std::string dc = key.substr(dash + 1);
  for (char c : dc)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return "";
  return dc;
}

}  // namespace

delivery::DestinationType MailchimpType() {
  using S = MailchimpSettings;
  auto t = delivery::MakeDestinationType<S>(
      "mailchimp", "MailChimp",
      "Adds or updates audience members (identify) and records member events (track) in "
      "Mailchimp.",
      delivery::SettingsTable<S>()
          .Secret("api_key", &S::api_key, "API key; its suffix names the data centre (…-us6)")
          .Required()
          .String("list_id", &S::list_id, "the audience (list) ID")
          .Required()
          .Enum("status_if_new", &S::status_if_new,
                {"subscribed", "pending", "unsubscribed", "transactional"},
                "status of a member an identify creates (pending: Mailchimp asks them to confirm)")
          .Default("pending")
          .Url("endpoint", &S::endpoint,
               "API base URL; none: https://<data centre>.api.mailchimp.com from the key"),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (s.list_id.empty()) return InvalidArgument("list_id: must not be empty");
        if (!delivery::IsPathSegment(s.list_id))
          return InvalidArgument("list_id: must be letters, digits, '-', '_' or '.'");
        std::string base = s.endpoint;
        if (base.empty()) {
          std::string dc = DataCentre(s.api_key);
          if (dc.empty())
            return InvalidArgument(
                "api_key: must end with its data centre (…-us6), or set endpoint");
          base = "https://" + dc + ".api.mailchimp.com";
        }
        return std::unique_ptr<delivery::Destination>(
            new Mailchimp(base, s.api_key, s.list_id, s.status_if_new));
      });
  t.support = {"identify → member upsert, track → member event; page, screen, group, alias skipped",
               "no: one member per request",
               "none (a member upsert by email hash repeats harmlessly)",
               "not forwarded (Mailchimp: permanently delete a member)"};
  return t;
}

}  // namespace sy::destinations
