// DestinationStream: delivers the event log to one destination. One per enabled destination,
// each with its own thread, its own named log cursor ("dest.<name>") and its own in-flight
// window, so a slow or failing destination builds lag for itself only.
//
// Per event the stream decides, in order: route (sources, integrations object, filters — see
// routing.h); batch (up to min(`batch:` config, the destination's limits), waiting at most
// batch.max_wait for a batch to fill); send (a round is one batch; its requests run in parallel
// on the shared HttpClient, and up to StreamOptions::max_rounds_in_flight rounds are in flight
// at once, so the next round is encoded and sent while earlier ones wait for their answers);
// apply the destination's per-event Outcome as each response arrives:
//   delivered → final;
//   retry     → again after exponential backoff with full jitter (never before Retry-After),
//               until retry_window has passed since the first attempt → dead letter;
//   rejected  → dead letter with the reason and an excerpt of the response.
// A 413 (payload too large) to a request of several events is a verdict on the request, not on
// its events: the framework encodes each half again and sends the halves at once (recursively);
// a single event answered 413 is classified as usual (rejected → dead letter).
// The cursor is committed only up to the first event without a final outcome (delivered,
// skipped by routing, or durably dead-lettered), so after a crash every event is delivered at
// least once; duplicates are bounded by the window (StreamOptions::window_events).
// With ordering: per_user, an event in flight or waiting for a retry holds back that user's
// later events only (the user is userId, else anonymousId), and a batch carries at most one
// event per user; rounds in flight never carry two events of one user.
//
// Threads: Start() spawns the stream thread; Stop() (from the owner's thread) lets the rounds in
// flight finish (for at most stop_grace_ms), commits the cursor and joins. Responses arrive on
// the HttpClient's threads, which only queue them for the stream thread (a mailbox shared with
// the callbacks, so an abandoned request may complete after the stream is gone). All time comes
// from StreamOptions::clock, so tests drive retries with a FakeClock in milliseconds.
//
// Waking: the stream thread sleeps on its mailbox's condition variable, which three things
// signal: a response (the HttpClient's callback), new durable records (a data listener
// registered with the log), and Stop(). Otherwise it wakes only when something is due (a batch's
// max_wait, a retry, the end of a failure hold) or after max_idle_wait_ms — never by polling.
//
// Credentials refused: a response whose events are all retries and at least one of them an
// Outcome::AuthFailure holds the destination like any failure, but for at least
// auth_hold_min_ms (doubling up to auth_hold_max_ms), and marks it unhealthy (credentials_refused,
// with the reason, until a response delivers something). Events still dead-letter at the end of
// their retry window, as for any retry.
//
// Failure backoff: an in-process delivery (DeliverInProcess: the warehouse) is a response like
// any other: one whose every event is to be retried starts or lengthens the failure hold, so a
// failing load is retried on the backoff schedule, not once per event coming due.
//
// Drain once: Open() makes a stream without a thread; DrainOnce() then delivers, on the caller's
// thread and through the same steps, everything up to the log's end as it is at the call
// (`switchyard warehouse sync`).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/backoff.h"
#include "base/clock.h"
#include "base/metrics.h"
#include "config/config.h"
#include "delivery/dead_letter_store.h"
#include "delivery/destination.h"
#include "delivery/routing.h"
#include "delivery/transform.h"
#include "http/client.h"
#include "log/event_log.h"
#include "observe/delivery_stats.h"
#include "observe/live_feed.h"

