// LiveFeed: what the console's live view shows — each event as a source receives it, and each
// delivery attempt's outcome per destination — sampled so that watching never slows the path
// being watched.
//
// Publishers (ingest's append callback, a destination stream's outcome step) ask Admit() how many
// of their records anyone wants right now, and build and Publish() only that many. When nobody
// watches, Admit() is one relaxed atomic load and returns 0: the hot paths copy nothing.
//
// Each subscription has its own rate (records per second, a token bucket refilled from the
// publisher's clock) and a bounded queue; what its rate or queue cannot take is counted as
// sampled out, never waited for. A subscriber reads with Take() (blocking up to a timeout) or
// registers a wake-up callback (an async HTTP writer posts to its strand from it).
//
// Scope: one process. In cluster mode each node has its own feed; the admin node shows its own
// node's traffic (docs/admin-api.md).
//
// Thread safety: every method is thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace sy::observe {

// What happened to the event at this point.
enum class Stage {
  kReceived,      // stored by ingest (acknowledged to the client)
  kRejected,      // refused by ingest (validation), with the reason
  kDelivered,     // the destination accepted it
  kRetrying,      // an attempt failed and will be retried (detail: why)
  kDeadLettered,  // given up: in the destination's dead-letter queue (detail: why)
  kFiltered,      // not sent to the destination by a rule (detail: the rule)
};
std::string_view StageName(Stage stage);

struct LiveRecord {
  int64_t at_ms = 0;  // wall clock, ms since the epoch
  Stage stage = Stage::kReceived;
  std::string source;
  std::string destination;  // empty for ingest stages
  std::string message_id;
  std::string type;     // track, identify, …
  std::string event;    // a track's event name
  std::string detail;   // a reason, a rule, an HTTP status line
  int http_status = 0;  // of the delivery attempt, when there was one
  std::string payload;  // the event's JSON (may be cut at kMaxPayloadBytes; see truncated)
  bool truncated = false;

  // Payloads beyond this are cut: the live view is a debugger, not an export.
  static constexpr size_t kMaxPayloadBytes = 16 * 1024;
  void SetPayload(std::string_view json);

  // A record about one stored event: its payload (cut as above), and `type` and `event` read
  // from the payload's top level (the payload is JSON that ingest validated).
  static LiveRecord Of(Stage stage, int64_t at_ms, std::string_view source,
                       std::string_view message_id, std::string_view payload);
};

// Which stream: a source's received events, or a destination's attempts.
enum class TopicKind { kSource, kDestination };

class LiveFeed {
 public:
  class Subscription {
   public:
    // Moves up to `max` queued records into `out` (appending), waiting up to `wait_ms` for the
    // first when none is queued. Returns how many were moved.
    size_t Take(std::vector<LiveRecord>* out, size_t max, int64_t wait_ms);
    // Records this subscription did not get because of its rate or queue since it began.
    uint64_t sampled_out() const { return sampled_out_.load(std::memory_order_relaxed); }
    double max_per_second() const { return rate_; }
    // Called (from a publisher's thread, without locks held) after records were queued while
    // the queue was empty. Must not block; e.g. post a write to an I/O thread.
    void SetWakeup(std::function<void()> wakeup);
    // Wakes a Take() that is waiting and makes every later Take() return at once (0 records).
    void Close();

   private:
    friend class LiveFeed;
    Subscription(TopicKind kind, std::string name, double rate, size_t queue_cap);
    // How many of `n` records the token bucket admits at `now_ms`. Called under the feed's mutex.
    size_t Admit(size_t n, int64_t now_ms);
    void Push(const LiveRecord& record);

    const TopicKind kind_;
    const std::string name_;
    const double rate_;
    const size_t queue_cap_;
    double tokens_;
    int64_t last_refill_ms_ = -1;
    size_t admitted_pending_ = 0;  // admitted by Admit(), not yet published
    std::atomic<uint64_t> sampled_out_{0};
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<LiveRecord> queue_;
    std::function<void()> wakeup_;
    bool closed_ = false;
  };

  LiveFeed() = default;
  LiveFeed(const LiveFeed&) = delete;
  LiveFeed& operator=(const LiveFeed&) = delete;

  // A subscription to one source or destination, at most `max_per_second` records per second
  // (burst: one second's worth), holding at most `queue_cap` undelivered records. It ends when
  // the returned pointer is released (or Unsubscribe).
  std::shared_ptr<Subscription> Subscribe(TopicKind kind, std::string_view name,
                                          double max_per_second, size_t queue_cap = 1000);
  void Unsubscribe(const std::shared_ptr<Subscription>& subscription);

  // Publisher side. How many of `n` records about `name` at least one subscriber wants now
  // (the maximum over its subscribers); 0 — after one atomic load — when nobody watches.
  size_t Admit(TopicKind kind, std::string_view name, size_t n, int64_t now_ms);
  // Hands `records` (at most what Admit returned) to the subscribers that admitted them.
  void Publish(TopicKind kind, std::string_view name, std::vector<LiveRecord> records);

  size_t subscribers() const { return count_.load(std::memory_order_relaxed); }

 private:
  std::atomic<size_t> count_{0};
  mutable std::mutex mu_;
  std::vector<std::weak_ptr<Subscription>> subs_;
};

}  // namespace sy::observe
