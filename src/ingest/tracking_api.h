// TrackingApi: Segment's HTTP Tracking API (POST /v1/track … /v1/batch, /v1/t … /v1/b,
// /v1/import). Authenticates the write key, decodes and parses the body within the limits,
// validates and enriches each event, drops duplicates, appends the rest to the EventLog and
// answers only once they are durable.
//
// Threads: Handle() runs on an HTTP I/O thread and never blocks; the response is completed from
// the log's writer thread through the Responder.
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <boost/json/array.hpp>

#include "base/clock.h"
#include "base/metrics.h"
#include "config/config.h"
#include "governance/tracking_plans.h"
#include "http/server.h"
#include "ingest/dedupe_index.h"
#include "ingest/source_table.h"
#include "log/event_log.h"
#include "observe/ingest_stats.h"
#include "observe/live_feed.h"

namespace sy::ingest {

class TrackingApi {
 public:
  // All pointers must outlive the TrackingApi.
  TrackingApi(const config::IngestConfig& options, const SourceTable* sources, log::EventLog* log,
              DedupeIndex* dedupe, Clock* clock, MetricsRegistry* metrics);
  ~TrackingApi();

  // The live feed that sees each stored event (sampled by it; null: none). Set before serving.
  void set_live_feed(observe::LiveFeed* feed) { live_ = feed; }
  // Counts stored events per minute and per source (null: none): one lock-free record per
  // stored batch (observe/ingest_stats.h). Set before serving.
  void set_ingest_stats(observe::IngestStats* stats) { ingest_stats_ = stats; }
  // Fill LogRecord::user (anonymousId, else userId) for a log that keys records by user (the
  // kafka backend's partitioning). Set before serving; off by default (nothing copied).
  void set_record_users(bool on) { record_users_ = on; }

  // The tracking plans events are judged by (docs/governance.md); null or empty: none. Any
  // thread, any time (a config change): each request uses the plans it started with.
  void SetTrackingPlans(std::shared_ptr<const governance::TrackingPlans> plans) {
    plans_.store(std::move(plans));
  }

  std::shared_ptr<const governance::TrackingPlans> tracking_plans() const { return plans_.load(); }

  // True for the paths this API serves (so a router can dispatch to it).
  static bool Serves(std::string_view path);

  // Handles one POST to a Tracking API path.
  void Handle(http::Request&& request, const http::PeerInfo& peer, http::Responder respond);

  // CORS headers for a response to `request` (also used for preflight answers).
  void AddCorsHeaders(const http::Request& request, http::Response* response) const;
  void AddCorsHeaders(std::string_view origin, http::Response* response) const;
  http::Response Preflight(const http::Request& request) const;

  // A JSON error response: {"success": false, "error": "<code>", "message": "…"}.
  static http::Response ErrorResponse(unsigned status, std::string_view code,
                                      std::string_view message, unsigned version);

 private:
  struct Metrics;
  // Validates `text` as JSON within the depth cap (pads its capacity for simdjson).
  // kResourceExhausted: too deep; kInvalidArgument: not JSON.
  // On success, `structurals` is the body's structural index (see event::SplitBatchBodyIndexed),
  // valid until this thread's next call, or empty when it was validated another way; and
  // `out_of_range` holds, ascending, the offset in `text` of each number outside the range of a
  // double (±1e400), which JSON's grammar allows but no event may hold.
  Status ValidateJson(std::string& text, std::span<const uint32_t>* structurals,
                      std::vector<uint32_t>* out_of_range) const;
  std::string ClientIp(const http::Request& request, const http::PeerInfo& peer) const;

  // Handle's steps, in order, over one request's state. Each returns false when it has
  // answered the request (a refusal, or nothing left to append).
  struct RequestState;
  bool DecodeAndParse(http::Request& request, RequestState& rq);
  bool Authenticate(RequestState& rq);
  bool CollectEvents(RequestState& rq);
  bool AdmitUnderRateLimit(RequestState& rq);
  void ValidateEvents(RequestState& rq, const http::PeerInfo& peer);
  bool ClaimDedupeKeys(RequestState& rq);
  void AppendAndAnswer(RequestState& rq);
  void RejectRequest(RequestState& rq, unsigned status, std::string_view code,
                     std::string_view message);
  // `blocked`: stored events a tracking plan keeps from destinations (named in the body).
  static http::Response OkResponse(unsigned version, size_t stored, size_t duplicates,
                                   size_t blocked, boost::json::array rejected);
  // `path` labels the request in metrics: a route of kRoutes or "other" (a bounded set).
  void Finish(std::string_view origin, http::Response response, const http::Responder& respond,
              std::string_view path, int64_t start_ns);

  config::IngestConfig options_;
  observe::LiveFeed* live_ = nullptr;
  observe::IngestStats* ingest_stats_ = nullptr;
  bool record_users_ = false;
  const SourceTable* sources_;
  log::EventLog* log_;
  DedupeIndex* dedupe_;
  Clock* clock_;
  std::unique_ptr<Metrics> m_;
  std::atomic<uint64_t> next_claimant_{1};
  std::atomic<std::shared_ptr<const governance::TrackingPlans>> plans_;
  std::unique_ptr<governance::PlanMetrics> plan_metrics_;
};

}  // namespace sy::ingest
