#include "destinations/intercom/intercom.h"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>

#include "base/time_format.h"
#include "delivery/event_fields.h"
#include "delivery/user_identity.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

constexpr size_t kMaxMetadata = 10;  // Intercom: at most 10 metadata keys per event

bool IsScalar(const json::value& v) {
  return v.is_string() || v.is_number() || v.is_bool();
}

const json::object* ObjectAt(const json::object& e, std::string_view key) {
  const json::value* v = e.if_contains(key);
  return v && v->is_object() ? &v->as_object() : nullptr;
}

std::optional<int64_t> UnixSeconds(const std::string& iso) {
  auto ts = ParseIso8601(iso);
  if (!ts) return std::nullopt;
  return ts->value() / 1000;
}

// The request path with a contact id in it: Intercom ids are hex-like; anything else is refused
// so a hostile search answer cannot steer the URL.
bool IsContactId(std::string_view s) {
  return delivery::IsPathSegment(s);
}

class Intercom final : public delivery::Destination {
 public:
  Intercom(std::string endpoint, std::string token, std::string version)
      : token_(std::move(token)), version_(std::move(version)) {
    while (!endpoint.empty() && endpoint.back() == '/')
      endpoint.pop_back();
    base_ = std::move(endpoint);
  }

  // One call per request; a contact or an event is small (Intercom documents no byte cap; the
  // stored event bounds it).
  delivery::DestinationLimits limits() const override { return {1, 1u << 20}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    delivery::MapEachEvent(
        events, &out, [&](size_t i, const json::object& e, std::string_view type) {
          const std::string user = delivery::FieldString(e, {"userId"});
          delivery::HttpRequest r;
          if (type == "track") {
            std::string email = delivery::UserEmail(e);
            if (user.empty() && email.empty()) {
              return delivery::EventMapping::Skip("intercom files events under a userId or email");
            }
            const std::string name = delivery::FieldString(e, {"event"});
            if (name.empty()) return delivery::EventMapping::Unmappable("track without event");
            json::object body;
            body["event_name"] = name;
            auto at = UnixSeconds(delivery::FieldString(e, {"timestamp"}));
            body["created_at"] = at ? *at : events[i].received_at.value() / 1000;
            if (!user.empty()) {
              body["user_id"] = user;
            } else {
              body["email"] = email;
            }
            json::object metadata;
            if (const json::object* p = ObjectAt(e, "properties")) {
              for (const auto& [k, v] : *p) {
                if (metadata.size() == kMaxMetadata) break;
                if (IsScalar(v)) metadata[k] = v;
              }
            }
            if (!metadata.empty()) body["metadata"] = std::move(metadata);
            r = Request("POST", "/events", json::serialize(body));
          } else if (type == "identify") {
            const json::object* traits = ObjectAt(e, "traits");
            const json::object none;
            const json::object& t = traits ? *traits : none;
            const std::string email = delivery::FieldString(t, {"email"});
            if (user.empty() && email.empty()) {
              return delivery::EventMapping::Unmappable("intercom needs a userId or an email");
            }
            json::object contact;
            contact["role"] = user.empty() ? "lead" : "user";
            delivery::SetIfNotEmpty(contact, "external_id", user);
            delivery::SetIfNotEmpty(contact, "email", email);
            delivery::SetIfNotEmpty(contact, "phone", delivery::FieldString(t, {"phone"}));
            std::string name = delivery::FieldString(t, {"name"});
            if (name.empty()) {
              const std::string first = delivery::FieldString(t, {"firstName"});
              const std::string last = delivery::FieldString(t, {"lastName"});
              name = first + (!first.empty() && !last.empty() ? " " : "") + last;
            }
            delivery::SetIfNotEmpty(contact, "name", name);
            if (auto at = UnixSeconds(delivery::FieldString(t, {"createdAt"}))) {
              contact["signed_up_at"] = *at;
            }
            json::object custom;
            for (const auto& [k, v] : t) {
              static constexpr std::string_view kMapped[] = {
                  "email", "phone", "name", "firstName", "lastName", "createdAt", "id"};
              if (std::find(std::begin(kMapped), std::end(kMapped), k) != std::end(kMapped)) {
                continue;
              }
              if (IsScalar(v)) custom[k] = v;
            }
            if (!custom.empty()) contact["custom_attributes"] = std::move(custom);
            json::object query{{"field", user.empty() ? "email" : "external_id"},
                               {"operator", "="},
                               {"value", user.empty() ? email : user}};
            r = Request("POST", "/contacts/search",
                        json::serialize(json::object{{"query", std::move(query)}}));
            r.step = "search";
            r.carry = json::serialize(contact);
          } else if (type == "group") {
            const std::string group = delivery::FieldString(e, {"groupId"});
            if (group.empty()) return delivery::EventMapping::Unmappable("group without groupId");
            json::object company;
            company["company_id"] = group;
            json::object custom;
            if (const json::object* t = ObjectAt(e, "traits")) {
              for (const auto& [k, v] : *t) {
                if (k == "name" || k == "plan" || k == "website" || k == "industry") {
                  if (v.is_string()) company[k] = v;
                } else if (k == "employees" || k == "size") {
                  if (auto n = delivery::CountOf(&v)) company["size"] = *n;
                } else if (k == "monthly_spend" || k == "monthlySpend") {
                  if (auto n = delivery::NumberOf(&v)) company["monthly_spend"] = *n;
                } else if (k == "createdAt") {
                  if (v.is_string()) {
                    if (auto at = UnixSeconds(std::string(v.as_string()))) {
                      company["remote_created_at"] = *at;
                    }
                  }
                } else if (k != "id" && IsScalar(v)) {
                  custom[k] = v;
                }
              }
            }
            if (!custom.empty()) company["custom_attributes"] = std::move(custom);
            r = Request("POST", "/companies", json::serialize(company));
          } else {
            return delivery::EventMapping::Skip("intercom has no mapping for " + std::string(type));
          }
          r.events.push_back(i);
          out.requests.push_back(std::move(r));
          return delivery::EventMapping::Mapped();
        });
    return out;
  }

