#include "observe/live_feed.h"

#include <algorithm>

#include "event/raw_json.h"

namespace sy::observe {

std::string_view StageName(Stage stage) {
  switch (stage) {
    case Stage::kReceived:
      return "received";
    case Stage::kRejected:
      return "rejected";
    case Stage::kDelivered:
      return "delivered";
    case Stage::kRetrying:
      return "retrying";
    case Stage::kDeadLettered:
      return "dead_lettered";
    case Stage::kFiltered:
      return "filtered";
  }
  return "unknown";
}

void LiveRecord::SetPayload(std::string_view json) {
  truncated = json.size() > kMaxPayloadBytes;
  payload.assign(json.substr(0, kMaxPayloadBytes));
}

LiveRecord LiveRecord::Of(Stage stage, int64_t at_ms, std::string_view source,
                          std::string_view message_id, std::string_view payload) {
  LiveRecord r;
  r.at_ms = at_ms;
  r.stage = stage;
  r.source.assign(source);
  r.message_id.assign(message_id);
  r.SetPayload(payload);
  thread_local std::vector<event::RawMember> members;
  members.clear();
  if (event::SplitObject(payload, &members)) {
    std::string_view text;
    for (const auto& m : members) {
      if (m.key == "type" && event::PlainString(m.value, &text))
        r.type.assign(text);
      else if (m.key == "event" && event::PlainString(m.value, &text))
        r.event.assign(text);
    }
  }
  return r;
}

LiveFeed::Subscription::Subscription(TopicKind kind, std::string name, double rate,
                                     size_t queue_cap)
    : kind_(kind),
      name_(std::move(name)),
      rate_(rate > 0 ? rate : 1),
      queue_cap_(std::max<size_t>(queue_cap, 1)),
      tokens_(rate_) {}

size_t LiveFeed::Subscription::Admit(size_t n, int64_t now_ms) {
  if (last_refill_ms_ >= 0 && now_ms > last_refill_ms_)
    tokens_ =
        std::min(rate_, tokens_ + rate_ * static_cast<double>(now_ms - last_refill_ms_) / 1e3);
  if (last_refill_ms_ < 0 || now_ms > last_refill_ms_) last_refill_ms_ = now_ms;
  size_t admitted = std::min(n, static_cast<size_t>(tokens_));
  tokens_ -= static_cast<double>(admitted);
  if (admitted < n) sampled_out_.fetch_add(n - admitted, std::memory_order_relaxed);
  admitted_pending_ += admitted;
  return admitted;
}

void LiveFeed::Subscription::Push(const LiveRecord& record) {
  std::function<void()> wake;
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    if (queue_.size() >= queue_cap_) {
      // The reader is behind: the oldest record goes, the newest is what a debugger wants.
      queue_.pop_front();
      sampled_out_.fetch_add(1, std::memory_order_relaxed);
    }
    const bool was_empty = queue_.empty();
    queue_.push_back(record);
    if (was_empty) wake = wakeup_;
  }
  cv_.notify_one();
  if (wake) wake();
}

size_t LiveFeed::Subscription::Take(std::vector<LiveRecord>* out, size_t max, int64_t wait_ms) {
  std::unique_lock lock(mu_);
  if (queue_.empty() && !closed_ && wait_ms > 0) {
    cv_.wait_for(lock, std::chrono::milliseconds(wait_ms),
                 [&] { return !queue_.empty() || closed_; });
  }
  size_t moved = 0;
  while (moved < max && !queue_.empty()) {
    out->push_back(std::move(queue_.front()));
    queue_.pop_front();
    ++moved;
  }
  return moved;
}

void LiveFeed::Subscription::SetWakeup(std::function<void()> wakeup) {
  std::lock_guard lock(mu_);
  wakeup_ = std::move(wakeup);
}

void LiveFeed::Subscription::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    queue_.clear();
  }
  cv_.notify_all();
}

std::shared_ptr<LiveFeed::Subscription> LiveFeed::Subscribe(TopicKind kind, std::string_view name,
                                                            double max_per_second,
                                                            size_t queue_cap) {
  std::shared_ptr<Subscription> sub(
      new Subscription(kind, std::string(name), max_per_second, queue_cap));
  std::lock_guard lock(mu_);
  std::erase_if(subs_, [](const std::weak_ptr<Subscription>& w) { return w.expired(); });
  subs_.push_back(sub);
  count_.store(subs_.size(), std::memory_order_relaxed);
  return sub;
}

void LiveFeed::Unsubscribe(const std::shared_ptr<Subscription>& subscription) {
  if (!subscription) return;
  subscription->Close();
  std::lock_guard lock(mu_);
  std::erase_if(subs_, [&](const std::weak_ptr<Subscription>& w) {
    auto s = w.lock();
    return !s || s == subscription;
  });
  count_.store(subs_.size(), std::memory_order_relaxed);
}

size_t LiveFeed::Admit(TopicKind kind, std::string_view name, size_t n, int64_t now_ms) {
  if (n == 0 || count_.load(std::memory_order_relaxed) == 0) return 0;
  std::lock_guard lock(mu_);
  size_t most = 0;
  bool expired = false;
  for (const auto& w : subs_) {
    auto s = w.lock();
    if (!s) {
      expired = true;
      continue;
    }
    if (s->kind_ == kind && s->name_ == name) most = std::max(most, s->Admit(n, now_ms));
  }
  if (expired) {
    std::erase_if(subs_, [](const std::weak_ptr<Subscription>& w) { return w.expired(); });
    count_.store(subs_.size(), std::memory_order_relaxed);
  }
  return most;
}

void LiveFeed::Publish(TopicKind kind, std::string_view name, std::vector<LiveRecord> records) {
  if (records.empty()) return;
  // Who gets how many, decided under the feed's mutex; the queues are filled outside it.
  std::vector<std::pair<std::shared_ptr<Subscription>, size_t>> targets;
  {
    std::lock_guard lock(mu_);
    for (const auto& w : subs_) {
      auto s = w.lock();
      if (!s || s->kind_ != kind || s->name_ != name || s->admitted_pending_ == 0) continue;
      size_t take = std::min(s->admitted_pending_, records.size());
      s->admitted_pending_ -= take;
      targets.emplace_back(std::move(s), take);
    }
  }
  for (auto& [sub, take] : targets) {
    for (size_t i = 0; i < take; ++i)
      sub->Push(records[i]);
  }
}

}  // namespace sy::observe
