#include "destinations/heap/heap.h"

#include <boost/json.hpp>

#include "base/time_format.h"
#include "delivery/event_fields.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

constexpr size_t kMaxIdentity = 255;
constexpr size_t kMaxText = 1024;  // event names, property names and string values

// `s` cut to at most `max` bytes, at a UTF-8 character boundary.
std::string Cut(std::string s, size_t max) {
  if (s.size() <= max) return s;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80)
    --end;
  s.resize(end);
  return s;
}

// Heap's flat property bag from a JSON object: nested objects flattened with dots.
void Flatten(const json::object& in, const std::string& prefix, json::object* out, int depth = 0) {
  for (const auto& [k, v] : in) {
    std::string key = prefix + std::string(k);
    if (key.size() > kMaxText) continue;  // Heap refuses the whole request for such a name
    if (v.is_object() && depth < 8) {
      Flatten(v.as_object(), key + ".", out, depth + 1);
    } else if (v.is_string()) {
      (*out)[key] = Cut(std::string(v.as_string()), kMaxText);
    } else if (v.is_number()) {
      (*out)[key] = v;
    } else if (v.is_bool()) {
      (*out)[key] = v.as_bool() ? "true" : "false";
    } else if (!v.is_null()) {
      (*out)[key] = Cut(json::serialize(v), kMaxText);
    }
  }
}

class Heap final : public delivery::Destination {
 public:
  Heap(std::string endpoint, std::string app_id) : app_id_(std::move(app_id)) {
    while (!endpoint.empty() && endpoint.back() == '/')
      endpoint.pop_back();
    endpoint_ = std::move(endpoint);
  }

  // Heap's bulk APIs: ≤ 1,000 events (or users) per request.
  delivery::DestinationLimits limits() const override { return {1000, 4u << 20}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    json::array tracks, users;
    delivery::HttpRequest track_req, user_req;
    delivery::MapEachEvent(
        events, &out, [&](size_t i, const json::object& e, std::string_view type) {
          if (type != "track" && type != "identify") {
            return delivery::EventMapping::Skip("heap takes track and identify, not " +
                                                std::string(type));
          }
          const std::string identity = delivery::FieldString(e, {"userId"});
          if (identity.empty()) {
            return delivery::EventMapping::Skip(
                "heap's server-side API needs an identity (userId)");
          }
          if (identity.size() > kMaxIdentity) {
            return delivery::EventMapping::Unmappable("userId longer than heap's 255 characters");
          }
          json::object props;
          if (type == "identify") {
            if (const json::value* t = delivery::FieldAt(e, {"traits"}); t && t->is_object())
              Flatten(t->as_object(), "", &props);
            json::object u;
            u["identity"] = identity;
            u["properties"] = std::move(props);
            users.push_back(std::move(u));
            user_req.events.push_back(i);
            return delivery::EventMapping::Mapped();
          }
          const std::string name = delivery::FieldString(e, {"event"});
          if (name.empty()) return delivery::EventMapping::Unmappable("track without event");
          if (name.size() > kMaxText) {
            return delivery::EventMapping::Unmappable("event name longer than heap's 1,024");
          }
          if (const json::value* p = delivery::FieldAt(e, {"properties"}); p && p->is_object())
            Flatten(p->as_object(), "", &props);
          auto ts = ParseIso8601(delivery::FieldString(e, {"timestamp"}));
          json::object t;
          t["identity"] = identity;
          t["event"] = name;
          t["timestamp"] = FormatIso8601(ts ? *ts : events[i].received_at);
          t["properties"] = std::move(props);
          t["idempotency_key"] = events[i].message_id;
          tracks.push_back(std::move(t));
          track_req.events.push_back(i);
          return delivery::EventMapping::Mapped();
        });
    if (!tracks.empty()) Finish("/api/track", "events", std::move(tracks), &track_req, &out);
    if (!users.empty())
      Finish("/api/add_user_properties", "users", std::move(users), &user_req, &out);
    return out;
  }

  std::vector<delivery::Outcome> Classify(const delivery::HttpRequest& request,
                                          const delivery::HttpResponse& response) const override {
    delivery::Outcome o = delivery::ClassifyByStatus(response);
    if (response.status == 401 || response.status == 403) {
      o = delivery::Outcome::AuthFailure("heap: " + Message(response));
    } else if (o.kind == delivery::Outcome::Kind::kRejected && response.status != 0) {
      o = delivery::Outcome::Rejected("heap: " + Message(response));
    }
    return std::vector<delivery::Outcome>(request.events.size(), o);
  }

 private:
  void Finish(const char* path, const char* key, json::array items, delivery::HttpRequest* r,
              delivery::EncodedBatch* out) const {
    json::object body;
    body["app_id"] = app_id_;
    body[key] = std::move(items);
    r->url = endpoint_ + path;
    r->headers = {{"Content-Type", "application/json"}};
    r->body = json::serialize(body);
    out->requests.push_back(std::move(*r));
  }

  // Heap answers errors as plain text (sometimes JSON with "message"/"error").
  static std::string Message(const delivery::HttpResponse& response) {
    boost::system::error_code ec;
    json::value doc = json::parse(response.body, ec);
    if (!ec && doc.is_object()) {
      for (const char* k : {"message", "error"}) {
        std::string m = delivery::FieldString(doc.as_object(), {k});
        if (!m.empty()) return m;
      }
    }
    std::string text = Cut(response.body, 200);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
      text.pop_back();
    return text.empty() ? "http " + std::to_string(response.status) : text;
  }

  std::string endpoint_;
  std::string app_id_;
};

struct HeapSettings {
  std::string app_id;
  std::string endpoint;
};

}  // namespace

delivery::DestinationType HeapType() {
  using S = HeapSettings;
  auto t = delivery::MakeDestinationType<S>(
      "heap", "Heap",
      "Sends track events and user properties to Heap's server-side APIs (bulk track, "
      "add_user_properties).",
      delivery::SettingsTable<S>()
          .String("app_id", &S::app_id, "Heap environment (app) ID, sent in the body")
          .Required()
          .Url("endpoint", &S::endpoint, "API base URL")
          .Default("https://heapanalytics.com"),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (s.app_id.empty()) return InvalidArgument("app_id: must not be empty");
        return std::unique_ptr<delivery::Destination>(new Heap(s.endpoint, s.app_id));
      });
  t.support = {
      "track, identify (with a userId); page, screen, group, alias and anonymous calls "
      "skipped",
      "≤ 1,000 events or users per request", "messageId as idempotency_key",
      "not forwarded (Heap: user deletion API)"};
  return t;
}

}  // namespace sy::destinations
