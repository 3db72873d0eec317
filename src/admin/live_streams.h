// LiveStreams: the live view's streams (GET /api/v1/live, docs/admin-api.md). Each open stream
// is one observe::LiveFeed subscription and one streamed HTTP response (http::Stream); a pump
// thread (`sy-admin-live`) moves the subscription's records into its response as Server-Sent
// Events.
//
// Why a thread of its own: the feed's publishers (ingest, the destination streams) must never
// wait for a watcher, so they only queue records in the subscription (bounded, sampled at the
// stream's rate) and wake the pump; rendering JSON and writing happen here. A reader too slow for
// its stream fills the response's bounded queue; what does not fit is dropped and counted, and
// every loss (the rate's and the reader's) is said in the stream as a `dropped` event.
//
// Limits: at most `max_streams` open at once (Open answers kFull past it); each at most
// `max_per_second` records a second; a `: heartbeat` comment every `heartbeat_ms` when nothing
// else was written. Thread-safe. Stop (or the destructor) ends every stream.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/server.h"
#include "observe/live_feed.h"

namespace sy::admin {

struct LiveStreamsOptions {
  observe::LiveFeed* feed = nullptr;  // required
  size_t max_streams = 16;            // config admin.max_live_streams
  double max_per_second = 20;         // config admin.live_rate
  size_t queue_records = 256;         // per subscription, waiting for the pump
  size_t queue_bytes = 256 * 1024;    // per response, waiting for the client
  int heartbeat_ms = 15'000;
};

class LiveStreams {
 public:
  explicit LiveStreams(LiveStreamsOptions options);
  ~LiveStreams();  // Stop()

  enum class OpenResult { kStarted, kFull, kNotStreamable };
  // Starts a stream for `respond`'s request: subscribes, answers `head` as a streamed response
  // and writes the `hello` event. kFull: `max_streams` are open (nothing was answered);
  // kNotStreamable: `respond` cannot stream (an in-process responder; `head` was sent whole).
  OpenResult Open(observe::TopicKind kind, const std::string& name, bool show_payloads,
                  http::Response head, const http::Responder& respond);

  size_t open_streams() const;
  double max_per_second() const { return options_.max_per_second; }
  // Ends every stream and the pump; later Opens answer kFull.
  void Stop();

 private:
  struct Entry {
    std::shared_ptr<observe::LiveFeed::Subscription> subscription;
    std::shared_ptr<http::Stream> stream;
    bool show_payloads = false;
    uint64_t write_dropped = 0;  // records the response's queue refused
    uint64_t reported = 0;       // losses already said in a `dropped` event
    int64_t last_write_ms = 0;   // steady clock
  };
  void PumpLoop();
  // Moves what `e`'s subscription holds into its response; false when the stream has ended.
  bool PumpOne(Entry& e, int64_t now_ms);

  // Publishers wake the pump through this (held by the subscriptions' wake-up callbacks, so a
  // callback running late never touches a LiveStreams that is gone).
  struct Waker {
    std::mutex mu;
    std::condition_variable cv;
    bool woken = false;  // guarded by mu
  };

  const LiveStreamsOptions options_;
  const std::shared_ptr<Waker> waker_ = std::make_shared<Waker>();
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Entry>> entries_;  // guarded by mu_
  bool stopping_ = false;                        // guarded by mu_
  std::thread pump_;
};

}  // namespace sy::admin
