#include "delivery/destination_stream.h"

#include <algorithm>
#include <optional>

#include "base/logging.h"
#include "base/thread_name.h"

namespace sy::delivery {
namespace {

std::shared_ptr<spdlog::logger> Logger() {
  static auto l = ModuleLogger("delivery");
  return l;
}

std::string Excerpt(const std::string& body) {
  return body.substr(0, DeadLetterStore::kMaxResponseExcerpt);
}

}  // namespace

std::string CursorName(const std::string& destination_name) {
  return "dest." + destination_name;
}

DestinationStream::DestinationStream(StreamOptions options)
    : options_(std::move(options)),
      router_(options_.config, options_.display_name, options_.integrations_preset),
      backoff_(options_.backoff,
               options_.backoff_seed ? options_.backoff_seed : std::random_device{}()) {}

Result<std::unique_ptr<DestinationStream>> DestinationStream::Start(StreamOptions options) {
  SY_ASSIGN_OR_RETURN(auto s, Open(std::move(options)));
  // New durable records wake the stream thread (see the header, "Waking").
  s->data_listener_ = s->options_.log->AddDataListener([mailbox = s->mailbox_] {
    {
      std::lock_guard lock(mailbox->mu);
      mailbox->data = true;
    }
    mailbox->cv.notify_all();
  });
  s->thread_ = std::thread([p = s.get()] {
    SetThreadName("sy-dest-" + p->name());  // cut to 15 characters by the kernel
    p->Run();
  });
  return s;
}

Result<std::unique_ptr<DestinationStream>> DestinationStream::Open(StreamOptions options) {
  if (!options.log || !options.destination || !options.dead_letters || !options.metrics) {
    return InvalidArgument(
        "stream needs a log, a destination, a dead-letter store and a metrics registry");
  }
  if (!options.clock) options.clock = SystemClock::Get();
  // Every stream — the server's and replay's — batches as the destination says it must and
  // lets it export its own metrics.
  if (auto batch = options.destination->BatchOverride()) options.config.batch = *batch;
  options.destination->Attach(options.config.name, options.metrics);
  std::unique_ptr<DestinationStream> s(new DestinationStream(std::move(options)));
  SY_ASSIGN_OR_RETURN(s->cursor_, s->options_.log->OpenCursor(CursorName(s->name())));
  s->last_commit_ = s->cursor_->committed();
  s->committed_ = s->last_commit_.value();
  MetricsRegistry* m = s->options_.metrics;
  Labels l = {{"destination", s->name()}};
  s->m_delivered_ =
      m->GetCounter("switchyard_delivery_delivered_total", "Events delivered, per destination.", l);
  s->m_retried_ = m->GetCounter("switchyard_delivery_retried_total",
                                "Event attempts that will be retried, per destination.", l);
  s->m_rejected_ = m->GetCounter("switchyard_delivery_rejected_total",
                                 "Events the destination rejected (not retried).", l);
  s->m_dead_lettered_ =
      m->GetCounter("switchyard_delivery_dead_lettered_total",
                    "Events written to the dead-letter store (rejected or out of retries).", l);
  s->m_skipped_ = m->GetCounter(
      "switchyard_delivery_skipped_total",
      "Events not for this destination (sources, integrations, "
      "drop_events, tracking plans, consent, or a call the vendor has no concept for).",
      l);
  s->m_plan_blocked_ =
      m->GetCounter("switchyard_delivery_plan_blocked_total",
                    "Events skipped because a tracking plan blocked them (of skipped).", l);
  s->m_consent_denied_ = m->GetCounter(
      "switchyard_delivery_consent_filtered_total",
      "Events skipped because their consent preferences do not grant the destination's "
      "consent_categories (of skipped).",
      l);
  s->m_in_flight_ =
      m->GetGauge("switchyard_delivery_in_flight", "Events read but without a final outcome.", l);
  // Lag in events comes from the log (switchyard_consumer_lag_events, by cursor).
  s->m_lag_seconds_ = log::ConsumerLagSeconds(m)->With({CursorName(s->name())});
  s->m_credentials_refused_ = m->GetGauge(
      "switchyard_delivery_credentials_refused",
      "1 while the destination's receiver refuses its credentials (401/403: held and probed "
      "slowly), else 0.",
      l);
  s->m_latency_ = m->GetHistogram("switchyard_delivery_request_seconds",
                                  "Latency of requests to the destination.", LatencyBuckets(), l);
  Logger()->info("destination stream started destination={} type={} resume_offset={}", s->name(),
                 s->options_.config.type, s->last_commit_.value());
  return s;
}

DestinationStream::~DestinationStream() {
  Stop();
}

void DestinationStream::Stop() {
  stop_requested_ = true;
  {
    std::lock_guard lock(mailbox_->mu);
    mailbox_->stopping = true;
  }
  mailbox_->cv.notify_all();
  if (thread_.joinable()) thread_.join();
  if (data_listener_ != 0) {
    options_.log->RemoveDataListener(data_listener_);
    data_listener_ = 0;
  }
}

size_t DestinationStream::WindowUsed() const {
  if (pending_.empty()) return 0;
  return static_cast<size_t>(cursor_->position().value() - pending_.begin()->first.offset.value());
}

void DestinationStream::Fill() {
  size_t room = options_.window_events > WindowUsed() ? options_.window_events - WindowUsed() : 0;
  if (draining_) {
    const Offset at = cursor_->position();
    room = std::min<size_t>(room, at < drain_end_ ? drain_end_.value() - at.value() : 0);
  }
  if (room == 0) return;
  auto read = cursor_->Read(std::min<size_t>(room, 2000), 8u << 20);
  if (!read.ok()) {
    Logger()->error("log read failed destination={} status={}", name(), read.status().ToString());
    return;
  }
  int64_t now = NowMs();
  std::vector<RoutedEvent> to_transform;  // with functions: routed, run through them below
  for (auto& entry : *read) {
    RoutedEvent event;
    const Offset offset = entry.offset;
    RouteDecision d = router_.Route(std::move(entry), &event);
    if (d == RouteDecision::kBlockedByPlan && options_.destination->TakesBlockedEvents()) {
      // Route leaves `entry` whole when it does not send it.
      event = RoutedEvent{entry.offset,      std::move(entry.source),  std::move(entry.message_id),
                          entry.received_at, std::move(entry.payload), std::move(entry.headers)};
      m_plan_blocked_->Inc();
      d = RouteDecision::kSend;
    }
    if (d != RouteDecision::kSend) {
      skipped_++;
      m_skipped_->Inc();
      if (d == RouteDecision::kBlockedByPlan) m_plan_blocked_->Inc();
      if (d == RouteDecision::kConsentDenied) m_consent_denied_->Inc();
      // Events of other sources are not this destination's; the rest were filtered by a rule.
      if (d != RouteDecision::kOtherSource) {
        if (options_.stats)
          options_.stats->Record(observe::DeliveryStats::Kind::kFiltered, WallMs());
        Observe(observe::Stage::kFiltered, entry.source, entry.message_id, entry.payload,
                RouteDecisionName(d), 0);
      }
      continue;
    }
    event.offset = offset;
    if (options_.transform) {
      to_transform.push_back(std::move(event));
    } else {
      AddPending(DeliveryKey{offset, 0}, std::move(event), now);
    }
  }
  if (!to_transform.empty()) TransformInto(std::move(to_transform), now);
}

void DestinationStream::AddPending(DeliveryKey key, RoutedEvent event, int64_t now) {
  Pending p;
  p.key = key;
  p.event = std::move(event);
  if (options_.config.ordering == config::Ordering::kPerUser) p.user = UserKeyOf(p.event.payload);
  p.first_seen_ms = now;
  p.next_attempt_ms = now;
  pending_.emplace_hint(pending_.end(), key, std::move(p));
}

void DestinationStream::TransformInto(std::vector<RoutedEvent> events, int64_t now, int attempts,
                                      int64_t first_attempt_ms) {
  std::vector<TransformResult> results = options_.transform->Transform(events);
  for (size_t i = 0; i < events.size(); ++i) {
    RoutedEvent& event = events[i];
    const Offset offset = event.offset;
    TransformResult r = i < results.size() ? std::move(results[i]) : TransformResult{};
    switch (r.kind) {
      case TransformResult::Kind::kKeep:
        AddPending(DeliveryKey{offset, 0}, std::move(event), now);
        break;
      case TransformResult::Kind::kEvents: {
        if (r.payloads.empty()) {
          // Dropped by a function: final, like a filter rule.
          skipped_++;
          m_skipped_->Inc();
          if (options_.stats)
            options_.stats->Record(observe::DeliveryStats::Kind::kFiltered, WallMs());
          Observe(observe::Stage::kFiltered, event, "dropped by a function", 0);
          break;
        }
        for (size_t j = 0; j < r.payloads.size(); ++j) {
          RoutedEvent part;
          part.offset = offset;
          part.source = event.source;
          part.message_id = event.message_id;
          part.received_at = event.received_at;
          part.payload = std::move(r.payloads[j]);
          AddPending(DeliveryKey{offset, static_cast<uint32_t>(j)}, std::move(part), now);
        }
        break;
      }
      case TransformResult::Kind::kDeadLetter: {
        // The stored event (before functions) goes to the dead-letter store with the reason.
        AddPending(DeliveryKey{offset, 0}, std::move(event), now);
        Pending& p = pending_.at(DeliveryKey{offset, 0});
        p.attempts = attempts + 1;
        p.before_functions = true;
        rejected_++;
        m_rejected_->Inc();
        if (options_.stats) options_.stats->Record(observe::DeliveryStats::Kind::kFailed, WallMs());
        QueueDeadLetter(p, r.reason);
        break;
      }
      case TransformResult::Kind::kRetry: {
        AddPending(DeliveryKey{offset, 0}, std::move(event), now);
        Pending& p = pending_.at(DeliveryKey{offset, 0});
        p.transform_pending = true;
        p.before_functions = true;
        p.attempts = attempts + 1;
        p.first_attempt_ms = first_attempt_ms ? first_attempt_ms : now;
        p.last_reason = r.reason;
        const int64_t window_end = p.first_attempt_ms + options_.config.retry_window_ms;
        if (now >= window_end) {
          QueueDeadLetter(p, "retry window exceeded after " + std::to_string(p.attempts) +
                                 " attempts: " + r.reason);
          break;
        }
        retried_++;
        m_retried_->Inc();
        if (options_.stats)
          options_.stats->Record(observe::DeliveryStats::Kind::kRetried, WallMs());
        Observe(observe::Stage::kRetrying, p.event, r.reason, 0);
        if (draining_ && drain_error_.ok()) drain_error_ = Unavailable(r.reason);
        p.next_attempt_ms =
            std::min(now + backoff_.NextDelayMs(p.attempts, std::nullopt), window_end);
        break;
      }
    }
  }
}

void DestinationStream::RetryTransforms(const std::vector<DeliveryKey>& due, int64_t now) {
  for (DeliveryKey k : due) {
    auto it = pending_.find(k);
    if (it == pending_.end()) continue;
    Pending p = std::move(it->second);
    pending_.erase(it);
    std::vector<RoutedEvent> one;
    one.push_back(std::move(p.event));
    TransformInto(std::move(one), now, p.attempts, p.first_attempt_ms);
  }
}

std::vector<DeliveryKey> DestinationStream::PickBatch(int64_t now, int64_t* wake_at) {
  // A batch is what one round sends (the `batch:` config); StartRound splits it into requests that
  // fit the destination's per-request limits, sent in parallel.
  size_t max_events = static_cast<size_t>(options_.config.batch.max_events);
  size_t max_bytes = static_cast<size_t>(options_.config.batch.max_bytes);
  std::vector<DeliveryKey> batch;
  size_t bytes = 0;
  bool has_retry = false;
  int64_t oldest_seen = INT64_MAX;
  std::set<std::string, std::less<>> held_users;
  const bool per_user = options_.config.ordering == config::Ordering::kPerUser;
  std::vector<DeliveryKey> dead_letter_again;
  std::vector<DeliveryKey> transform_again;
  for (auto& [offset, p] : pending_) {
    if (per_user && !p.user.empty() && held_users.contains(p.user)) continue;
    if (p.in_flight) {
      // Its user's later events wait for its answer (strict per-user order across rounds).
      if (per_user && !p.user.empty()) held_users.insert(p.user);
      continue;
    }
    if (p.next_attempt_ms > now) {
      *wake_at = std::min(*wake_at, p.next_attempt_ms);
      if (per_user && !p.user.empty()) held_users.insert(p.user);
      continue;
    }
    if (p.dead_letter_pending) {
      dead_letter_again.push_back(offset);
      continue;
    }
    if (p.transform_pending) {
      transform_again.push_back(offset);
      if (per_user && !p.user.empty()) held_users.insert(p.user);
      continue;
    }
    if (batch.size() >= max_events) break;
    if (!batch.empty() && bytes + p.event.payload.size() > max_bytes) break;
    batch.push_back(offset);
    // Strict per-user order: one event of a user per batch, so a later event can never be
    // delivered while an earlier one of the same user fails in the same batch.
    if (per_user && !p.user.empty()) held_users.insert(p.user);
    bytes += p.event.payload.size();
    has_retry = has_retry || p.attempts > 0;
    oldest_seen = std::min(oldest_seen, p.first_seen_ms);
  }
  for (DeliveryKey o : dead_letter_again) {
    Pending& p = pending_.at(o);
    QueueDeadLetter(p, p.last_reason);
  }
  // Picked up again by the next turn (their outputs are new pending entries).
  if (!transform_again.empty()) {
    RetryTransforms(transform_again, now);
    *wake_at = now;
  }
  FlushDeadLetters();
  if (batch.empty()) return batch;
  bool full = batch.size() >= max_events || bytes >= max_bytes;
  bool waited_enough = draining_ || now - oldest_seen >= options_.config.batch.max_wait_ms;
  bool window_full = WindowUsed() >= options_.window_events;
  if (full || waited_enough || has_retry || window_full) return batch;
  *wake_at = std::min(*wake_at, oldest_seen + options_.config.batch.max_wait_ms);
  return {};
}

void DestinationStream::StartRound(const std::vector<DeliveryKey>& batch) {
  Round round;
  round.offsets = batch;
  round.events.reserve(batch.size());
  int64_t now = NowMs();
  for (DeliveryKey o : batch) {
    Pending& p = pending_.at(o);
    if (p.attempts == 0) p.first_attempt_ms = now;
    p.attempts++;
    // Moved, not copied: the event lives in the round while it is in flight and goes back to
    // pending_ before its outcome is applied (ReturnEvent).
    round.events.push_back(std::move(p.event));
  }
  std::vector<bool> returned(batch.size(), false);
  auto give_back = [&](size_t i) {
    if (returned[i]) return;
    returned[i] = true;
    ReturnEvent(round, i);
  };
  // Chunks that fit one request of the destination (its per-request limits).
  const std::vector<RoutedEvent>& events = round.events;
  const DestinationLimits lim = options_.destination->limits();
  const size_t chunk_events = std::max<size_t>(1, lim.max_events_per_request);
  std::vector<std::pair<size_t, size_t>> chunks;  // [start, end) into `events`
  for (size_t start = 0; start < events.size();) {
    size_t end = start;
    size_t bytes = 0;
    while (end < events.size() && end - start < chunk_events &&
           (end == start || bytes + events[end].payload.size() <= lim.max_bytes_per_request)) {
      bytes += events[end].payload.size();
      ++end;
    }
    chunks.emplace_back(start, end);
    start = end;
  }
  const std::span<const RoutedEvent> all(events);
  std::vector<HttpRequest> requests;
  std::vector<std::pair<size_t, std::string>> unmappable, skipped;
  // In-process chunks of this batch are one round for the failure hold: answers to the same
  // failure, counted once (as the requests of one HTTP round are).
  std::optional<uint64_t> in_process_round;
  for (const auto& [start, end] : chunks) {
    auto part_events = all.subspan(start, end - start);
    if (auto direct = options_.destination->DeliverInProcess(part_events)) {
      if (!in_process_round) in_process_round = next_round_++;
      bool any_delivered = false, all_retry = end > start;
      std::optional<int64_t> retry_after;
      std::string auth_failure;
      for (size_t i = start; i < end; ++i) {
        Outcome o = i - start < direct->size() ? (*direct)[i - start]
                                               : Outcome::Retry("destination returned no outcome");
        any_delivered = any_delivered || o.kind == Outcome::Kind::kDelivered;
        all_retry = all_retry && o.kind == Outcome::Kind::kRetry;
        if (o.retry_after_ms) retry_after = std::max(retry_after.value_or(0), *o.retry_after_ms);
        if (o.auth_failure && auth_failure.empty()) auth_failure = o.reason;
        give_back(i);
        Apply(batch[i], o, 0, "");
      }
      // The same failure hold as an HTTP response (see the header, "Failure backoff"): an
      // in-process call is its own round.
      NoteResponse(*in_process_round, any_delivered, all_retry, retry_after, auth_failure);
      continue;
    }
    EncodedBatch part = options_.destination->Encode(part_events);
    for (auto& req : part.requests) {
      for (size_t& i : req.events)
        i += start;
      requests.push_back(std::move(req));
    }
    for (auto& [i, reason] : part.unmappable)
      unmappable.emplace_back(i + start, std::move(reason));
    for (auto& [i, reason] : part.skipped)
      skipped.emplace_back(i + start, std::move(reason));
  }
  for (const auto& [index, reason] : unmappable) {
    give_back(index);
    Apply(batch[index], Outcome::Rejected("cannot encode: " + reason), 0, "");
  }
  for (const auto& [index, reason] : skipped) {
    give_back(index);
    SkipEncoded(batch[index], reason);
  }
  if (!options_.http) {
    for (const auto& req : requests)
      for (size_t i : req.events) {
        give_back(i);
        Apply(batch[i], Outcome::Retry("no HTTP client"), 0, "");
      }
    requests.clear();
  }
  for (const auto& req : requests)
    for (size_t i : req.events) {
      returned[i] = true;  // travels with the round; comes back with its response
      pending_.at(batch[i]).in_flight = true;
    }
  // An event the encoder left out of every request (a destination bug) is simply picked again.
  for (size_t i = 0; i < batch.size(); ++i)
    give_back(i);
  if (requests.empty()) return;
  const uint64_t id = next_round_++;
  Round& r = rounds_.emplace(id, std::move(round)).first->second;
  Dispatch(id, r, std::move(requests));
}

void DestinationStream::ReturnEvent(Round& round, size_t i) {
  auto it = pending_.find(round.offsets[i]);
  if (it == pending_.end()) return;
  it->second.event = std::move(round.events[i]);
  it->second.in_flight = false;
}

void DestinationStream::Dispatch(uint64_t id, Round& round, std::vector<HttpRequest> requests) {
  for (auto& req : requests) {
    const size_t index = round.requests.size();
    req.timeout_ms = options_.config.timeout_ms;
    // The body goes to the client; the round keeps the rest for Classify (and splitting).
    http::ClientRequest wire;
    wire.method = req.method;
    wire.url = req.url;
    wire.headers = req.headers;
    wire.body = std::move(req.body);
    wire.timeout_ms = req.timeout_ms;
    req.body.clear();
    round.requests.push_back(std::move(req));
    round.outstanding++;
    requests_in_flight_++;
    options_.http->Send(std::move(wire), http::SendOptions{options_.config.allow_private_network},
                        [mailbox = mailbox_, id, index](HttpResponse res) {
                          {
                            std::lock_guard lock(mailbox->mu);
                            mailbox->responses.push_back({id, index, std::move(res)});
                          }
                          mailbox->cv.notify_all();
                        });
  }
}

void DestinationStream::DrainResponses(int64_t wait_ms, bool wake_on_data) {
  std::deque<Mailbox::Response> responses;
  {
    std::unique_lock lock(mailbox_->mu);
    if (mailbox_->responses.empty() && wait_ms > 0) {
      // While running, Stop() ends the wait; once stopping (the grace period), only responses.
      const bool running = !mailbox_->stopping;
      mailbox_->cv.wait_for(
          lock, std::chrono::milliseconds(wait_ms), [this, running, wake_on_data] {
            return !mailbox_->responses.empty() || (running && mailbox_->stopping) ||
                   (wake_on_data && mailbox_->data);
          });
    }
    // Records published before this point are read by the next Fill.
    if (wake_on_data) mailbox_->data = false;
    responses.swap(mailbox_->responses);
  }
  for (auto& r : responses)
    OnResponse(r.round, r.request, std::move(r.response));
}

void DestinationStream::OnResponse(uint64_t id, size_t index, HttpResponse res) {
  auto it = rounds_.find(id);
  if (it == rounds_.end()) return;
  Round& round = it->second;
  round.outstanding--;
  requests_in_flight_--;
  m_latency_->Observe(res.seconds);
  // Copied: splitting below may grow round.requests.
  const HttpRequest req = round.requests[index];
  if (req.follow_ups < Destination::kMaxFollowUps) {
    if (std::optional<HttpRequest> next = options_.destination->FollowUp(req, res)) {
      // The second step of a two-step request: the same events travel on with it.
      next->events = req.events;
      next->follow_ups = req.follow_ups + 1;
      std::vector<HttpRequest> one;
      one.push_back(std::move(*next));
      Dispatch(id, round, std::move(one));
      return;
    }
  }
  if (res.status == 413 && req.events.size() > 1) {
    // Too large for the receiver: not a verdict on any event. Send each half again at once.
    const size_t half = req.events.size() / 2;
    std::vector<HttpRequest> again;
    for (auto [from, to] : {std::pair<size_t, size_t>{0, half}, {half, req.events.size()}}) {
      std::vector<RoutedEvent> part;
      for (size_t k = from; k < to; ++k)
        part.push_back(round.events[req.events[k]]);
      EncodedBatch enc = options_.destination->Encode(part);
      for (auto& r : enc.requests) {
        for (size_t& i : r.events)
          i = req.events[from + i];
        again.push_back(std::move(r));
      }
      for (const auto& [i, reason] : enc.unmappable) {
        ReturnEvent(round, req.events[from + i]);
        Apply(round.offsets[req.events[from + i]], Outcome::Rejected("cannot encode: " + reason), 0,
              "");
      }
      for (const auto& [i, reason] : enc.skipped) {
        ReturnEvent(round, req.events[from + i]);
        SkipEncoded(round.offsets[req.events[from + i]], reason);
      }
    }
    Logger()->info("request too large (413): split in two destination={} events={}", name(),
                   req.events.size());
    Dispatch(id, round, std::move(again));
  } else {
    std::vector<Outcome> outcomes = options_.destination->Classify(req, res);
    std::string body = res.status ? Excerpt(res.body) : res.error;
    bool any_delivered = false, all_retry = !req.events.empty();
    std::optional<int64_t> retry_after;
    std::string auth_failure;
    for (size_t k = 0; k < req.events.size(); ++k) {
      Outcome o = k < outcomes.size() ? outcomes[k] : ClassifyByStatus(res);
      any_delivered = any_delivered || o.kind == Outcome::Kind::kDelivered;
      all_retry = all_retry && o.kind == Outcome::Kind::kRetry;
      if (o.retry_after_ms) retry_after = std::max(retry_after.value_or(0), *o.retry_after_ms);
      if (o.auth_failure && auth_failure.empty()) auth_failure = o.reason;
      ReturnEvent(round, req.events[k]);
      Apply(round.offsets[req.events[k]], o, res.status, body);
    }
    NoteResponse(id, any_delivered, all_retry, retry_after, auth_failure);
  }
  if (round.outstanding == 0) rounds_.erase(it);
}

void DestinationStream::NoteResponse(uint64_t round, bool any_delivered, bool all_retry,
                                     std::optional<int64_t> retry_after_ms,
                                     const std::string& auth_failure) {
  if (any_delivered) {
    failure_streak_ = 0;
    auth_streak_ = 0;
    hold_until_ms_ = 0;
    m_credentials_refused_->Set(0);
    std::lock_guard lock(health_mu_);
    health_ = Health{};
    return;
  }
  // Rounds sent before the current hold are answers to the same failure: counted once.
  if (!all_retry || round < hold_from_round_) return;
  const int64_t now = NowMs();
  ++failure_streak_;
  int64_t delay = backoff_.NextDelayMs(failure_streak_, retry_after_ms);
  if (!auth_failure.empty()) {
    int64_t auth_hold = options_.auth_hold_min_ms;
    for (int i = 0; i < auth_streak_ && auth_hold < options_.auth_hold_max_ms; ++i)
      auth_hold *= 2;
    delay = std::max(delay, std::min(auth_hold, options_.auth_hold_max_ms));
    ++auth_streak_;
    if (auth_streak_ == 1) {
      Logger()->warn("credentials refused destination={} reason={} (held, probed every {} ms)",
                     name(), auth_failure, delay);
    }
  } else {
    auth_streak_ = 0;
  }
  m_credentials_refused_->Set(auth_failure.empty() ? 0 : 1);
  {
    std::lock_guard lock(health_mu_);
    health_.failing = true;
    health_.credentials_refused = !auth_failure.empty();
    health_.reason = auth_failure;
  }
  if (!pending_.empty()) {
    const Pending& oldest = pending_.begin()->second;
    if (oldest.attempts > 0) {
      // Its last attempt is due when its retry window ends: never hold past that.
      delay = std::min(delay, std::max<int64_t>(0, oldest.first_attempt_ms +
                                                       options_.config.retry_window_ms - now));
    }
  }
  hold_until_ms_ = now + delay;
  hold_from_round_ = next_round_;
}

DestinationStream::Health DestinationStream::health() const {
  std::lock_guard lock(health_mu_);
  return health_;
}

void DestinationStream::Apply(DeliveryKey offset, const Outcome& outcome, int status,
                              const std::string& response) {
  auto it = pending_.find(offset);
  if (it == pending_.end()) return;
  Pending& p = it->second;
  p.last_status = status;
  p.last_response = response;
  p.last_reason = outcome.reason;
  const int64_t now = NowMs();
  const int64_t wall = WallMs();
  switch (outcome.kind) {
    case Outcome::Kind::kDelivered:
      delivered_++;
      m_delivered_->Inc();
      if (options_.stats) options_.stats->RecordDelivered(wall, wall - p.event.received_at.value());
      Observe(observe::Stage::kDelivered, p.event, "", status);
      pending_.erase(it);
      return;
    case Outcome::Kind::kRejected:
      rejected_++;
      m_rejected_->Inc();
      if (options_.stats) options_.stats->Record(observe::DeliveryStats::Kind::kFailed, wall);
      QueueDeadLetter(p, outcome.reason);
      return;
    case Outcome::Kind::kRetry: {
      int64_t window_end = p.first_attempt_ms + options_.config.retry_window_ms;
      if (now >= window_end) {
        QueueDeadLetter(p, "retry window exceeded after " + std::to_string(p.attempts) +
                               " attempts: " + outcome.reason);
        return;
      }
      retried_++;
      m_retried_->Inc();
      if (options_.stats) options_.stats->Record(observe::DeliveryStats::Kind::kRetried, wall);
      Observe(observe::Stage::kRetrying, p.event, outcome.reason, status);
      if (draining_ && drain_error_.ok()) drain_error_ = Unavailable(outcome.reason);
      int64_t delay = backoff_.NextDelayMs(p.attempts, outcome.retry_after_ms);
      // The last attempt happens at the window's end rather than never.
      p.next_attempt_ms = std::min(now + delay, window_end);
      return;
    }
  }
}

void DestinationStream::SkipEncoded(DeliveryKey offset, const std::string& reason) {
  auto it = pending_.find(offset);
  if (it == pending_.end()) return;
  // Final, like a routing skip: the vendor has no concept for the call (EncodedBatch::skipped).
  skipped_++;
  m_skipped_->Inc();
  if (options_.stats) options_.stats->Record(observe::DeliveryStats::Kind::kFiltered, WallMs());
  Observe(observe::Stage::kFiltered, it->second.event, reason, 0);
  pending_.erase(it);
}

void DestinationStream::Observe(observe::Stage stage, const RoutedEvent& event,
                                std::string_view detail, int http_status) {
  Observe(stage, event.source, event.message_id, event.payload, detail, http_status);
}

void DestinationStream::Observe(observe::Stage stage, std::string_view source,
                                std::string_view message_id, std::string_view payload,
                                std::string_view detail, int http_status) {
  if (!options_.live) return;
  const int64_t now = WallMs();
  if (options_.live->Admit(observe::TopicKind::kDestination, name(), 1, now) == 0) return;
  std::vector<observe::LiveRecord> records;
  records.push_back(observe::LiveRecord::Of(stage, now, source, message_id, payload));
  records.back().destination = name();
  records.back().detail.assign(detail);
  records.back().http_status = http_status;
  options_.live->Publish(observe::TopicKind::kDestination, name(), std::move(records));
}

void DestinationStream::QueueDeadLetter(Pending& p, const std::string& reason) {
  p.dead_letter_pending = true;
  p.last_reason = reason;
  p.next_attempt_ms = INT64_MAX;  // not picked again while queued
  dead_letter_queue_.push_back(p.key);
}

void DestinationStream::FlushDeadLetters() {
  if (dead_letter_queue_.empty()) return;
  std::vector<delivery::DeadLetter> letters;
  letters.reserve(dead_letter_queue_.size());
  const TimestampMs now = options_.clock->Now();
  for (DeliveryKey o : dead_letter_queue_) {
    const Pending& p = pending_.at(o);
    delivery::DeadLetter d;
    d.destination = name();
    d.offset = o.offset;
    d.source = p.event.source;
    d.message_id = p.event.message_id;
    d.received_at = p.event.received_at;
    d.dead_lettered_at = now;
    d.reason = p.last_reason;
    d.attempts = p.attempts;
    d.last_status = p.last_status;
    d.last_response = p.last_response;
    d.event = p.event.payload;
    d.before_functions = p.before_functions;
    letters.push_back(std::move(d));
  }
  if (Status s = options_.dead_letters->AppendAll(letters); !s.ok()) {
    // Not final until durable: keep the events (and the cursor) and try the append again.
    Logger()->error("dead-letter append failed destination={} events={} status={}", name(),
                    letters.size(), s.ToString());
    if (draining_ && drain_error_.ok()) drain_error_ = s;
    for (DeliveryKey o : dead_letter_queue_)
      pending_.at(o).next_attempt_ms = NowMs() + 1000;
    dead_letter_queue_.clear();
    return;
  }
  for (size_t i = 0; i < letters.size(); ++i) {
    auto it = pending_.find(dead_letter_queue_[i]);
    Observe(observe::Stage::kDeadLettered, it->second.event, letters[i].reason,
            letters[i].last_status);
    pending_.erase(it);
  }
  if (options_.stats) {
    options_.stats->Record(observe::DeliveryStats::Kind::kDeadLettered, now.value(),
                           letters.size());
  }
  dead_lettered_ += letters.size();
  m_dead_lettered_->Inc(letters.size());
  Logger()->warn("events dead-lettered destination={} count={} first_offset={} reason=\"{}\"",
                 name(), letters.size(), letters.front().offset.value(), letters.front().reason);
  dead_letter_queue_.clear();
}

void DestinationStream::CommitProgress(bool force) {
  Offset next = pending_.empty() ? cursor_->position() : pending_.begin()->first.offset;
  if (next <= last_commit_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_commit_time_ < std::chrono::milliseconds(options_.commit_interval_ms) &&
      next.value() - last_commit_.value() < options_.window_events / 2) {
    return;
  }
  last_commit_time_ = now;
  if (Status s = cursor_->Commit(next); !s.ok()) {
    Logger()->warn("cursor commit failed destination={} status={}", name(), s.ToString());
    return;
  }
  last_commit_ = next;
  committed_ = next.value();
}

void DestinationStream::UpdateGauges() {
  in_flight_ = pending_.size();
  m_in_flight_->Set(static_cast<double>(pending_.size()));
  double lag_s = 0;
  if (!pending_.empty()) {
    lag_s =
        static_cast<double>(WallMs() - pending_.begin()->second.event.received_at.value()) / 1000.0;
  }
  m_lag_seconds_->Set(std::max(0.0, lag_s));
}

bool DestinationStream::CanStartRound() const {
  if (failure_streak_ > 0) {
    return rounds_.empty() && NowMs() >= hold_until_ms_;  // one probe at a time, after the hold
  }
  return rounds_.size() < std::max<size_t>(1, options_.max_rounds_in_flight) &&
         requests_in_flight_ < std::max<size_t>(1, options_.max_requests_in_flight);
}

void DestinationStream::Run() {
  while (!stop_requested_.load()) {
    wakeups_.fetch_add(1, std::memory_order_relaxed);
    DrainResponses(0);
    Fill();
    int64_t now = NowMs();
    int64_t wake_at = INT64_MAX;
    if (CanStartRound()) {
      std::vector<DeliveryKey> batch = PickBatch(now, &wake_at);
      if (!batch.empty()) {
        StartRound(batch);
        FlushDeadLetters();
        CommitProgress();
        UpdateGauges();
        continue;
      }
    }
    FlushDeadLetters();
    CommitProgress();
    UpdateGauges();
    if (failure_streak_ > 0 && rounds_.empty() && hold_until_ms_ > now) {
      wake_at = std::min(wake_at, hold_until_ms_);
    }
    int64_t wait_ms = options_.max_idle_wait_ms;
    if (wake_at != INT64_MAX) wait_ms = std::clamp<int64_t>(wake_at - now, 0, wait_ms);
    if (wait_ms == 0) continue;
    // One wait for whatever comes first: a response, Stop(), or — while there is room to read
    // and send — new records in the log (its data listener). Nothing polls.
    const bool can_send = CanStartRound() && WindowUsed() < options_.window_events;
    DrainResponses(wait_ms, /*wake_on_data=*/can_send);
  }
  // Let the rounds in flight finish, for at most stop_grace_ms of real time.
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.stop_grace_ms);
  while (!rounds_.empty() && std::chrono::steady_clock::now() < give_up) {
    DrainResponses(20);
  }
  if (!rounds_.empty()) {
    // The receiver is slow: leave those rounds without outcomes. Their events stay uncommitted
    // and are sent again by the next stream (at least once).
    size_t unanswered = 0;
    for (const auto& [id, round] : rounds_)
      unanswered += round.outstanding;
    Logger()->warn("stop: abandoning {} unanswered requests destination={}", unanswered, name());
    rounds_.clear();
    requests_in_flight_ = 0;
  }
  FlushDeadLetters();
  CommitProgress(/*force=*/true);
  UpdateGauges();
  if (options_.transform) options_.transform->ThreadDone();
  Logger()->info("destination stream stopped destination={} committed={} in_flight={}", name(),
                 last_commit_.value(), pending_.size());
}