namespace sy::delivery {

struct StreamOptions {
  config::DestinationConfig config;
  std::string display_name;                  // of the destination type, for integrations
  std::unique_ptr<Destination> destination;  // owned by the stream
  log::EventLog* log = nullptr;              // outlives the stream
  http::HttpClient* http = nullptr;          // outlives the stream; unused by in-process ones
  DeadLetterStore* dead_letters = nullptr;   // outlives the stream
  Clock* clock = nullptr;                    // default SystemClock
  MetricsRegistry* metrics = nullptr;        // required
  // What the console watches (optional: null when nobody can): each event's outcome goes to the
  // live feed (sampled by it) and to the per-minute figures.
  observe::LiveFeed* live = nullptr;              // outlives the stream
  std::shared_ptr<observe::DeliveryStats> stats;  // shared with the admin API
  // Set when whoever wrote the log made every event's `integrations` object switch this
  // destination on (replay rewrites it to {"All": false, "<name>": true}): routing skips that
  // rule (a parse per event) and applies only the sources and filters.
  bool integrations_preset = false;
  // User functions to run on each routed event before batching (docs/functions.md); null: none,
  // and the stream's path has no engine on it. Called on the stream's thread only.
  std::unique_ptr<EventTransform> transform;
  BackoffPolicy backoff;
  uint64_t backoff_seed = 0;  // 0: random
  // The in-flight window: how far reading may run ahead of the first event without a final
  // outcome (the commit point), in events. Bounds memory, the duplicates a crash can cause
  // (everything past the commit point is sent again), and how far a per-user hold-back or a
  // retrying event lets the others run ahead.
  size_t window_events = 10'000;
  // On Stop(), how long a round in flight may still wait for its responses; past it the round
  // is abandoned uncommitted (its events are sent again after restart), so a hung receiver
  // cannot hold shutdown for the whole request timeout.
  int64_t stop_grace_ms = 5'000;
  // Rounds (batches) sent and not yet fully answered, per stream. More than one hides the
  // receiver's round trip: the next round is read, routed and encoded meanwhile.
  size_t max_rounds_in_flight = 8;
  // A new round starts only while fewer requests than this are outstanding, so destinations
  // sending one event per request do not open rounds × batch connections to the receiver.
  size_t max_requests_in_flight = 100;
  // The cursor is persisted at most this often (each commit costs the log two fsyncs), and at
  // once when the commit point has moved by half the window, and on Stop(). After a crash the
  // events delivered since the last commit are sent again: duplicates stay within 1.5 windows.
  int64_t commit_interval_ms = 100;
  // Longest real-time sleep between checks of the clock (FakeClock tests use ~1 ms).
  int64_t max_idle_wait_ms = 200;
  // A receiver refusing the credentials (Outcome::AuthFailure) holds the destination for at
  // least auth_hold_min_ms, doubling per refused probe up to auth_hold_max_ms: a revoked key is
  // an operator's problem, not a transient one, and hammering the vendor with it helps nobody.
  int64_t auth_hold_min_ms = 30'000;
  int64_t auth_hold_max_ms = 600'000;
};

// One delivery of the stream: an event's log offset and, when a function fanned the event out
// into several events, which of them (0 otherwise). Ordered by offset first, so the first
// pending key's offset is the commit point: the cursor passes an offset only when every
// delivery made from it has a final outcome.
struct DeliveryKey {
  Offset offset;
  uint32_t part = 0;
  auto operator<=>(const DeliveryKey&) const = default;
};

// The cursor name of a destination: "dest.<name>".
std::string CursorName(const std::string& destination_name);

class DestinationStream {
 public:
  static Result<std::unique_ptr<DestinationStream>> Start(StreamOptions options);
  // A stream without its thread, for DrainOnce.
  static Result<std::unique_ptr<DestinationStream>> Open(StreamOptions options);
  ~DestinationStream();  // calls Stop()

  void Stop();

  // Delivers every event up to the log's end as it is now, on the caller's thread, then commits
  // the cursor and returns — without waiting for batches to fill (max_wait does not apply) and
  // without retrying: the first outcome `retry` ends the drain with kUnavailable and its reason,
  // the cursor committed up to the first event without a final outcome (the rest is delivered
  // again by the next drain or stream). A dead-letter append that fails ends it too. Only on a
  // stream made by Open().
  struct DrainReport {
    uint64_t delivered = 0;
    uint64_t dead_lettered = 0;  // rejected events, now in the dead-letter store
    uint64_t skipped = 0;        // not for this destination (routing, or skipped by the encoder)
  };
  Result<DrainReport> DrainOnce();

  const std::string& name() const { return options_.config.name; }

  // Counters (also exported to /metrics), for tests and status.
  uint64_t delivered() const { return delivered_.load(); }
  uint64_t retried() const { return retried_.load(); }
  uint64_t rejected() const { return rejected_.load(); }
  uint64_t dead_lettered() const { return dead_lettered_.load(); }
  uint64_t skipped() const { return skipped_.load(); }
  Offset committed() const { return Offset(committed_.load()); }
  size_t in_flight() const { return in_flight_.load(); }
  // Turns of the stream thread's loop so far: how often it woke (tests show it does not poll).
  uint64_t wakeups() const { return wakeups_.load(); }

