#include "ingest/tracking_api.h"

#include <simdjson.h>
#include <boost/json.hpp>

#include <array>
#include <atomic>
#include <charconv>
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

std::shared_ptr<spdlog::logger> Log() {
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

}  // namespace

Status TrackingApi::ValidateJson(std::string& text, std::span<const uint32_t>* structurals) const {
  *structurals = {};
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
    // simdjson refuses integers beyond 64 bits, which JSON allows: ask Boost.JSON.
    json::parse_options popts;
    popts.max_depth = depth;
    boost::system::error_code ec;
    json::monotonic_resource mr;
    json::parse(text, ec, &mr, popts);
    if (!ec) return Status::Ok();
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
  m_ = std::make_unique<Metrics>();
  m_->requests = metrics->Counters("switchyard_http_requests_total",
                                   "HTTP requests by path and status.", {"path", "status"});
  m_->accepted = metrics->Counters("switchyard_ingest_events_accepted_total",
                                   "Events stored durably in the log, by source.", {"source"});
  m_->rejected = metrics->Counters("switchyard_ingest_events_rejected_total",
                                   "Events not stored, by reason (each is named in its response).",
                                   {"reason"});
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

void TrackingApi::Handle(http::Request&& request, const http::PeerInfo& peer,
                         http::Responder respond) {
  const int64_t start_ns = clock_->MonotonicNanos();
  const Route* route = FindRoute(request.target());
  std::string_view path = route ? route->path : std::string_view("other");
  const unsigned version = request.version();
  const std::string_view origin = request[http::bhttp::field::origin];
  auto reject_request = [&](unsigned status, std::string_view code, std::string_view message) {
    m_->Rejected(code)->Inc();
    Finish(origin, ErrorResponse(status, code, message, version), respond, path, start_ns);
  };
  if (!route) return reject_request(404, "not_found", "no such Tracking API path");
  if (request.method() != http::bhttp::verb::post) {
    auto res = ErrorResponse(405, "method_not_allowed", "use POST", version);
    res.set(http::bhttp::field::allow, "POST, OPTIONS");
    return Finish(origin, std::move(res), respond, path, start_ns);
  }
  m_->bytes_in->Inc(request.body().size());

  // 1. Body: decode within the request limit (checked on the decompressed size too).
  auto body = DecodeBody(request[http::bhttp::field::content_encoding], std::move(request.body()),
                         static_cast<size_t>(options_.max_request_bytes));
  if (!body.ok()) {
    switch (body.status().code()) {
      case StatusCode::kResourceExhausted:
        return reject_request(413, "request_too_large", body.status().message());
      case StatusCode::kFailedPrecondition:
        return reject_request(415, "unsupported_encoding", body.status().message());
      default:
        return reject_request(400, "invalid_body", body.status().message());
    }
  }

  // 2. JSON: the whole body is validated once by simdjson (strict grammar, UTF-8, depth cap);
  // after that, events are handled as spans of the body text (event/raw_json.h).
  std::string& text = *body;
  std::span<const uint32_t> structurals;
  {
    auto v = ValidateJson(text, &structurals);
    if (!v.ok()) {
      bool too_deep = v.code() == StatusCode::kResourceExhausted;
      return reject_request(400, too_deep ? "too_deep" : "invalid_json", v.message());
    }
  }
  // One pass splits the body: top-level members, and for a batch each event and its members.
  thread_local std::vector<event::RawMember> top, item_members;
  thread_local std::vector<event::RawItem> batch_items;
  bool has_batch_array = false;
  const bool split =
      structurals.empty()
          ? event::SplitBatchBody(text, &top, &has_batch_array, &batch_items, &item_members)
          : event::SplitBatchBodyIndexed(text, structurals, &top, &has_batch_array, &batch_items,
                                         &item_members);
  if (!split) {
    return reject_request(400, "invalid_json", "the body must be a JSON object");
  }
  std::string_view body_write_key, batch_context_raw, batch_integrations_raw, batch_sent_at_raw;
  for (const auto& m : top) {  // the last of duplicate keys wins, as in most JSON parsers
    if (m.key == "writeKey")
      body_write_key = m.value;
    else if (m.key == "context")
      batch_context_raw = m.value;
    else if (m.key == "integrations")
      batch_integrations_raw = m.value;
    else if (m.key == "sentAt")
      batch_sent_at_raw = m.value;
  }

  // One arena per request for whatever needs a DOM (batch defaults, unusual events).
  json::monotonic_resource arena(4096);
  json::parse_options popts;
  popts.max_depth = static_cast<size_t>(options_.max_json_depth);
  // Parses a span of the validated body. It cannot fail unless simdjson and Boost.JSON disagree
  // (number ranges); then the value is null and the event is rejected as invalid JSON.
  auto parse_raw = [&](std::string_view raw) {
    boost::system::error_code ec;
    json::value v = json::parse(raw, ec, &arena, popts);
    return ec ? json::value(nullptr) : v;
  };

  // 3. Auth: Basic header, or writeKey in the body.
  std::optional<std::string> key =
      WriteKeyFromBasicAuth(request[http::bhttp::field::authorization]);
  if (!key && event::KindOf(body_write_key) == event::RawKind::kString && !body_write_key.empty()) {
    json::value wk = parse_raw(body_write_key);
    if (wk.is_string()) key = std::string(wk.get_string());
  }
  if (!key)
    return reject_request(401, "missing_write_key",
                          "send the write key as HTTP Basic user or as writeKey in the body");
  std::optional<std::string> source = sources_->Lookup(*key);
  if (!source) return reject_request(401, "unknown_write_key", "the write key matches no source");

  // 4. The events of the request.
  event::EnrichContext ctx;
  ctx.received_at = clock_->Now();
  std::string received_at_iso = FormatIso8601(ctx.received_at);
  ctx.received_at_iso = received_at_iso;
  std::string client_ip = ClientIp(request, peer);
  ctx.client_ip = client_ip;
  std::span<const event::RawItem> items;
  event::RawItem single{text, 0, static_cast<uint32_t>(top.size()), true};
  json::value batch_context, batch_integrations, batch_sent_at;
  if (!route->type) {
    if (!has_batch_array)
      return reject_request(400, "missing_batch", "a batch request needs a batch array");
    items = batch_items;
    if (items.size() > static_cast<size_t>(options_.max_batch_events)) {
      return reject_request(413, "too_many_events",
                            "batch holds " + std::to_string(items.size()) +
                                " events; the limit is " +
                                std::to_string(options_.max_batch_events));
    }
    if (event::KindOf(batch_context_raw) == event::RawKind::kObject && !batch_context_raw.empty()) {
      batch_context = parse_raw(batch_context_raw);
      if (batch_context.is_object()) ctx.batch_context = &batch_context.get_object();
    }
    if (event::KindOf(batch_integrations_raw) == event::RawKind::kObject &&
        !batch_integrations_raw.empty()) {
      batch_integrations = parse_raw(batch_integrations_raw);
      if (batch_integrations.is_object()) ctx.batch_integrations = &batch_integrations.get_object();
    }
    if (!batch_sent_at_raw.empty() && event::KindOf(batch_sent_at_raw) != event::RawKind::kNull) {
      batch_sent_at = parse_raw(batch_sent_at_raw);
      ctx.batch_sent_at = &batch_sent_at;
    }
  } else {
    items = std::span<const event::RawItem>(&single, 1);
  }
  const std::span<const event::RawMember> all_members =
      route->type ? std::span<const event::RawMember>(top)
                  : std::span<const event::RawMember>(item_members);

  event::Limits limits;
  limits.max_event_bytes = static_cast<size_t>(options_.max_event_bytes);
  // Valid events, with their dedupe keys, in request order.
  std::vector<log::LogRecord> valid;
  std::vector<Hash128> keys;
  valid.reserve(items.size());
  keys.reserve(items.size());
  json::array rejected;
  for (size_t i = 0; i < items.size(); ++i) {
    const event::RawItem& raw = items[i];
    std::string_view item = raw.text;
    std::optional<event::Rejection> why;
    std::string message_id;
    std::string stored;
    if (!raw.is_object) {
      why = event::Rejection{"not_an_object", "each event must be a JSON object"};
    } else {
      auto fast = event::FastValidateAndEnrich(
          item, all_members.subspan(raw.first_member, raw.member_count), route->type, ctx, limits,
          &stored, &message_id, &why);
      if (fast == event::FastOutcome::kNeedsDom) {
        // Batch defaults to merge, duplicate or escaped keys: the general path.
        json::value dom = parse_raw(item);
        if (!dom.is_object()) {
          why = event::Rejection{"invalid_json", "the event could not be parsed"};
        } else {
          why = event::ValidateAndEnrich(dom.get_object(), route->type, ctx, limits, &message_id);
          if (!why) stored = json::serialize(dom);
        }
      }
    }
    if (why) {
      m_->Rejected(why->code)->Inc();
      json::object r;
      r["index"] = i;
      r["code"] = why->code;
      r["reason"] = why->message;
      std::string_view mid_content;
      for (const auto& m : all_members.subspan(raw.first_member, raw.member_count)) {
        if (m.key == "messageId" && event::PlainString(m.value, &mid_content))
          r["messageId"] = mid_content;
      }
      rejected.emplace_back(std::move(r));
      continue;
    }
    keys.push_back(DedupeIndex::Key(*source, message_id));
    valid.push_back(
        log::LogRecord{*source, std::move(message_id), ctx.received_at, std::move(stored)});
  }

  // Dedupe claims, in request order (a messageId repeated within the request is a duplicate of
  // its first occurrence). The keys' table slots are fetched from memory together first.
  dedupe_->Prefetch(keys);
  const uint64_t claimant = next_claimant_.fetch_add(1);
  std::vector<log::LogRecord> records;
  records.reserve(valid.size());
  std::vector<Hash128> claimed;
  claimed.reserve(valid.size());
  size_t duplicates = 0;
  bool in_flight = false;
  for (size_t j = 0; j < valid.size() && !in_flight; ++j) {
    switch (dedupe_->Claim(keys[j], claimant)) {
      case DedupeIndex::ClaimResult::kDuplicate:
        ++duplicates;
        break;
      case DedupeIndex::ClaimResult::kInFlight:
        in_flight = true;
        break;
      case DedupeIndex::ClaimResult::kNew:
        claimed.push_back(keys[j]);
        records.push_back(std::move(valid[j]));
        break;
    }
  }
  if (duplicates > 0) m_->duplicates->Inc(duplicates);

  if (in_flight) {
    // Another request holds one of these messageIds and its append has not completed: if it
    // failed, acknowledging ours as a duplicate would lose the event. Ask for a retry.
    dedupe_->Release(claimed, claimant);
    m_->in_flight_retries->Inc();
    auto res = ErrorResponse(
        503, "duplicate_in_flight",
        "an event with the same messageId is being stored by another request; retry", version);
    res.set(http::bhttp::field::retry_after, "1");
    return Finish(origin, std::move(res), respond, path, start_ns);
  }

  const size_t total = items.size();
  if (!rejected.empty() && rejected.size() == total) {
    json::object b;
    b["success"] = false;
    b["error"] = "all_events_rejected";
    b["code"] = "all_events_rejected";
    b["message"] = "no event of the request was valid";
    b["rejected"] = std::move(rejected);
    http::Response res{http::bhttp::status::bad_request, version};
    res.set(http::bhttp::field::content_type, "application/json");
    res.body() = json::serialize(b);
    return Finish(origin, std::move(res), respond, path, start_ns);
  }

  auto make_ok = [version, duplicates](size_t stored, json::array rej) {
    http::Response res{http::bhttp::status::ok, version};
    res.set(http::bhttp::field::content_type, "application/json");
    if (rej.empty()) {
      res.body() = R"({"success":true})";
    } else {
      json::object b;
      b["success"] = false;
      b["stored"] = stored;
      b["duplicates"] = duplicates;
      b["rejected"] = std::move(rej);
      res.body() = json::serialize(b);
    }
    return res;
  };

  if (records.empty()) {  // every valid event was a duplicate
    return Finish(origin, make_ok(0, std::move(rejected)), respond, path, start_ns);
  }

  // 5. Durable append; answer from the writer thread once it is on disk.
  const size_t n = records.size();
  log_->Append(std::move(records),
               [this, origin = std::string(origin), version, respond, path, start_ns, claimant, n,
                src = *source, claimed = std::move(claimed), rejected = std::move(rejected),
                make_ok, received_at = ctx.received_at](const log::AppendResult& r) mutable {
                 if (!r.status.ok()) {
                   dedupe_->Release(claimed, claimant);
                   m_->Rejected("log_unavailable")->Inc(n);
                   Log()->warn("append failed events={} status={}", n, r.status.ToString());
                   auto res =
                       ErrorResponse(503, "log_unavailable",
                                     "events could not be stored durably: " + r.status.message() +
                                         "; nothing of this request was stored, retry",
                                     version);
                   res.set(http::bhttp::field::retry_after, "1");
                   return Finish(origin, std::move(res), respond, path, start_ns);
                 }
                 dedupe_->Commit(claimed, received_at, r.first.Plus(n));
                 m_->Accepted(src)->Inc(n);
                 Finish(origin, make_ok(n, std::move(rejected)), respond, path, start_ns);
               });
}

}  // namespace sy::ingest