Result<DestinationStream::DrainReport> DestinationStream::DrainOnce() {
  if (thread_.joinable()) return FailedPrecondition("drain once: the stream has its own thread");
  draining_ = true;
  drain_end_ = options_.log->EndOffset();
  drain_error_ = Status::Ok();
  // A drain does not wait: events left by an earlier drain's retry go now, with no hold.
  failure_streak_ = 0;
  hold_until_ms_ = 0;
  for (auto& [offset, p] : pending_)
    if (!p.in_flight && !p.dead_letter_pending) p.next_attempt_ms = NowMs();
  const uint64_t delivered0 = delivered_, dead0 = dead_lettered_, skipped0 = skipped_;
  // The steps of Run(), minus waiting for batches to fill and for retries.
  while (drain_error_.ok()) {
    DrainResponses(0);
    Fill();
    if (pending_.empty() && rounds_.empty() && cursor_->position() >= drain_end_) break;
    int64_t wake_at = INT64_MAX;
    if (CanStartRound()) {
      std::vector<DeliveryKey> batch = PickBatch(NowMs(), &wake_at);
      if (!batch.empty()) {
        StartRound(batch);
        FlushDeadLetters();
        continue;
      }
    }
    FlushDeadLetters();
    if (!rounds_.empty()) {
      DrainResponses(options_.max_idle_wait_ms);  // woken by a response
    } else if (!drain_error_.ok()) {
      break;
    } else if (pending_.empty() && cursor_->position() < drain_end_) {
      // Fill read nothing although the log had more when the drain began: it shrank (retention)
      // or the read failed (logged by Fill).
      if (cursor_->position() < options_.log->StartOffset()) continue;
      drain_error_ = Unavailable("drain once: cannot read the log at offset " +
                                 std::to_string(cursor_->position().value()));
    } else if (!pending_.empty()) {
      // Every pending event waits for something (a retry, a dead-letter append): with no
      // retries here that is an end.
      drain_error_ = Unavailable("drain once: " + pending_.begin()->second.last_reason);
    }
  }
  // Answers still outstanding (HTTP destinations) are waited for, as Stop() does.
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.stop_grace_ms);
  while (!rounds_.empty() && std::chrono::steady_clock::now() < give_up)
    DrainResponses(20);
  rounds_.clear();
  requests_in_flight_ = 0;
  FlushDeadLetters();
  CommitProgress(/*force=*/true);
  UpdateGauges();
  draining_ = false;
  if (!drain_error_.ok()) return drain_error_;
  if (last_commit_ < drain_end_ && pending_.empty() && cursor_->position() >= drain_end_) {
    return IoError("drain once: the cursor commit failed");
  }
  DrainReport r;
  r.delivered = delivered_ - delivered0;
  r.dead_lettered = dead_lettered_ - dead0;
  r.skipped = skipped_ - skipped0;
  return r;
}

}  // namespace sy::delivery