  // identify's second step: the search found the contact (update it) or not (create it).
  std::optional<delivery::HttpRequest> FollowUp(const delivery::HttpRequest& sent,
                                                const delivery::HttpResponse& res) override {
    if (sent.step != "search" || res.status != 200) return std::nullopt;
    boost::system::error_code ec;
    json::value doc = json::parse(res.body, ec);
    if (ec || !doc.is_object()) return std::nullopt;  // classified: retried
    const json::value* data = doc.as_object().if_contains("data");
    if (data == nullptr || !data->is_array()) return std::nullopt;
    if (!data->as_array().empty() && data->as_array()[0].is_object()) {
      const std::string id = delivery::FieldString(data->as_array()[0].as_object(), {"id"});
      if (!IsContactId(id)) return std::nullopt;
      delivery::HttpRequest update = Request("PUT", "/contacts/" + id, sent.carry);
      update.step = "update";
      return update;
    }
    delivery::HttpRequest create = Request("POST", "/contacts", sent.carry);
    create.step = "create";
    return create;
  }

  std::vector<delivery::Outcome> Classify(const delivery::HttpRequest& request,
                                          const delivery::HttpResponse& response) const override {
    delivery::Outcome o = delivery::ClassifyByStatus(response);
    const int s = response.status;
    if (request.step == "search" && s == 200) {
      o = delivery::Outcome::Retry("intercom: search answer without data");
    } else if (s == 401 || s == 403) {
      o = delivery::Outcome::AuthFailure("intercom: " + ErrorText(response));
    } else if (s == 409) {
      // The contact appeared between the search and the create: the next attempt finds it.
      o = delivery::Outcome::Retry("intercom: " + ErrorText(response));
    } else if (s == 429) {
      o = delivery::Outcome::Retry("intercom: rate limited", ResetAfter(response));
    } else if (o.kind == delivery::Outcome::Kind::kRejected && s != 0) {
      o = delivery::Outcome::Rejected("intercom: " + ErrorText(response));
    }
    return std::vector<delivery::Outcome>(request.events.size(), o);
  }

 private:
  delivery::HttpRequest Request(std::string method, const std::string& path,
                                std::string body) const {
    delivery::HttpRequest r;
    r.method = std::move(method);
    r.url = base_ + path;
    r.headers = {{"Authorization", "Bearer " + token_},
                 {"Accept", "application/json"},
                 {"Content-Type", "application/json"},
                 {"Intercom-Version", version_}};
    r.body = std::move(body);
    return r;
  }

  // X-RateLimit-Reset: the Unix second the window resets (Intercom's 429); else Retry-After.
  static std::optional<int64_t> ResetAfter(const delivery::HttpResponse& response) {
    const std::string reset = response.Header("X-RateLimit-Reset");
    int64_t reset_s = 0;
    if (auto [p, ec] = std::from_chars(reset.data(), reset.data() + reset.size(), reset_s);
        ec == std::errc() && p == reset.data() + reset.size() && response.received_unix_ms > 0) {
      return std::clamp<int64_t>(reset_s * 1000 - response.received_unix_ms, 0, 3'600'000);
    }
    return delivery::RetryAfterMs(response);
  }

  // Intercom's error body: {"type": "error.list", "errors": [{"code", "message"}]}.
  static std::string ErrorText(const delivery::HttpResponse& r) {
    boost::system::error_code ec;
    json::value doc = json::parse(r.body, ec);
    if (!ec && doc.is_object()) {
      const json::value* errs = doc.as_object().if_contains("errors");
      if (errs && errs->is_array() && !errs->as_array().empty() &&
          errs->as_array()[0].is_object()) {
        const auto& first = errs->as_array()[0].as_object();
        const std::string code = delivery::FieldString(first, {"code"});
        const std::string message = delivery::FieldString(first, {"message"});
        if (!code.empty() || !message.empty()) return code + ": " + message;
      }
    }
    return "http " + std::to_string(r.status);
  }

  std::string base_;
  std::string token_;
  std::string version_;
};

struct IntercomSettings {
  std::string access_token;
  std::string endpoint;
  std::string api_version;
};

}  // namespace

delivery::DestinationType IntercomType() {
  using S = IntercomSettings;
  auto t = delivery::MakeDestinationType<S>(
      "intercom", "Intercom",
      "Sends track calls as Intercom data events, identify as contacts (searched, then updated "
      "or created) and group as companies.",
      delivery::SettingsTable<S>()
          .Secret("access_token", &S::access_token, "access token of your Intercom app (Bearer)")
          .Required()
          .Url("endpoint", &S::endpoint,
               "API host (EU workspaces: https://api.eu.intercom.io; Australia: "
               "https://api.au.intercom.io)")
          .Default("https://api.intercom.io")
          .String("api_version", &S::api_version, "the Intercom-Version header")
          .Default("2.11"),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (s.access_token.empty()) return InvalidArgument("access_token: must not be empty");
        if (s.api_version.empty()) return InvalidArgument("api_version: must not be empty");
        return std::unique_ptr<delivery::Destination>(
            new Intercom(s.endpoint, s.access_token, s.api_version));
      });
  t.support = {"track, identify, group; page, screen, alias skipped", "no (one call per request)",
               "none (Intercom has no dedupe key for events)",
               "not forwarded (Intercom: contact archive/delete API)"};
  return t;
}

}  // namespace sy::destinations
