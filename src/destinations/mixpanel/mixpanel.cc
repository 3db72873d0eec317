#include "destinations/mixpanel/mixpanel.h"

#include <boost/json.hpp>

#include "base/time_format.h"
#include "delivery/event_fields.h"
#include "http/basic_auth.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

class Mixpanel final : public delivery::Destination {
 public:
  Mixpanel(std::string endpoint, const std::string& api_secret, std::string project_token)
      : endpoint_(std::move(endpoint)),
        auth_(http::BasicAuthorization(api_secret, "")),
        project_token_(std::move(project_token)) {
    while (!endpoint_.empty() && endpoint_.back() == '/')
      endpoint_.pop_back();
  }

  // Mixpanel /import: ≤ 2,000 events and 10 MB per request.
  delivery::DestinationLimits limits() const override { return {2000, 10u << 20}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    json::array imports, profiles;
    std::vector<size_t> import_idx, profile_idx;
    delivery::MapEachEvent(
        events, &out, [&](size_t i, const json::object& e, std::string_view type) {
          std::string user = delivery::FieldString(e, {"userId"});
          std::string anon = delivery::FieldString(e, {"anonymousId"});
          std::string distinct = user.empty() ? anon : user;
          if (type == "identify") {
            if (project_token_.empty()) {
              return delivery::EventMapping::Unmappable("identify needs the project_token setting");
            }
            json::object p;
            p["$token"] = project_token_;
            p["$distinct_id"] = distinct;
            const json::value* traits = delivery::FieldAt(e, {"traits"});
            p["$set"] = traits && traits->is_object() ? *traits : json::object();
            std::string ip = delivery::FieldString(e, {"context", "ip"});
            if (!ip.empty()) p["$ip"] = ip;
            profiles.push_back(std::move(p));
            profile_idx.push_back(i);
            return delivery::EventMapping::Mapped();
          }
          std::string name;
          if (type == "track") {
            name = delivery::FieldString(e, {"event"});
          } else if (type == "page" || type == "screen") {
            std::string n = delivery::FieldString(e, {"name"});
            name = n.empty() ? (type == "page" ? "Loaded a Page" : "Loaded a Screen")
                             : "Viewed " + n + (type == "page" ? " Page" : " Screen");
          } else {
            return delivery::EventMapping::Unmappable("mixpanel has no mapping for type '" +
                                                      std::string(type) + "'");
          }
          json::object props;
          if (const json::value* p = delivery::FieldAt(e, {"properties"}); p && p->is_object())
            props = p->as_object();
          auto ts = ParseIso8601(delivery::FieldString(e, {"timestamp"}));
          props["time"] = ts ? ts->value() : events[i].received_at.value();
          props["distinct_id"] = distinct;
          props["$insert_id"] = events[i].message_id.empty()
                                    ? delivery::FieldString(e, {"messageId"})
                                    : events[i].message_id;
          delivery::SetIfNotEmpty(props, "$device_id", anon);
          delivery::SetIfNotEmpty(props, "$user_id", user);
          delivery::SetIfNotEmpty(props, "ip", delivery::FieldString(e, {"context", "ip"}));
          delivery::SetIfNotEmpty(props, "$current_url",
                                  delivery::FieldString(e, {"context", "page", "url"}));
          delivery::SetIfNotEmpty(props, "$referrer",
                                  delivery::FieldString(e, {"context", "page", "referrer"}));
          delivery::SetIfNotEmpty(props, "$os",
                                  delivery::FieldString(e, {"context", "os", "name"}));
          props["mp_lib"] = "switchyard";
          json::object ev;
          ev["event"] = name;
          ev["properties"] = std::move(props);
          imports.push_back(std::move(ev));
          import_idx.push_back(i);
          return delivery::EventMapping::Mapped();
        });
    if (!imports.empty()) {
      out.requests.push_back(Request(endpoint_ + "/import?strict=1", json::serialize(imports),
                                     std::move(import_idx), true));
    }
    if (!profiles.empty()) {
      out.requests.push_back(Request(endpoint_ + "/engage#profile-set", json::serialize(profiles),
                                     std::move(profile_idx), false));
    }
    return out;
  }

  std::vector<delivery::Outcome> Classify(const delivery::HttpRequest& request,
                                          const delivery::HttpResponse& response) const override {
    std::vector<delivery::Outcome> out(request.events.size(), delivery::ClassifyByStatus(response));
    if (response.status != 400) return out;
    boost::system::error_code ec;
    json::value doc = json::parse(response.body, ec);
    const json::value* failed =
        !ec && doc.is_object() ? doc.as_object().if_contains("failed_records") : nullptr;
    if (!failed || !failed->is_array()) return out;
    // Strict mode's partial success: the named records failed validation, the rest imported.
    out.assign(out.size(), delivery::Outcome::Delivered());
    for (const auto& rec : failed->as_array()) {
      if (!rec.is_object()) continue;
      const json::value* index = rec.as_object().if_contains("index");
      if (!index || !index->is_int64() || index->as_int64() < 0 ||
          static_cast<size_t>(index->as_int64()) >= out.size())
        continue;
      std::string reason = "mixpanel rejected";
      if (auto* f = rec.as_object().if_contains("field"); f && f->is_string())
        reason += " " + std::string(f->as_string());
      if (auto* m = rec.as_object().if_contains("message"); m && m->is_string())
        reason += ": " + std::string(m->as_string());
      out[static_cast<size_t>(index->as_int64())] = delivery::Outcome::Rejected(reason);
    }
    return out;
  }

 private:
  delivery::HttpRequest Request(std::string url, std::string body, std::vector<size_t> idx,
                                bool auth) const {
    delivery::HttpRequest r;
    r.url = std::move(url);
    r.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
    if (auth) r.headers.emplace_back("Authorization", auth_);
    r.body = std::move(body);
    r.events = std::move(idx);
    return r;
  }

  std::string endpoint_;
  std::string auth_;
  std::string project_token_;
};

}  // namespace

namespace {

struct MixpanelSettings {
  std::string api_secret;
  std::string project_token;
  std::string endpoint;
};

}  // namespace

delivery::DestinationType MixpanelType() {
  using S = MixpanelSettings;
  auto t = delivery::MakeDestinationType<S>(
      "mixpanel", "Mixpanel",
      "Imports events into Mixpanel (/import, strict) and sets profiles (/engage).",
      delivery::SettingsTable<S>()
          .Secret("api_secret", &S::api_secret, "project API secret (Basic auth)")
          .Required()
          .String("project_token", &S::project_token,
                  "project token, needed to map identify to profile $set (none: identify is "
                  "unmappable)")
          .Url("endpoint", &S::endpoint, "API base URL (EU: https://api-eu.mixpanel.com)")
          .Default("https://api.mixpanel.com"),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (s.api_secret.empty()) return InvalidArgument("api_secret: must not be empty");
        return std::unique_ptr<delivery::Destination>(
            new Mixpanel(s.endpoint, s.api_secret, s.project_token));
      });
  t.support = {"track, page, screen, identify (with project_token); group and alias unmappable",
               "≤ 2,000 events, 10 MB per request", "messageId as $insert_id",
               "not forwarded (Mixpanel: GDPR deletion API)"};
  return t;
}

}  // namespace sy::destinations
