#include "admin/live_streams.h"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>

#include "base/thread_name.h"
#include "observe/render.h"

namespace sy::admin {

namespace json = boost::json;

namespace {

// How often the pump looks at every stream even when no publisher woke it: a client that left
// frees its slot within this, and heartbeats are due on this grid.
constexpr int kPollMs = 100;
// Records moved from one subscription per look: a bound on one stream's turn.
constexpr size_t kTakeMax = 256;

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

LiveStreams::LiveStreams(LiveStreamsOptions options) : options_(std::move(options)) {
  pump_ = std::thread([this] { PumpLoop(); });
}

LiveStreams::~LiveStreams() {
  Stop();
}

LiveStreams::OpenResult LiveStreams::Open(observe::TopicKind kind, const std::string& name,
                                          bool show_payloads, http::Response head,
                                          const http::Responder& respond) {
  std::lock_guard lock(mu_);
  if (stopping_ || entries_.size() >= options_.max_streams) return OpenResult::kFull;
  std::shared_ptr<http::Stream> stream = respond.StartStream(std::move(head), options_.queue_bytes);
  if (!stream) return OpenResult::kNotStreamable;
  auto e = std::make_shared<Entry>();
  e->stream = std::move(stream);
  e->show_payloads = show_payloads;
  e->last_write_ms = SteadyMs();
  json::object topic{{"kind", kind == observe::TopicKind::kSource ? "source" : "destination"},
                     {"name", name}};
  json::object hello{{"topic", std::move(topic)},
                     {"max_per_second", options_.max_per_second},
                     {"payloads", show_payloads},
                     {"heartbeat_seconds", options_.heartbeat_ms / 1000}};
  e->stream->Write(observe::SseFrame("hello", json::serialize(hello)));
  e->subscription =
      options_.feed->Subscribe(kind, name, options_.max_per_second, options_.queue_records);
  e->subscription->SetWakeup([w = waker_] {
    {
      std::lock_guard wl(w->mu);
      w->woken = true;
    }
    w->cv.notify_one();
  });
  entries_.push_back(std::move(e));
  return OpenResult::kStarted;
}

size_t LiveStreams::open_streams() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

void LiveStreams::Stop() {
  std::vector<std::shared_ptr<Entry>> left;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  {
    std::lock_guard wl(waker_->mu);
    waker_->woken = true;
  }
  waker_->cv.notify_one();
  if (pump_.joinable()) pump_.join();
  {
    std::lock_guard lock(mu_);
    left.swap(entries_);
  }
  for (auto& e : left) {
    options_.feed->Unsubscribe(e->subscription);
    e->stream->End();
  }
}

void LiveStreams::PumpLoop() {
  SetThreadName("sy-admin-live");
  std::vector<std::shared_ptr<Entry>> turn, ended;
  for (;;) {
    {
      std::unique_lock wl(waker_->mu);
      waker_->cv.wait_for(wl, std::chrono::milliseconds(kPollMs), [&] { return waker_->woken; });
      waker_->woken = false;
    }
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      turn = entries_;
    }
    const int64_t now = SteadyMs();
    ended.clear();
    for (auto& e : turn)
      if (!PumpOne(*e, now)) ended.push_back(e);
    turn.clear();
    if (ended.empty()) continue;
    {
      std::lock_guard lock(mu_);
      std::erase_if(entries_, [&](const std::shared_ptr<Entry>& e) {
        return std::find(ended.begin(), ended.end(), e) != ended.end();
      });
    }
    for (auto& e : ended) {
      options_.feed->Unsubscribe(e->subscription);
      e->stream->End();
    }
  }
}

bool LiveStreams::PumpOne(Entry& e, int64_t now_ms) {
  using WR = http::Stream::WriteResult;
  if (!e.stream->open()) return false;
  thread_local std::vector<observe::LiveRecord> records;
  records.clear();
  e.subscription->Take(&records, kTakeMax, 0);
  for (const observe::LiveRecord& r : records) {
    WR w =
        e.stream->Write(observe::SseFrame("record", observe::LiveRecordJson(r, e.show_payloads)));
    if (w == WR::kClosed) return false;
    if (w == WR::kFull) {
      ++e.write_dropped;
    } else {
      e.last_write_ms = now_ms;
    }
  }
  // Every loss since the last notice — sampled out by the rate or the subscription's queue, or
  // refused by the response's queue — is said in the stream.
  const uint64_t lost = e.subscription->sampled_out() + e.write_dropped;
  if (lost > e.reported) {
    json::object d{{"dropped", lost - e.reported}, {"total", lost}};
    WR w = e.stream->Write(observe::SseFrame("dropped", json::serialize(d)));
    if (w == WR::kClosed) return false;
    if (w == WR::kQueued) {
      e.reported = lost;
      e.last_write_ms = now_ms;
    }
  }
  if (now_ms - e.last_write_ms >= options_.heartbeat_ms) {
    WR w = e.stream->Write(": heartbeat\n\n");
    if (w == WR::kClosed) return false;
    if (w == WR::kQueued) e.last_write_ms = now_ms;
  }
  return true;
}

}  // namespace sy::admin
