#include "destinations/segment/segment.h"

#include <boost/json.hpp>

#include "http/basic_auth.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

class Segment final : public delivery::Destination {
 public:
  Segment(std::string endpoint, const std::string& write_key)
      : url_(std::move(endpoint) + "/v1/batch"), auth_(http::BasicAuthorization(write_key, "")) {
    while (url_.find("//v1/batch") != std::string::npos)
      url_.replace(url_.find("//v1/batch"), 10, "/v1/batch");
  }

  // Segment: ≤ 500 KB per batch request, ≤ 32 KB per event.
  delivery::DestinationLimits limits() const override { return {500, 480 * 1024}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    delivery::HttpRequest r;
    r.url = url_;
    r.headers = {{"Content-Type", "application/json"}, {"Authorization", auth_}};
    r.body = R"({"batch":[)";
    for (size_t i = 0; i < events.size(); ++i) {
      if (i) r.body += ",";
      r.body += events[i].payload;
      r.events.push_back(i);
    }
    r.body += "]}";
    out.requests.push_back(std::move(r));
    return out;
  }

  std::vector<delivery::Outcome> Classify(const delivery::HttpRequest& request,
                                          const delivery::HttpResponse& response) const override {
    std::vector<delivery::Outcome> out(request.events.size(), delivery::ClassifyByStatus(response));
    if (response.status != 200 && response.status != 400) return out;
    boost::system::error_code ec;
    json::value doc = json::parse(response.body, ec);
    if (ec || !doc.is_object()) return out;
    auto* rejected = doc.as_object().if_contains("rejected");
    if (!rejected || !rejected->is_array()) return out;
    if (response.status == 400) {
      // Every event was refused; those not named (should be none) are rejected too.
      out.assign(out.size(), delivery::Outcome::Rejected("http 400"));
    }
    for (const auto& item : rejected->as_array()) {
      if (!item.is_object()) continue;
      const auto& o = item.as_object();
      auto* index = o.if_contains("index");
      if (!index || !index->is_int64()) continue;
      int64_t i = index->as_int64();
      if (i < 0 || static_cast<size_t>(i) >= out.size()) continue;
      std::string reason = "receiver rejected";
      if (auto* code = o.if_contains("code"); code && code->is_string())
        reason += ": " + std::string(code->as_string());
      out[static_cast<size_t>(i)] = delivery::Outcome::Rejected(reason);
    }
    return out;
  }

 private:
  std::string url_;
  std::string auth_;
};

}  // namespace

namespace {

struct SegmentSettings {
  std::string write_key;
  std::string endpoint;
};

}  // namespace

delivery::DestinationType SegmentType() {
  using S = SegmentSettings;
  auto t = delivery::MakeDestinationType<S>(
      "segment", "Segment", "Forwards events to a Segment-compatible Tracking API (/v1/batch).",
      delivery::SettingsTable<S>()
          .Secret("write_key", &S::write_key, "write key of the receiving source")
          .Required()
          .Url("endpoint", &S::endpoint,
               "base URL of the Tracking API (another Switchyard: http://host:port)")
          .Default("https://api.segment.io"),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (s.write_key.empty()) return InvalidArgument("write_key: must not be empty");
        return std::unique_ptr<delivery::Destination>(new Segment(s.endpoint, s.write_key));
      });
  t.support = {"all six, forwarded as stored", "≤ 500 events, 480 KB per request",
               "messageId kept (the receiver dedupes)", "not forwarded"};
  return t;
}

}  // namespace sy::destinations
