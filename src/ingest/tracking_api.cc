#include "ingest/tracking_api.h"

#include <simdjson.h>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include <array>
#include <atomic>
#include <charconv>
#include <cmath>
#include <map>
#include <mutex>
#include <span>

#include "base/logging.h"
#include "base/time_format.h"
#include "event/event.h"
#include "event/raw_json.h"
#include "ingest/body_decoder.h"

namespace sy::ingest {

namespace json = boost::json;
using event::EventType;

namespace {

std::shared_ptr<spdlog::logger> Logger() {
  static auto l = ModuleLogger("ingest");
  return l;
}

struct Route {
  std::string_view path;
  std::optional<EventType> type;  // nullopt: a batch
};

constexpr std::array<Route, 15> kRoutes = {{
    {"/v1/track", EventType::kTrack},
    {"/v1/identify", EventType::kIdentify},
    {"/v1/page", EventType::kPage},
    {"/v1/screen", EventType::kScreen},
    {"/v1/group", EventType::kGroup},
    {"/v1/alias", EventType::kAlias},
    {"/v1/batch", std::nullopt},
    {"/v1/import", std::nullopt},
    {"/v1/t", EventType::kTrack},
    {"/v1/i", EventType::kIdentify},
    {"/v1/p", EventType::kPage},
    {"/v1/s", EventType::kScreen},
    {"/v1/g", EventType::kGroup},
    {"/v1/a", EventType::kAlias},
    {"/v1/b", std::nullopt},
}};

std::string_view PathOnly(std::string_view target) {
  auto q = target.find('?');
  std::string_view p = q == std::string_view::npos ? target : target.substr(0, q);
  while (p.size() > 1 && p.back() == '/')
    p.remove_suffix(1);
  return p;
}

const Route* FindRoute(std::string_view target) {
  std::string_view p = PathOnly(target);
  for (const auto& r : kRoutes)
    if (r.path == p) return &r;
  return nullptr;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return std::string(s);
}

// A validating Boost.JSON parse that builds nothing and notes where numbers outside the range of
// a double (1e400, -1e400: what Boost.JSON would read as ±infinity) stand. Numbers within it
// (integers beyond 64 bits included) are stored as sent.
struct NumberRangeHandler {
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  const char* base = nullptr;
  std::vector<uint32_t>* out_of_range = nullptr;

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }
  bool on_array_begin(boost::system::error_code&) { return true; }
  bool on_array_end(std::size_t, boost::system::error_code&) { return true; }
  bool on_object_begin(boost::system::error_code&) { return true; }
  bool on_object_end(std::size_t, boost::system::error_code&) { return true; }
  bool on_string_part(json::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_key_part(json::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_key(json::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_number_part(json::string_view, boost::system::error_code&) { return true; }
  bool on_int64(int64_t, json::string_view, boost::system::error_code&) { return true; }
  bool on_uint64(uint64_t, json::string_view, boost::system::error_code&) { return true; }
  bool on_double(double d, json::string_view s, boost::system::error_code&) {
    // `s` is the number's text (the whole body is parsed in one piece).
    if (!std::isfinite(d)) out_of_range->push_back(static_cast<uint32_t>(s.data() - base));
    return true;
  }
  bool on_bool(bool, boost::system::error_code&) { return true; }
  bool on_null(boost::system::error_code&) { return true; }
  bool on_comment_part(json::string_view, boost::system::error_code&) { return true; }
  bool on_comment(json::string_view, boost::system::error_code&) { return true; }
};

// True if a number out of range (offsets ascending, `*next` the first not yet passed) lies in
// `span`, a view of the body starting at `body`. Advances *next past `span`, so walking spans in
// body order costs one pass over the offsets.
bool HoldsOutOfRange(std::span<const uint32_t> offsets, size_t* next, std::string_view body,
                     std::string_view span) {
  if (offsets.empty() || span.empty()) return false;
  const size_t start = static_cast<size_t>(span.data() - body.data());
  const size_t end = start + span.size();
  while (*next < offsets.size() && offsets[*next] < start)
    ++*next;
  bool inside = *next < offsets.size() && offsets[*next] < end;
  while (*next < offsets.size() && offsets[*next] < end)
    ++*next;
  return inside;
}

}  // namespace

Status TrackingApi::ValidateJson(std::string& text, std::span<const uint32_t>* structurals,
                                 std::vector<uint32_t>* out_of_range) const {
  *structurals = {};
  out_of_range->clear();
  // One parser per I/O thread, reused; grown to the largest body seen.
  struct ThreadParser {
    simdjson::dom::parser parser;
    size_t depth = 0;
  };
  thread_local ThreadParser tp;
  const auto depth = static_cast<size_t>(options_.max_json_depth);
  if (tp.depth != depth || tp.parser.capacity() < text.size()) {
    if (tp.parser.allocate(std::max<size_t>(text.size(), 64 * 1024), depth) != simdjson::SUCCESS) {
      return Internal("cannot allocate the JSON parser");
    }
    tp.depth = depth;
  }
  text.reserve(text.size() + simdjson::SIMDJSON_PADDING);
  auto doc = tp.parser.parse(text.data(), text.size(), false);
  if (doc.error() == simdjson::SUCCESS) {
    // simdjson's stage 1 index stays in the parser until its next parse; ingest splits the
    // events with it instead of scanning the body again. (`implementation` is public for
    // benchmarking access; the index layout is stable across simdjson 0.x–3.x.)
    const auto& impl = *tp.parser.implementation;
    *structurals =
        std::span<const uint32_t>(impl.structural_indexes.get(), impl.n_structural_indexes);
    return Status::Ok();
  }
  if (doc.error() == simdjson::DEPTH_ERROR) {
    return ResourceExhausted("JSON nesting deeper than " + std::to_string(depth));
  }
  if (doc.error() == simdjson::NUMBER_ERROR) {
    // simdjson refuses integers beyond 64 bits, which JSON allows, and numbers beyond the range
    // of a double, which we name: ask Boost.JSON, noting where the latter stand.
    json::parse_options popts;
    popts.max_depth = depth;
    json::basic_parser<NumberRangeHandler> p(popts);
    p.handler().base = text.data();
    p.handler().out_of_range = out_of_range;
    boost::system::error_code ec;
    p.write_some(false, text.data(), text.size(), ec);
    if (!ec) return Status::Ok();
    out_of_range->clear();
    if (ec == json::error::too_deep) {
      return ResourceExhausted("JSON nesting deeper than " + std::to_string(depth));
    }
  }
  return InvalidArgument(std::string("invalid JSON: ") + simdjson::error_message(doc.error()));
}

struct TrackingApi::Metrics {
  Counter* bytes_in;
  Counter* duplicates;
  Counter* in_flight_retries;
  Histogram* latency;
  // Looked up per request through the families' per-thread caches (no lock on a hit).
  CounterFamily* requests;  // path, status
  CounterFamily* accepted;  // source
  CounterFamily* rejected;  // reason

  CounterFamily* refused;  // source, reason: whole requests refused for their source (429)

  Counter* Requests(std::string_view path, unsigned status) {
    char digits[8];
    auto end = std::to_chars(digits, digits + sizeof digits, status).ptr;
    return requests->WithCached({path, std::string_view(digits, end - digits)});
  }
  Counter* Accepted(std::string_view source) { return accepted->WithCached({source}); }
  Counter* Rejected(std::string_view reason) { return rejected->WithCached({reason}); }
};

TrackingApi::TrackingApi(const config::IngestConfig& options, const SourceTable* sources,
                         log::EventLog* log, DedupeIndex* dedupe, Clock* clock,
                         MetricsRegistry* metrics)
    : options_(options), sources_(sources), log_(log), dedupe_(dedupe), clock_(clock) {
  plan_metrics_ = std::make_unique<governance::PlanMetrics>(metrics);
  m_ = std::make_unique<Metrics>();
  m_->requests = metrics->Counters("switchyard_http_requests_total",
                                   "HTTP requests by path and status.", {"path", "status"});
  m_->accepted = metrics->Counters("switchyard_ingest_events_accepted_total",
                                   "Events stored durably in the log, by source.", {"source"});
  m_->rejected = metrics->Counters("switchyard_ingest_events_rejected_total",
                                   "Events not stored, by reason (each is named in its response).",
                                   {"reason"});
  m_->refused = metrics->Counters(
      "switchyard_ingest_events_refused_total",
      "Events of requests refused for their source (429 over sources[].rate_limit), by source "
      "and reason.",
      {"source", "reason"});
  m_->bytes_in =
      metrics->GetCounter("switchyard_ingest_bytes_total",
                          "Request body bytes received (as sent, before decompression).");
  m_->duplicates = metrics->GetCounter("switchyard_ingest_events_duplicate_total",
                                       "Events acknowledged without being stored again (same "
                                       "source and messageId within the dedupe window).");
  m_->in_flight_retries = metrics->GetCounter(
      "switchyard_ingest_in_flight_duplicate_total",
      "Requests answered 503 because another request held one of their messageIds in flight.");
  m_->latency = metrics->GetHistogram(
      "switchyard_http_request_duration_seconds",
      "Tracking API request latency, receipt to response, including the durable append.",
      LatencyBuckets());
}

TrackingApi::~TrackingApi() = default;

bool TrackingApi::Serves(std::string_view path) {
  return FindRoute(path) != nullptr;
}

http::Response TrackingApi::ErrorResponse(unsigned status, std::string_view code,
                                          std::string_view message, unsigned version) {
  http::Response res{static_cast<http::bhttp::status>(status), version};
  res.set(http::bhttp::field::content_type, "application/json");
  json::object body;
  body["success"] = false;
  body["error"] = code;
  body["code"] = code;  // segment-analytics-python reads `code` from every error body
  body["message"] = message;
  res.body() = json::serialize(body);
  return res;
}

void TrackingApi::AddCorsHeaders(const http::Request& request, http::Response* res) const {
  AddCorsHeaders(request[http::bhttp::field::origin], res);
}

void TrackingApi::AddCorsHeaders(std::string_view origin, http::Response* res) const {
  bool any = std::find(options_.cors_origins.begin(), options_.cors_origins.end(), "*") !=
             options_.cors_origins.end();
  if (origin.empty()) {
    if (any) res->set(http::bhttp::field::access_control_allow_origin, "*");
    return;
  }
  bool allowed = any || std::find(options_.cors_origins.begin(), options_.cors_origins.end(),
                                  origin) != options_.cors_origins.end();
  if (!allowed) return;
  res->set(http::bhttp::field::access_control_allow_origin, origin);
  res->set(http::bhttp::field::vary, "Origin");
  // Browser libraries honour Retry-After on 429/503 only if they may read it.
  res->set(http::bhttp::field::access_control_expose_headers, "Retry-After, X-RateLimit-Reset");
}

http::Response TrackingApi::Preflight(const http::Request& request) const {
  http::Response res{http::bhttp::status::no_content, request.version()};
  AddCorsHeaders(request, &res);
  res.set(http::bhttp::field::access_control_allow_methods, "GET, POST, OPTIONS");
  auto asked = request[http::bhttp::field::access_control_request_headers];
  if (asked.empty()) {
    res.set(http::bhttp::field::access_control_allow_headers,
            "Content-Type, Authorization, Content-Encoding, X-Retry-Count");
  } else {
    res.set(http::bhttp::field::access_control_allow_headers, asked);
  }
  res.set(http::bhttp::field::access_control_max_age, "86400");
  return res;
}

std::string TrackingApi::ClientIp(const http::Request& request, const http::PeerInfo& peer) const {
  auto trusted = [&](std::string_view ip) {
    return std::find(options_.trusted_proxies.begin(), options_.trusted_proxies.end(), ip) !=
           options_.trusted_proxies.end();
  };
  if (!trusted(peer.ip)) return peer.ip;
  // Walk X-Forwarded-For from the right: the first address not a trusted proxy is the client.
  std::string xff(request["X-Forwarded-For"]);
  std::string client = peer.ip;
  size_t end = xff.size();
  while (end > 0) {
    size_t comma = xff.rfind(',', end - 1);
    size_t start = comma == std::string::npos ? 0 : comma + 1;
    std::string hop = Trim(std::string_view(xff).substr(start, end - start));
    if (!hop.empty()) {
      client = hop;
      if (!trusted(hop)) break;
    }
    if (comma == std::string::npos) break;
    end = comma;
  }
  return client;
}

void TrackingApi::Finish(std::string_view origin, http::Response response,
                         const http::Responder& respond, std::string_view path, int64_t start_ns) {
  AddCorsHeaders(origin, &response);
  m_->Requests(path, response.result_int())->Inc();
  m_->latency->Observe(static_cast<double>(clock_->MonotonicNanos() - start_ns) / 1e9);
  respond(std::move(response));
}

// What one request carries from step to step of Handle. Views point into the request (alive
// for the whole of Handle), `body`, or this thread's split buffers (valid until the thread's
// next request); nothing here outlives Handle except what the append's completion copies.
struct TrackingApi::RequestState {
  explicit RequestState(http::Responder r) : respond(std::move(r)) {}

  const http::Request* http = nullptr;
  const Route* route = nullptr;
  std::string_view path;  // a string literal: the route's path, or "other"
  unsigned version = 11;
  std::string_view origin;
  int64_t start_ns = 0;
  http::Responder respond;

  // Steps 1-2: the decoded body and its split.
  std::string body;
  std::span<const uint32_t> out_of_range;  // offsets of numbers outside the double range
  std::span<const event::RawMember> top;
  bool has_batch_array = false;
  std::span<const event::RawItem> batch_items;
  std::span<const event::RawMember> item_members;
  std::string_view body_write_key, batch_context_raw, batch_integrations_raw, batch_sent_at_raw;

  // Step 3.
  std::string source;

  // Step 4: the events, and what each became.
  event::EnrichContext ctx;
  std::string received_at_iso, client_ip;
  std::optional<event::BatchDefaults> batch_context, batch_integrations;
  event::RawItem single;
  std::span<const event::RawItem> items;
  std::span<const event::RawMember> all_members;
  std::vector<log::LogRecord> valid;  // valid events, in request order
  std::vector<Hash128> keys;          // their dedupe keys
  json::array rejected;               // why the others were not

  // Step 5.
  uint64_t claimant = 0;
  std::vector<log::LogRecord> records;  // the valid events that are new
  std::vector<Hash128> claimed;         // their keys, claimed by `claimant`
  size_t duplicates = 0;
  size_t blocked = 0;  // of `records`: blocked by a tracking plan (stored, not delivered)
};

void TrackingApi::RejectRequest(RequestState& rq, unsigned status, std::string_view code,
                                std::string_view message) {
  m_->Rejected(code)->Inc();
  Finish(rq.origin, ErrorResponse(status, code, message, rq.version), rq.respond, rq.path,
         rq.start_ns);
}

void TrackingApi::Handle(http::Request&& request, const http::PeerInfo& peer,
                         http::Responder respond) {
  RequestState rq(std::move(respond));
  rq.http = &request;
  rq.start_ns = clock_->MonotonicNanos();
  rq.route = FindRoute(request.target());
  rq.path = rq.route ? rq.route->path : std::string_view("other");
  rq.version = request.version();
  rq.origin = request[http::bhttp::field::origin];
  if (!rq.route) return RejectRequest(rq, 404, "not_found", "no such Tracking API path");
  if (request.method() != http::bhttp::verb::post) {
    auto res = ErrorResponse(405, "method_not_allowed", "use POST", rq.version);
    res.set(http::bhttp::field::allow, "POST, OPTIONS");
    return Finish(rq.origin, std::move(res), rq.respond, rq.path, rq.start_ns);
  }
  m_->bytes_in->Inc(request.body().size());
  // Each step answers the request itself when it ends it, and then returns false.
  if (!DecodeAndParse(request, rq)) return;
  if (!Authenticate(rq)) return;
  if (!CollectEvents(rq)) return;
  if (!AdmitUnderRateLimit(rq)) return;
  ValidateEvents(rq, peer);
  if (!ClaimDedupeKeys(rq)) return;
  AppendAndAnswer(rq);
}

// 1-2. The body, decoded within the request limit (checked on the decompressed size too), then
// validated once as JSON by simdjson (strict grammar, UTF-8, depth cap); after that, events are
// handled as spans of the body text (event/raw_json.h), split in one pass.
bool TrackingApi::DecodeAndParse(http::Request& request, RequestState& rq) {
  auto body = DecodeBody(request[http::bhttp::field::content_encoding], std::move(request.body()),
                         static_cast<size_t>(options_.max_request_bytes));
  if (!body.ok()) {
    switch (body.status().code()) {
      case StatusCode::kResourceExhausted:
        RejectRequest(rq, 413, "request_too_large", body.status().message());
        return false;
      case StatusCode::kFailedPrecondition:
        RejectRequest(rq, 415, "unsupported_encoding", body.status().message());
        return false;
      default:
        RejectRequest(rq, 400, "invalid_body", body.status().message());
        return false;
    }
  }
  rq.body = std::move(*body);
  std::span<const uint32_t> structurals;
  thread_local std::vector<uint32_t> out_of_range;
  if (auto v = ValidateJson(rq.body, &structurals, &out_of_range); !v.ok()) {
    bool too_deep = v.code() == StatusCode::kResourceExhausted;
    RejectRequest(rq, 400, too_deep ? "too_deep" : "invalid_json", v.message());
    return false;
  }
  rq.out_of_range = out_of_range;
  // Top-level members, and for a batch each event and its members.
  thread_local std::vector<event::RawMember> top, item_members;
  thread_local std::vector<event::RawItem> batch_items;
  const std::string_view text = rq.body;
  const bool split =
      structurals.empty()
          ? event::SplitBatchBody(text, &top, &rq.has_batch_array, &batch_items, &item_members)
          : event::SplitBatchBodyIndexed(text, structurals, &top, &rq.has_batch_array, &batch_items,
                                         &item_members);
  if (!split) {
    RejectRequest(rq, 400, "invalid_json", "the body must be a JSON object");
    return false;
  }
  rq.top = top;
  rq.batch_items = batch_items;
  rq.item_members = item_members;
  for (const auto& m : top) {  // the last of duplicate keys wins, as in most JSON parsers
    if (m.key == "writeKey")
      rq.body_write_key = m.value;
    else if (m.key == "context")
      rq.batch_context_raw = m.value;
    else if (m.key == "integrations")
      rq.batch_integrations_raw = m.value;
    else if (m.key == "sentAt")
      rq.batch_sent_at_raw = m.value;
  }
  return true;
}

// 3. The write key: HTTP Basic user, or writeKey in the body.
bool TrackingApi::Authenticate(RequestState& rq) {
  std::optional<std::string> key =
      WriteKeyFromBasicAuth((*rq.http)[http::bhttp::field::authorization]);
  if (!key && event::KindOf(rq.body_write_key) == event::RawKind::kString &&
      rq.body_write_key.size() > 2) {
    key.emplace();
    event::UnescapeJsonString(rq.body_write_key.substr(1, rq.body_write_key.size() - 2), &*key);
  }
  if (!key) {
    RejectRequest(rq, 401, "missing_write_key",
                  "send the write key as HTTP Basic user or as writeKey in the body");
    return false;
  }
  std::optional<std::string> source = sources_->Lookup(*key);
  if (!source) {
    RejectRequest(rq, 401, "unknown_write_key", "the write key matches no source");
    return false;
  }
  rq.source = std::move(*source);
  return true;
}

// 4a. The request's events and the batch's defaults for them.
bool TrackingApi::CollectEvents(RequestState& rq) {
  const std::string_view text = rq.body;
  rq.single = event::RawItem{text, 0, static_cast<uint32_t>(rq.top.size()), true};
  if (rq.route->type) {
    rq.items = std::span<const event::RawItem>(&rq.single, 1);
    rq.all_members = rq.top;
    return true;
  }
  if (!rq.has_batch_array) {
    RejectRequest(rq, 400, "missing_batch", "a batch request needs a batch array");
    return false;
  }
  rq.items = rq.batch_items;
  rq.all_members = rq.item_members;
  if (rq.items.size() > static_cast<size_t>(options_.max_batch_events)) {
    RejectRequest(rq, 413, "too_many_events",
                  "batch holds " + std::to_string(rq.items.size()) + " events; the limit is " +
                      std::to_string(options_.max_batch_events));
    return false;
  }
  // The batch's defaults go into every event: a number out of range there spoils them all.
  for (std::string_view raw :
       {rq.batch_context_raw, rq.batch_integrations_raw, rq.batch_sent_at_raw}) {
    size_t next = 0;
    if (HoldsOutOfRange(rq.out_of_range, &next, text, raw)) {
      RejectRequest(rq, 400, "number_out_of_range",
                    "a number in the batch's context, integrations or sentAt is outside the "
                    "range of a double");
      return false;
    }
  }
  if (event::KindOf(rq.batch_context_raw) == event::RawKind::kObject &&
      !rq.batch_context_raw.empty()) {
    rq.ctx.batch_context = &rq.batch_context.emplace(rq.batch_context_raw);
  }
  if (event::KindOf(rq.batch_integrations_raw) == event::RawKind::kObject &&
      !rq.batch_integrations_raw.empty()) {
    rq.ctx.batch_integrations = &rq.batch_integrations.emplace(rq.batch_integrations_raw);
  }
  if (event::KindOf(rq.batch_sent_at_raw) != event::RawKind::kNull) {
    rq.ctx.batch_sent_at = rq.batch_sent_at_raw;
  }
  return true;
}

// 4b. The source's rate limit, on the events the request holds, before any is validated.
bool TrackingApi::AdmitUnderRateLimit(RequestState& rq) {
  const int64_t wait_ms =
      sources_->AdmitEvents(rq.source, rq.items.size(), clock_->MonotonicNanos());
  if (wait_ms == 0) return true;
  m_->refused->WithCached({rq.source, "rate_limited"})->Inc(rq.items.size());
  const std::string seconds = std::to_string((wait_ms + 999) / 1000);
  auto res = ErrorResponse(429, "rate_limited",
                           "source '" + rq.source + "' is over its rate limit; retry in " +
                               seconds + " s (nothing of this request was stored)",
                           rq.version);
  res.set(http::bhttp::field::retry_after, seconds);
  res.set("X-RateLimit-Reset", seconds);
  Finish(rq.origin, std::move(res), rq.respond, rq.path, rq.start_ns);
  return false;
}

// 4c. Each event validated and enriched: into `valid` (with its dedupe key) or `rejected`.
void TrackingApi::ValidateEvents(RequestState& rq, const http::PeerInfo& peer) {
  rq.ctx.received_at = clock_->Now();
  rq.received_at_iso = FormatIso8601(rq.ctx.received_at);
  rq.ctx.received_at_iso = rq.received_at_iso;
  rq.client_ip = ClientIp(*rq.http, peer);
  rq.ctx.client_ip = rq.client_ip;
  event::Limits limits;
  limits.max_event_bytes = static_cast<size_t>(options_.max_event_bytes);
  rq.valid.reserve(rq.items.size());
  rq.keys.reserve(rq.items.size());
  const std::string_view text = rq.body;
  size_t next_out_of_range = 0;
  // The plans this request is judged by (one load: a config change applies to whole requests).
  std::shared_ptr<const governance::TrackingPlans> plans = plans_.load();
  if (plans && !plans->HasPlan(rq.source)) plans.reset();
  thread_local std::vector<event::RawMember> stored_members;  // of `stored`, for the plan
  for (size_t i = 0; i < rq.items.size(); ++i) {
    const event::RawItem& raw = rq.items[i];
    const auto members = rq.all_members.subspan(raw.first_member, raw.member_count);
    std::optional<event::Rejection> why;
    std::string message_id;
    std::string stored;
    if (!raw.is_object) {
      why = event::Rejection{"not_an_object", "each event must be a JSON object"};
    } else if (HoldsOutOfRange(rq.out_of_range, &next_out_of_range, text, raw.text)) {
      why = event::Rejection{"number_out_of_range",
                             "the event holds a number outside the range of a double"};
    } else {
      why = event::ValidateAndEnrich(raw.text, members, rq.route->type, rq.ctx, limits, &stored,
                                     &message_id, plans ? &stored_members : nullptr);
    }
    if (why) {
      m_->Rejected(why->code)->Inc();
      json::object r;
      r["index"] = i;
      r["code"] = why->code;
      r["reason"] = why->message;
      std::string_view mid_content;
      for (const auto& m : members) {
        if (m.key == "messageId" && event::PlainString(m.value, &mid_content))
          r["messageId"] = mid_content;
      }
      rq.rejected.emplace_back(std::move(r));
      continue;
    }
    std::vector<log::RecordHeader> headers;
    if (plans) {
      // On the event as stored (enriched), so a schema sees what destinations would.
      // Its members from the enrichment above: the compiled checker does not split it again.
      governance::PlanVerdict verdict = plans->Judge(rq.source, stored, stored_members);
      plan_metrics_->Count(verdict);
      if (!verdict.violations.empty() && verdict.action != config::PlanAction::kAllow) {
        std::string violations = governance::ViolationsJson(verdict.violations);
        if (verdict.action == config::PlanAction::kFlag) {
          stored = governance::WithContextViolations(stored, violations, stored_members);
          headers.push_back({std::string(log::kHeaderPlan), std::string(verdict.plan)});
          headers.push_back({std::string(log::kHeaderViolations), std::move(violations)});
        } else {  // block: stored with its mark, which every destination honours
          headers.push_back({std::string(log::kHeaderBlocked), std::string(verdict.plan)});
          headers.push_back({std::string(log::kHeaderViolations), std::move(violations)});
        }
      }
    }
    rq.keys.push_back(DedupeIndex::Key(rq.source, message_id));
    rq.valid.push_back(log::LogRecord{rq.source, std::move(message_id), rq.ctx.received_at,
                                      std::move(stored), std::move(headers)});
    if (record_users_) {
      // As sent (escaped ids are skipped: the key only has to be the same for every copy).
      std::string_view anonymous_id, user_id;
      for (const auto& m : members) {
        if (m.key == "anonymousId") event::PlainString(m.value, &anonymous_id);
        if (m.key == "userId") event::PlainString(m.value, &user_id);
      }
      rq.valid.back().user = std::string(!anonymous_id.empty() ? anonymous_id : user_id);
    }
  }
}

http::Response TrackingApi::OkResponse(unsigned version, size_t stored, size_t duplicates,
                                       size_t blocked, json::array rejected) {
  http::Response res{http::bhttp::status::ok, version};
  res.set(http::bhttp::field::content_type, "application/json");
  if (rejected.empty() && blocked == 0) {
    res.body() = R"({"success":true})";
  } else if (rejected.empty()) {
    // Every event is stored; `blocked` of them are kept from destinations by a tracking plan.
    res.body() = R"({"success":true,"blocked":)" + std::to_string(blocked) + "}";
  } else {
    json::object b;
    b["success"] = false;
    b["stored"] = stored;
    b["duplicates"] = duplicates;
    b["blocked"] = blocked;
    b["rejected"] = std::move(rejected);
    res.body() = json::serialize(b);
  }
  return res;
}

// 5. Dedupe claims, in request order (a messageId repeated within the request is a duplicate of
// its first occurrence). Answers the request when nothing is left to append.
bool TrackingApi::ClaimDedupeKeys(RequestState& rq) {
  // The keys' table slots are fetched from memory together first.
  dedupe_->Prefetch(rq.keys);
  rq.claimant = next_claimant_.fetch_add(1);
  rq.records.reserve(rq.valid.size());
  rq.claimed.reserve(rq.valid.size());
  bool in_flight = false;
  bool unavailable = false;
  for (size_t j = 0; j < rq.valid.size() && !in_flight && !unavailable; ++j) {
    switch (dedupe_->Claim(rq.keys[j], rq.claimant)) {
      case DedupeIndex::ClaimResult::kDuplicate:
        ++rq.duplicates;
        break;
      case DedupeIndex::ClaimResult::kInFlight:
        in_flight = true;
        break;
      case DedupeIndex::ClaimResult::kUnavailable:
        unavailable = true;
        break;
      case DedupeIndex::ClaimResult::kNew:
        if (!rq.valid[j].headers.empty() &&
            log::FindHeader(rq.valid[j].headers, log::kHeaderBlocked) != nullptr)
          ++rq.blocked;
        rq.claimed.push_back(rq.keys[j]);
        rq.records.push_back(std::move(rq.valid[j]));
        break;
    }
  }
  if (unavailable) {
    // The dedupe index could not tell whether an event was stored before (a run file could not
    // be read, or its memory is full while it cannot spill to disk): storing it could store a
    // duplicate, dropping it could lose it. Nothing of the request is stored; retry.
    dedupe_->Release(rq.claimed, rq.claimant);
    m_->Rejected("dedupe_unavailable")->Inc(rq.valid.size());
    auto res = ErrorResponse(503, "dedupe_unavailable",
                             "the dedupe index cannot answer now; nothing of this request was "
                             "stored, retry",
                             rq.version);
    res.set(http::bhttp::field::retry_after, "1");
    Finish(rq.origin, std::move(res), rq.respond, rq.path, rq.start_ns);
    return false;
  }
  if (rq.duplicates > 0) m_->duplicates->Inc(rq.duplicates);

  if (in_flight) {
    // Another request holds one of these messageIds and its append has not completed: if it
    // failed, acknowledging ours as a duplicate would lose the event. Ask for a retry.
    dedupe_->Release(rq.claimed, rq.claimant);
    m_->in_flight_retries->Inc();
    auto res = ErrorResponse(
        503, "duplicate_in_flight",
        "an event with the same messageId is being stored by another request; retry", rq.version);
    res.set(http::bhttp::field::retry_after, "1");
    Finish(rq.origin, std::move(res), rq.respond, rq.path, rq.start_ns);
    return false;
  }

  if (!rq.rejected.empty() && rq.rejected.size() == rq.items.size()) {
    json::object b;
    b["success"] = false;
    b["error"] = "all_events_rejected";
    b["code"] = "all_events_rejected";
    b["message"] = "no event of the request was valid";
    b["rejected"] = std::move(rq.rejected);
    http::Response res{http::bhttp::status::bad_request, rq.version};
    res.set(http::bhttp::field::content_type, "application/json");
    res.body() = json::serialize(b);
    Finish(rq.origin, std::move(res), rq.respond, rq.path, rq.start_ns);
    return false;
  }

  if (rq.records.empty()) {  // every valid event was a duplicate
    Finish(rq.origin, OkResponse(rq.version, 0, rq.duplicates, 0, std::move(rq.rejected)),
           rq.respond, rq.path, rq.start_ns);
    return false;
  }
  return true;
}

// 6. Durable append; the answer comes from the writer thread once the events are on disk.
void TrackingApi::AppendAndAnswer(RequestState& rq) {
  const size_t n = rq.records.size();
  // The live view's sample, copied before the records go to the log (none when nobody watches),
  // shown once they are stored.
  std::vector<observe::LiveRecord> watched;
  if (live_) {
    const int64_t now = clock_->Now().value();
    const size_t k = live_->Admit(observe::TopicKind::kSource, rq.source, n, now);
    watched.reserve(k);
    for (size_t i = 0; i < k; ++i) {
      const log::LogRecord& r = rq.records[i];
      watched.push_back(observe::LiveRecord::Of(observe::Stage::kReceived, now, r.source,
                                                r.message_id, r.payload));
    }
  }
  log_->Append(std::move(rq.records),
               [this, origin = std::string(rq.origin), version = rq.version, respond = rq.respond,
                path = rq.path, start_ns = rq.start_ns, claimant = rq.claimant, n, src = rq.source,
                claimed = std::move(rq.claimed), rejected = std::move(rq.rejected),
                duplicates = rq.duplicates, blocked = rq.blocked, received_at = rq.ctx.received_at,
                watched = std::move(watched)](const log::AppendResult& r) mutable {
                 if (!r.status.ok()) {
                   dedupe_->Release(claimed, claimant);
                   m_->Rejected("log_unavailable")->Inc(n);
                   // The status names files of the server: the log line keeps it, the client gets
                   // its kind only (503 bodies carry no server paths).
                   Logger()->warn("append failed events={} status={}", n, r.status.ToString());
                   auto res = ErrorResponse(503, "log_unavailable",
                                            "events could not be stored durably (" +
                                                std::string(StatusCodeName(r.status.code())) +
                                                "); nothing of this request was stored, retry",
                                            version);
                   res.set(http::bhttp::field::retry_after, "1");
                   return Finish(origin, std::move(res), respond, path, start_ns);
                 }
                 dedupe_->Commit(claimed, received_at, r.first.Plus(n));
                 m_->Accepted(src)->Inc(n);
                 if (ingest_stats_) ingest_stats_->Record(src, received_at.value(), n);
                 if (!watched.empty())
                   live_->Publish(observe::TopicKind::kSource, src, std::move(watched));
                 Finish(origin, OkResponse(version, n, duplicates, blocked, std::move(rejected)),
                        respond, path, start_ns);
               });
}

}  // namespace sy::ingest
