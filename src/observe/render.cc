#include "observe/render.h"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "base/time_format.h"

namespace sy::observe {

namespace json = boost::json;

namespace {

void PutIfNotEmpty(json::object& o, std::string_view key, const std::string& value) {
  if (!value.empty()) o[key] = value;
}

json::object Counts(const DeliveryStats::Minute& m) {
  json::object o;
  o["delivered"] = m.delivered;
  o["retried"] = m.retried;
  o["failed"] = m.failed;
  o["dead_lettered"] = m.dead_lettered;
  o["filtered"] = m.filtered;
  return o;
}

json::value PercentileValue(int64_t ms) {
  if (ms < 0) return nullptr;
  if (ms == INT64_MAX)
    return json::string("> " + std::to_string(DeliveryStats::kLatencyBoundsMs.back()));
  return ms;
}

}  // namespace

std::string LiveRecordJson(const LiveRecord& r, bool show_payload) {
  json::object o;
  o["at"] = FormatIso8601(TimestampMs(r.at_ms));
  o["stage"] = StageName(r.stage);
  PutIfNotEmpty(o, "source", r.source);
  PutIfNotEmpty(o, "destination", r.destination);
  PutIfNotEmpty(o, "messageId", r.message_id);
  PutIfNotEmpty(o, "type", r.type);
  PutIfNotEmpty(o, "event", r.event);
  PutIfNotEmpty(o, "detail", r.detail);
  if (r.http_status != 0) o["status"] = r.http_status;
  if (show_payload && !r.payload.empty()) {
    boost::system::error_code ec;
    json::value v = r.truncated ? json::value() : json::parse(r.payload, ec);
    if (r.truncated || ec) {
      o["payload"] = r.payload;  // cut (or not JSON): shown as text
      o["truncated"] = r.truncated;
    } else {
      o["payload"] = std::move(v);
    }
  }
  return json::serialize(o);
}

std::string SseFrame(std::string_view event, std::string_view data) {
  std::string out;
  out.reserve(event.size() + data.size() + 16);
  out.append("event: ").append(event).append("\ndata: ").append(data).append("\n\n");
  return out;
}

std::string StatsJson(const DeliveryStats::Window& w) {
  json::object o;
  o["window_minutes"] = w.minutes.size();
  o["totals"] = Counts(w.total);
  json::object latency;
  latency["p50"] = PercentileValue(w.p50_ms);
  latency["p95"] = PercentileValue(w.p95_ms);
  o["latency_ms"] = std::move(latency);
  json::array minutes;
  minutes.reserve(w.minutes.size());
  for (const auto& m : w.minutes) {
    json::object mo = Counts(m);
    mo["start"] = FormatIso8601(TimestampMs(m.start_ms));
    minutes.push_back(std::move(mo));
  }
  o["minutes"] = std::move(minutes);
  return json::serialize(o);
}

}  // namespace sy::observe
