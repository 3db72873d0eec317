// The destination plugin interface. A destination is small: a settings table, a pure encoder
// (a batch of routed events → HTTP requests), a response classifier (one Outcome per event) and
// a factory. Everything generic — routing, batching, retries, ordering, dead letters, metrics —
// lives in the framework (DestinationStream), written once. Destinations classify; the framework
// decides.
//
// Threads: a Destination instance is owned by one DestinationStream and called only from that
// stream's thread; implementations need no locking. Encode and Classify must be pure (no I/O, no
// clock), so they are golden-testable.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "base/types.h"
#include "delivery/settings.h"
#include "http/client.h"
#include "log/event_log.h"

namespace sy {
class MetricsRegistry;
}

namespace sy::delivery {

// One event as handed to a destination: an event of the log that the router passed to this
// destination, its stored JSON after the destination's filters (drop_properties). Not the log's
// record itself (log::LogEntry): a copy per destination, rewritten by its routing.
struct RoutedEvent {
  Offset offset;
  std::string source;
  std::string message_id;
  TimestampMs received_at;
  std::string payload;  // Segment message JSON (drop_properties already applied)
  // The stored record's headers (log/event_log.h): a tracking plan's marks. Usually none.
  std::vector<log::RecordHeader> headers = {};
};

using HeaderList = http::HeaderList;

// A request as a destination encodes it: the wire request (http/client.h) plus which events of
// the batch it carries — the one thing about it that is delivery's, not HTTP's.
struct HttpRequest : http::ClientRequest {
  // Indexes (into the batch passed to Encode) of the events this request carries. (The stream
  // sets timeout_ms to the destination's `timeout:`; a timeout is a transport error, retried.)
  std::vector<size_t> events;
  // Two-step requests (Destination::FollowUp): which step this is, as the destination names it
  // ("" for an ordinary request), and what the destination carries to the next step (the call's
  // body while a token is fetched, the contact while it is searched for). Delivery keeps both
  // with the request and never reads them.
  std::string step;
  std::string carry;
  int follow_ups = 0;  // set by the framework: how many FollowUp answers led to this request
};

// What came back (status 0: no HTTP response; see http::ClientResponse).
using HttpResponse = http::ClientResponse;

struct Outcome {
  enum class Kind { kDelivered, kRetry, kRejected };
  Kind kind = Kind::kDelivered;
  std::optional<int64_t> retry_after_ms;  // kRetry: the receiver's Retry-After, if any
  std::string reason;                     // kRetry/kRejected: short, for logs and dead letters
  static Outcome Delivered() { return {}; }
  static Outcome Retry(std::string reason, std::optional<int64_t> after = std::nullopt) {
    return {Kind::kRetry, after, std::move(reason)};
  }
  static Outcome Rejected(std::string reason) { return {Kind::kRejected, {}, std::move(reason)}; }
  // The receiver refused the destination's credentials (a revoked key, a wrong token): not the
  // event's fault, so it is retried, but the whole destination is held and probed slowly (it
  // shows unhealthy) instead of retrying each event at the usual pace. See DestinationStream.
  static Outcome AuthFailure(std::string reason) {
    Outcome o = Retry(std::move(reason));
    o.auth_failure = true;
    return o;
  }
  bool auth_failure = false;  // kRetry only: see AuthFailure
};

// What the encoder produced: requests, events it cannot map (rejected without sending: dead
// letters), and events it skips — calls the vendor has no concept for (an alias to a tool
// without aliases), which are final without sending and counted as filtered, never an error.
struct EncodedBatch {
  std::vector<HttpRequest> requests;
  std::vector<std::pair<size_t, std::string>> unmappable;  // (index in batch, reason)
  std::vector<std::pair<size_t, std::string>> skipped;     // (index in batch, reason)
};

// Per-request limits of the vendor. The framework takes batches per the `batch:` config and
// hands Encode chunks within these limits (one request's worth, by convention); a single event
// larger than max_bytes_per_request is still handed over alone.
struct DestinationLimits {
  size_t max_events_per_request = 1;
  size_t max_bytes_per_request = 1 << 20;
};

class Destination {
 public:
  virtual ~Destination() = default;

  virtual DestinationLimits limits() const = 0;

  // HTTP destinations: pure encoding of `batch` (within limits()) into requests; every event
  // index appears in exactly one request, in `unmappable` or in `skipped`.
  virtual EncodedBatch Encode(std::span<const RoutedEvent> batch) const = 0;

  // One Outcome per event of `request.events`, in that order. The default is the convention of
  // the field (ClassifyByStatus); batch APIs with partial failures override it. The stream
  // passes the request without its body (the body went to the wire). A 413 to a request of
  // several events never reaches Classify: the framework splits the request instead.
  virtual std::vector<Outcome> Classify(const HttpRequest& request,
                                        const HttpResponse& response) const;