  // Health as an operator sees it. `failing`: the last response retried every event it carried
  // (the failure hold is on); `credentials_refused`: the last such response included an
  // AuthFailure (`reason` is its reason). Both clear when a response delivers something.
  struct Health {
    bool failing = false;
    bool credentials_refused = false;
    std::string reason;
  };
  Health health() const;

 private:
  struct Pending {
    DeliveryKey key;
    RoutedEvent event;
    std::string user;  // per_user ordering key ("" = none)
    int attempts = 0;
    int64_t first_seen_ms = 0;     // when read from the log (batching max_wait)
    int64_t first_attempt_ms = 0;  // for retry_window
    int64_t next_attempt_ms = 0;
    bool in_flight = false;  // part of a round waiting for its response
    int last_status = 0;
    std::string last_reason;
    std::string last_response;
    // Set when the outcome is final but the dead-letter append failed: retry the append only.
    bool dead_letter_pending = false;
    // A function asked to retry (RetryError): `event` is the routed event before functions; when
    // due, the functions run on it again (RetryTransforms) instead of a send.
    bool transform_pending = false;
    // `event` is the routed event before functions because a function failed on it: its dead
    // letter says so (DeadLetter::before_functions), so a redrive runs the functions again.
    bool before_functions = false;
  };

  // A batch sent and not yet fully answered. `events` were moved out of pending_ and handed to
  // Encode (kept for splitting a request answered 413); each goes back to pending_ when its
  // request is answered. Requests keep everything but their body, which went to the client.
  struct Round {
    std::vector<DeliveryKey> offsets;  // index in `events` → its pending_ key
    std::vector<RoutedEvent> events;
    std::vector<HttpRequest> requests;  // events[] index into `events`
    size_t outstanding = 0;             // requests without a response yet
  };

  // Where the HttpClient's callbacks leave responses for the stream thread. Shared with the
  // callbacks (they may run after the stream is gone when Stop() abandoned a request).
  struct Mailbox {
    struct Response {
      uint64_t round = 0;
      size_t request = 0;
      HttpResponse response;
    };
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Response> responses;
    bool stopping = false;
    bool data = false;  // the log published records since the stream last looked
  };

  explicit DestinationStream(StreamOptions options);
  void Run();
  // Reads up to the window's room (and, draining, not past drain_end_).
  void Fill();
  size_t WindowUsed() const;  // cursor position − first pending offset
  std::vector<DeliveryKey> PickBatch(int64_t now, int64_t* wake_at);
  bool CanStartRound() const;  // under both in-flight limits
  // Starts a round with `batch`: encodes it into requests within the destination's limits (or
  // delivers it in process) and dispatches the requests; sends nothing itself (Dispatch does).
  void StartRound(const std::vector<DeliveryKey>& batch);
  // Hands `requests` of round `id` to the HttpClient.
  void Dispatch(uint64_t id, Round& round, std::vector<HttpRequest> requests);
  // Applies the responses in the mailbox (waiting up to `wait_ms` for one if there is none, or,
  // with `wake_on_data`, for new records in the log).
  void DrainResponses(int64_t wait_ms, bool wake_on_data = false);
  void OnResponse(uint64_t id, size_t request, HttpResponse response);
  // Moves event `i` of `round` back into its pending_ entry (no longer in flight).
  void ReturnEvent(Round& round, size_t i);
  void Apply(DeliveryKey key, const Outcome& outcome, int status, const std::string& response);
  // Runs the functions on `events` (routed, not yet pending) and makes pending entries of what
  // they return: one per output event (parts of one offset), a queued dead letter for an error,
  // an entry waiting to run them again for a retry. `attempts`/`first_attempt_ms` carry over
  // from an earlier RetryError.
  void TransformInto(std::vector<RoutedEvent> events, int64_t now, int attempts = 0,
                     int64_t first_attempt_ms = 0);
  // Runs the functions again on the entries whose RetryError delay has passed.
  void RetryTransforms(const std::vector<DeliveryKey>& due, int64_t now);
  void AddPending(DeliveryKey key, RoutedEvent event, int64_t now);
  // Queues `p` for the dead-letter store; FlushDeadLetters writes the queue with one fdatasync
  // and only then makes those events final (erased, so the cursor may pass them).
  void QueueDeadLetter(Pending& p, const std::string& reason);
  void FlushDeadLetters();
  // Tells the live feed (if anyone watches this destination) and the figures what became of
  // `event`.
  // A pending event the encoder skipped (EncodedBatch::skipped): final, counted as filtered.
  void SkipEncoded(DeliveryKey offset, const std::string& reason);
  void Observe(observe::Stage stage, const RoutedEvent& event, std::string_view detail,
               int http_status);
  void Observe(observe::Stage stage, std::string_view source, std::string_view message_id,
               std::string_view payload, std::string_view detail, int http_status);
  // Persists the commit point if it moved and (unless `force`) the interval has passed.
  void CommitProgress(bool force = false);
  void UpdateGauges();
  // Scheduling (retries, holds, the retry window) runs on the monotonic clock, so a step of the
  // wall clock neither rushes a retry past a receiver's Retry-After nor stalls one.
  int64_t NowMs() const { return options_.clock->MonotonicNanos() / 1'000'000; }
  // The wall clock, for what is compared with receivedAt or shown per minute (stats, live view).
  int64_t WallMs() const { return options_.clock->Now().value(); }

