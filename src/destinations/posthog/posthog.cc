#include "destinations/posthog/posthog.h"

#include <openssl/sha.h>

#include <boost/json.hpp>
#include <cctype>

#include "base/time_format.h"
#include "delivery/event_fields.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

bool IsUuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

json::object ObjectAt(const json::object& e, std::initializer_list<std::string_view> path) {
  const json::value* v = delivery::FieldAt(e, path);
  return v && v->is_object() ? v->as_object() : json::object();
}

class Posthog final : public delivery::Destination {
 public:
  Posthog(std::string endpoint, std::string api_key, std::string group_type)
      : api_key_(std::move(api_key)), group_type_(std::move(group_type)) {
    while (!endpoint.empty() && endpoint.back() == '/')
      endpoint.pop_back();
    url_ = endpoint + "/batch/";
  }

  // Batch capture: the body ≤ 20 MB (PostHog's documented cap); events are re-encoded a little
  // larger than stored, hence 16 MB of stored events per request. No documented count limit.
  delivery::DestinationLimits limits() const override { return {1000, 16u << 20}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    json::array batch;
    delivery::HttpRequest r;
    delivery::MapEachEvent(
        events, &out, [&](size_t i, const json::object& e, std::string_view type) {
          const std::string user = delivery::FieldString(e, {"userId"});
          const std::string anon = delivery::FieldString(e, {"anonymousId"});
          const std::string distinct = user.empty() ? anon : user;
          if (distinct.empty()) {
            return delivery::EventMapping::Unmappable("posthog needs a userId or anonymousId");
          }
          json::object props;
          std::string name;
          if (type == "track") {
            name = delivery::FieldString(e, {"event"});
            if (name.empty()) return delivery::EventMapping::Unmappable("track without event");
            props = ObjectAt(e, {"properties"});
          } else if (type == "page") {
            name = "$pageview";
            props = ObjectAt(e, {"properties"});
            std::string url = delivery::FieldString(e, {"context", "page", "url"});
            if (url.empty()) url = delivery::FieldString(e, {"properties", "url"});
            delivery::SetIfNotEmpty(props, "$current_url", url);
            delivery::SetIfNotEmpty(props, "title", delivery::FieldString(e, {"name"}));
          } else if (type == "screen") {
            name = "$screen";
            props = ObjectAt(e, {"properties"});
            delivery::SetIfNotEmpty(props, "$screen_name", delivery::FieldString(e, {"name"}));
          } else if (type == "identify") {
            name = "$identify";
            props["$set"] = ObjectAt(e, {"traits"});
            if (!user.empty() && !anon.empty()) props["$anon_distinct_id"] = anon;
          } else if (type == "group") {
            const std::string group = delivery::FieldString(e, {"groupId"});
            if (group.empty()) return delivery::EventMapping::Unmappable("group without groupId");
            name = "$groupidentify";
            props["$group_type"] = group_type_;
            props["$group_key"] = group;
            props["$group_set"] = ObjectAt(e, {"traits"});
          } else if (type == "alias") {
            const std::string previous = delivery::FieldString(e, {"previousId"});
            if (user.empty() || previous.empty()) {
              return delivery::EventMapping::Unmappable("alias needs userId and previousId");
            }
            // As posthog-python's alias(previous_id, distinct_id): the event is the previous
            // id's, aliased to the new one.
            name = "$create_alias";
            props["alias"] = user;
            props["distinct_id"] = previous;
          } else {
            return delivery::EventMapping::Unmappable("posthog has no mapping for type '" +
                                                      std::string(type) + "'");
          }
          const std::string owner =
              type == "alias" ? delivery::FieldString(e, {"previousId"}) : distinct;
          props["distinct_id"] = owner;
          delivery::SetIfNotEmpty(props, "$ip", delivery::FieldString(e, {"context", "ip"}));
          props["$lib"] = "switchyard";
          json::object ev;
          ev["event"] = name;
          ev["distinct_id"] = owner;
          ev["properties"] = std::move(props);
          auto ts = ParseIso8601(delivery::FieldString(e, {"timestamp"}));
          ev["timestamp"] = FormatIso8601(ts ? *ts : events[i].received_at);
          ev["uuid"] = PosthogUuid(events[i].message_id);
          batch.push_back(std::move(ev));
          r.events.push_back(i);
          return delivery::EventMapping::Mapped();
        });
    if (r.events.empty()) return out;
    json::object body;
    body["api_key"] = api_key_;
    body["batch"] = std::move(batch);
    r.url = url_;
    r.headers = {{"Content-Type", "application/json"}};
    r.body = json::serialize(body);
    out.requests.push_back(std::move(r));
    return out;
  }