  // Two-step requests: called with each response before Classify. A request to send next for
  // the same events (a token fetched, now the call; a contact searched for, now its update or
  // its creation) is sent in place of classifying this response; nullopt classifies it. The
  // framework copies `events` from `sent` and stops following after kMaxFollowUps (then it
  // classifies). Called on the stream's thread only, so it may update the destination's own
  // state (a cached token); it does no I/O. Default: nullopt.
  static constexpr int kMaxFollowUps = 4;
  virtual std::optional<HttpRequest> FollowUp(const HttpRequest& /*sent*/,
                                              const HttpResponse& /*response*/) {
    return std::nullopt;
  }

  // In-process destinations (blackhole, flaky, later kafka) deliver without HTTP: they return
  // one Outcome per event here; HTTP destinations return nullopt (the default).
  virtual std::optional<std::vector<Outcome>> DeliverInProcess(std::span<const RoutedEvent>) {
    return std::nullopt;
  }

  // Batching a destination derives from its own settings, replacing the `batch:` section (a
  // warehouse loads every `sync_interval`, up to a row cap). nullopt: `batch:` applies.
  virtual std::optional<config::BatchConfig> BatchOverride() const { return std::nullopt; }

  // True for a destination that is handed the events a tracking plan blocked (header
  // `sy-blocked`) instead of skipping them: the warehouse, which loads only their `violations`
  // rows, never the events themselves. Every other destination skips them (filtered).
  virtual bool TakesBlockedEvents() const { return false; }

  // Called once by DestinationStream::Start (and by `warehouse sync`), with the configured name
  // and the metrics registry (never null), for destinations that export metrics
  // of their own (warehouses: rows per table, load time, discards).
  virtual void Attach(const std::string& /*name*/, MetricsRegistry* /*metrics*/) {}
};

// 2xx delivered; what http::IsTransientFailure calls transient (408, 429, 5xx, transport errors
// other than a guard refusal) retried with the response's Retry-After (seconds or an HTTP date);
// 401 and 403 an AuthFailure (the credentials, not the event); anything else — another status,
// a guard refusal — rejected. The reason names the status.
Outcome ClassifyByStatus(const HttpResponse& response);
// Retry-After parsing lives with the client (http/client.h); the framework and destinations
// use it from there.
using http::ParseRetryAfterMs;
using http::RetryAfterMs;

// What a type supports, as docs/destinations/README.md lists it (generated; set by each type's
// factory function, checked non-empty by the conformance suite). Short phrases, no pipes.
struct DestinationSupport {
  std::string event_types;  // the Segment calls it maps, and what it does with the rest
  std::string batch;        // events per request (the vendor's documented limit), or "no"
  std::string idempotency;  // the vendor's dedupe key Switchyard fills (messageId as …), or "none"
  std::string deletion;     // the vendor's user-deletion API and whether Switchyard uses it
};

// What the framework knows about a destination type: one entry per built-in destination in the
// list generated from src/destinations/CMakeLists.txt (destinations/registry.h). No
// self-registration. Built by MakeDestinationType from a typed settings table and a factory.
struct DestinationType {
  std::string type;          // as written in config (`webhook`)
  std::string display_name;  // as written in an event's integrations object (`Webhooks`)
  std::string description;
  std::vector<SettingSpec> settings;  // the table's rows: help, docs, `switchyard destinations`
  DestinationSupport support;         // for the generated index of docs/destinations/
  // Parses `raw` against the settings table and builds an instance. Errors, one per line:
  // "<file>:<line>: <path>.<key>: <problem>" for the table's checks, and
  // "<file>:<origin.line>: <path>: <problem>" for the factory's own.
  std::function<Result<std::unique_ptr<Destination>>(const std::vector<config::RawSetting>& raw,
                                                     const SettingsOrigin& origin)>
      create;
};

// A type whose settings bind to the struct S: `factory` receives S filled and checked by
// `table` (types, required keys, ranges, enums) and adds only checks a table cannot express.
template <typename S>
DestinationType MakeDestinationType(
    std::string type, std::string display_name, std::string description, SettingsTable<S> table,
    std::function<Result<std::unique_ptr<Destination>>(const S&)> factory) {
  DestinationType t;
  t.type = std::move(type);
  t.display_name = std::move(display_name);
  t.description = std::move(description);
  t.settings = table.specs();
  t.create = [table = std::move(table), factory = std::move(factory)](
                 const std::vector<config::RawSetting>& raw,
                 const SettingsOrigin& origin) -> Result<std::unique_ptr<Destination>> {
    SY_ASSIGN_OR_RETURN(S settings, ParseSettings(table, raw, origin));
    auto made = factory(settings);
    if (!made.ok()) {
      return InvalidArgument(origin.file + ":" + std::to_string(origin.line) + ": " + origin.path +
                             ": " + made.status().message() + "\n");
    }
    return made;
  };
  return t;
}

}  // namespace sy::delivery