  StreamOptions options_;
  EventRouter router_;
  Backoff backoff_;
  std::unique_ptr<log::LogCursor> cursor_;
  std::map<DeliveryKey, Pending> pending_;      // stream thread only
  std::vector<DeliveryKey> dead_letter_queue_;  // stream thread only
  std::map<uint64_t, Round> rounds_;            // stream thread only
  uint64_t next_round_ = 1;
  size_t requests_in_flight_ = 0;  // over all rounds
  // A failing destination (a response whose every event is to be retried: 5xx, 429, timeouts,
  // refused connections) is probed, not flooded: no round starts before hold_until_ms_ (the
  // backoff of the failure streak, never past the oldest event's retry window), and then one
  // round at a time until a response delivers something. Without it every event coming due on
  // its own jittered schedule would make a request, and a destination answering 503 to
  // everything would cost as much as a healthy one.
  int failure_streak_ = 0;
  int64_t hold_until_ms_ = 0;
  uint64_t hold_from_round_ = 0;  // responses of rounds older than this do not lengthen the hold
  // `auth_failure`: the reason of an AuthFailure among the response's outcomes ("" if none).
  void NoteResponse(uint64_t round, bool any_delivered, bool all_retry,
                    std::optional<int64_t> retry_after_ms, const std::string& auth_failure);
  int auth_streak_ = 0;  // refused probes in a row (the auth hold doubles with it)
  mutable std::mutex health_mu_;
  Health health_;  // guarded by health_mu_ (read by other threads through health())
  Offset last_commit_;
  std::chrono::steady_clock::time_point last_commit_time_{};

  std::shared_ptr<Mailbox> mailbox_ = std::make_shared<Mailbox>();
  uint64_t data_listener_ = 0;  // the log's listener id (0: none)
  // DrainOnce: reading stops at drain_end_; the first retry (or failed dead-letter append) is
  // kept in drain_error_ and ends the drain.
  bool draining_ = false;
  Offset drain_end_;
  Status drain_error_;
  std::atomic<bool> stop_requested_{false};
  std::thread thread_;

  std::atomic<uint64_t> delivered_{0}, retried_{0}, rejected_{0}, dead_lettered_{0}, skipped_{0},
      committed_{0};
  std::atomic<size_t> in_flight_{0};
  std::atomic<uint64_t> wakeups_{0};

  Counter* m_delivered_ = nullptr;
  Counter* m_retried_ = nullptr;
  Counter* m_rejected_ = nullptr;
  Counter* m_dead_lettered_ = nullptr;
  Counter* m_skipped_ = nullptr;
  Counter* m_plan_blocked_ = nullptr;
  Counter* m_consent_denied_ = nullptr;
  Gauge* m_in_flight_ = nullptr;
  Gauge* m_lag_seconds_ = nullptr;
  Gauge* m_credentials_refused_ = nullptr;  // switchyard_consumer_lag_seconds{cursor="dest.<name>"}
  Histogram* m_latency_ = nullptr;
};

}  // namespace sy::delivery
