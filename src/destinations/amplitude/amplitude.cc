#include "destinations/amplitude/amplitude.h"

#include <boost/json.hpp>
#include <map>

#include "base/time_format.h"
#include "delivery/event_fields.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

class Amplitude final : public delivery::Destination {
 public:
  Amplitude(std::string endpoint, std::string api_key, int64_t min_id_length)
      : api_key_(std::move(api_key)), min_id_length_(min_id_length) {
    while (!endpoint.empty() && endpoint.back() == '/')
      endpoint.pop_back();
    url_ = endpoint + "/2/httpapi";
  }

  delivery::DestinationLimits limits() const override { return {2000, 900 * 1024}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    json::array mapped;
    delivery::HttpRequest r;
    delivery::MapEachEvent(
        events, &out, [&](size_t i, const json::object& e, std::string_view type) {
          json::object a;
          if (type == "track") {
            a["event_type"] = delivery::FieldString(e, {"event"});
          } else if (type == "page" || type == "screen") {
            std::string n = delivery::FieldString(e, {"name"});
            a["event_type"] = n.empty() ? (type == "page" ? "Loaded a Page" : "Loaded a Screen")
                                        : "Viewed " + n + (type == "page" ? " Page" : " Screen");
          } else if (type == "identify") {
            a["event_type"] = "$identify";
            const json::value* traits = e.if_contains("traits");
            json::object set;
            set["$set"] = traits && traits->is_object() ? *traits : json::object();
            a["user_properties"] = std::move(set);
          } else {
            return delivery::EventMapping::Unmappable("amplitude has no mapping for type '" +
                                                      std::string(type) + "'");
          }
          delivery::SetIfNotEmpty(a, "user_id", delivery::FieldString(e, {"userId"}));
          delivery::SetIfNotEmpty(a, "device_id", delivery::FieldString(e, {"anonymousId"}));
          auto ts = ParseIso8601(delivery::FieldString(e, {"timestamp"}));
          a["time"] = ts ? ts->value() : events[i].received_at.value();
          a["insert_id"] = events[i].message_id;
          if (type != "identify") {
            const json::value* p = e.if_contains("properties");
            if (p && p->is_object()) a["event_properties"] = *p;
          }
          delivery::SetIfNotEmpty(a, "ip", delivery::FieldString(e, {"context", "ip"}));
          delivery::SetIfNotEmpty(a, "os_name",
                                  delivery::FieldString(e, {"context", "os", "name"}));
          delivery::SetIfNotEmpty(a, "device_model",
                                  delivery::FieldString(e, {"context", "device", "model"}));
          delivery::SetIfNotEmpty(a, "language", delivery::FieldString(e, {"context", "locale"}));
          delivery::SetIfNotEmpty(a, "app_version",
                                  delivery::FieldString(e, {"context", "app", "version"}));
          a["library"] = "switchyard";
          mapped.push_back(std::move(a));
          r.events.push_back(i);
          return delivery::EventMapping::Mapped();
        });
    if (r.events.empty()) return out;
    json::object body;
    body["api_key"] = api_key_;
    body["events"] = std::move(mapped);
    if (min_id_length_ > 0) body["options"] = json::object{{"min_id_length", min_id_length_}};
    r.url = url_;
    r.headers = {{"Content-Type", "application/json"}, {"Accept", "*/*"}};
    r.body = json::serialize(body);
    out.requests.push_back(std::move(r));
    return out;
  }

  std::vector<delivery::Outcome> Classify(const delivery::HttpRequest& request,
                                          const delivery::HttpResponse& response) const override {
    std::vector<delivery::Outcome> out(request.events.size(), delivery::ClassifyByStatus(response));
    if (response.status != 400) return out;
    boost::system::error_code ec;
    json::value doc = json::parse(response.body, ec);
    if (ec || !doc.is_object()) return out;
    std::map<size_t, std::string> bad;  // index in the request → reason
    for (const char* kind : {"events_with_invalid_fields", "events_with_missing_fields"}) {
      const json::value* fields = doc.as_object().if_contains(kind);
      if (!fields || !fields->is_object()) continue;
      for (const auto& [field, indexes] : fields->as_object()) {
        if (!indexes.is_array()) continue;
        for (const auto& idx : indexes.as_array()) {
          if (!idx.is_int64() || idx.as_int64() < 0 ||
              static_cast<size_t>(idx.as_int64()) >= out.size())
            continue;
          bad.emplace(static_cast<size_t>(idx.as_int64()),
                      std::string("amplitude: ") +
                          (std::string_view(kind) == "events_with_invalid_fields" ? "invalid "
                                                                                  : "missing ") +
                          std::string(field));
        }
      }
    }
    if (bad.empty()) return out;
    for (size_t i = 0; i < out.size(); ++i) {
      auto it = bad.find(i);
      out[i] = it != bad.end() ? delivery::Outcome::Rejected(it->second)
                               : delivery::Outcome::Retry("amplitude: batch refused for others");
    }
    return out;
  }

 private:
  std::string url_;
  std::string api_key_;
  int64_t min_id_length_;
};

}  // namespace

namespace {

struct AmplitudeSettings {
  std::string api_key;
  std::string endpoint;
  int64_t min_id_length = 0;
};

}  // namespace

delivery::DestinationType AmplitudeType() {
  using S = AmplitudeSettings;
  auto t = delivery::MakeDestinationType<S>(
      "amplitude", "Amplitude", "Sends events to Amplitude's HTTP V2 API.",
      delivery::SettingsTable<S>()
          .Secret("api_key", &S::api_key, "project API key")
          .Required()
          .Url("endpoint", &S::endpoint, "API base URL (EU: https://api.eu.amplitude.com)")
          .Default("https://api2.amplitude.com")
          .Int("min_id_length", &S::min_id_length,
               "minimum user_id/device_id length (Amplitude's default is 5); 0 = Amplitude's "
               "default")
          .Default("0")
          .Min(0),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (s.api_key.empty()) return InvalidArgument("api_key: must not be empty");
        return std::unique_ptr<delivery::Destination>(
            new Amplitude(s.endpoint, s.api_key, s.min_id_length));
      });
  t.support = {"track, page, screen, identify; group and alias unmappable",
               "≤ 2,000 events, < 1 MB per request", "messageId as insert_id",
               "not forwarded (Amplitude: User Privacy API)"};
  return t;
}

}  // namespace sy::destinations