  std::vector<delivery::Outcome> Classify(const delivery::HttpRequest& request,
                                          const delivery::HttpResponse& response) const override {
    delivery::Outcome o = delivery::ClassifyByStatus(response);
    if (response.status == 401 || response.status == 403) {
      o = delivery::Outcome::AuthFailure("posthog: " + Detail(response));
    } else if (o.kind == delivery::Outcome::Kind::kRejected && response.status != 0) {
      o = delivery::Outcome::Rejected("posthog: " + Detail(response));
    }
    return std::vector<delivery::Outcome>(request.events.size(), o);
  }

 private:
  // PostHog's error body: {"type": "...", "code": "...", "detail": "...", "attr": ...}.
  static std::string Detail(const delivery::HttpResponse& response) {
    boost::system::error_code ec;
    json::value doc = json::parse(response.body, ec);
    if (!ec && doc.is_object()) {
      std::string code = delivery::FieldString(doc.as_object(), {"code"});
      std::string detail = delivery::FieldString(doc.as_object(), {"detail"});
      if (!detail.empty()) return code.empty() ? detail : code + ": " + detail;
    }
    return "http " + std::to_string(response.status);
  }

  std::string url_;
  std::string api_key_;
  std::string group_type_;
};

struct PosthogSettings {
  std::string api_key;
  std::string endpoint;
  std::string group_type;
};

}  // namespace

std::string PosthogUuid(const std::string& message_id) {
  if (IsUuid(message_id)) {
    std::string s = message_id;
    for (char& c : s)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(message_id.data()), message_id.size(), md);
  md[6] = static_cast<unsigned char>((md[6] & 0x0F) | 0x80);  // version 8 (custom)
  md[8] = static_cast<unsigned char>((md[8] & 0x3F) | 0x80);  // RFC 9562 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xF];
  }
  return out;
}

delivery::DestinationType PosthogType() {
  using S = PosthogSettings;
  auto t = delivery::MakeDestinationType<S>(
      "posthog", "PostHog",
      "Sends every call to PostHog's batch capture (/batch/): events, $pageview, $screen, "
      "$identify, $groupidentify, $create_alias.",
      delivery::SettingsTable<S>()
          .Secret("api_key", &S::api_key, "project API key (phc_…), sent in the body")
          .Required()
          .Url("endpoint", &S::endpoint,
               "ingestion host (EU: https://eu.i.posthog.com; self-hosted: your instance)")
          .Default("https://us.i.posthog.com")
          .String("group_type", &S::group_type,
                  "the group type a group call identifies ($group_type)")
          .Default("company"),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (s.api_key.empty()) return InvalidArgument("api_key: must not be empty");
        if (s.group_type.empty()) return InvalidArgument("group_type: must not be empty");
        return std::unique_ptr<delivery::Destination>(
            new Posthog(s.endpoint, s.api_key, s.group_type));
      });
  t.support = {"track, page, screen, identify, group, alias", "≤ 1,000 events, 20 MB per request",
               "messageId as uuid (hashed to a UUID when it is not one)",
               "not forwarded (PostHog: person deletion in its app API)"};
  return t;
}

}  // namespace sy::destinations
