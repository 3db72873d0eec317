#include "archive/archiver.h"

#include <optional>
#include <random>
#include <sstream>

#include "archive/archive_key.h"
#include "archive/gzip.h"
#include "base/logging.h"
#include "base/thread_name.h"

namespace sy::archive {
namespace {

std::shared_ptr<spdlog::logger> Logger() {
  static auto l = ModuleLogger("archive");
  return l;
}

// Lines are compressed in members of about this many bytes (see gzip.h).
constexpr size_t kMemberBytes = 1 << 20;
// Members compressed at once per open file: reading plus three compressors keep two cores busy
// and bound memory to a few MiB per source.
constexpr size_t kMembersInFlight = 3;
constexpr const char* kStateHeader = "switchyard-archive-state 1";

}  // namespace

Result<std::map<std::string, SourceProgress>> ReadArchiveState(const std::string& path, Env* env) {
  std::map<std::string, SourceProgress> out;
  if (!env->FileExists(path)) return out;  // no state yet: nothing archived
  SY_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(env, path));
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != kStateHeader)
    return DataLoss("archive state " + path + ": bad header");
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream ls(line);
    std::string source, intent;
    unsigned long long next = 0;
    if (!(ls >> source >> next >> intent)) return DataLoss("archive state " + path + ": bad line");
    SourceProgress p;
    p.next = Offset(next);
    if (intent != "-") {
      p.has_intent = true;
      p.intent_last = Offset(std::stoull(intent));
    }
    out[source] = p;
  }
  return out;
}

Status WriteArchiveState(const std::string& path, const std::map<std::string, SourceProgress>& s,
                         Env* env) {
  std::string text = std::string(kStateHeader) + "\n";
  for (const auto& [source, p] : s) {
    text += source + " " + std::to_string(p.next.value()) + " " +
            (p.has_intent ? std::to_string(p.intent_last.value()) : "-") + "\n";
  }
  return WriteFileAtomically(env, path, text);
}

Archiver::Archiver(ArchiverOptions options) : o_(std::move(options)) {}

Result<std::unique_ptr<Archiver>> Archiver::Start(ArchiverOptions options) {
  if (!options.log || !options.store || !options.metrics)
    return InvalidArgument("archiver: log, store and metrics registry required");
  if (options.upload_retry.max_attempts != 0 || options.upload_retry.deadline_ms != 0 ||
      !options.upload_retry.retry_permanent_failures) {
    return InvalidArgument("archiver: upload_retry must retry every failure without limit");
  }
  if (!options.clock) options.clock = SystemClock::Get();
  if (!options.env) options.env = Env::Default();
  // The state file is synced into this directory: its own entry must be durable too.
  SY_RETURN_IF_ERROR(CreateDirDurably(options.env, options.state_dir));
  std::unique_ptr<Archiver> a(new Archiver(std::move(options)));
  a->state_path_ = a->o_.state_dir + "/state";
  SY_ASSIGN_OR_RETURN(a->progress_, ReadArchiveState(a->state_path_, a->o_.env));
  SY_ASSIGN_OR_RETURN(a->cursor_, a->o_.log->OpenCursor(a->o_.cursor_name));
  a->last_commit_ = a->cursor_->committed();
  a->processed_ = a->cursor_->position();
  a->read_position_ = a->processed_.value();
  MetricsRegistry* m = a->o_.metrics;
  a->m_files_ = m->GetCounter("switchyard_archive_files_total", "Archive files uploaded.");
  a->m_bytes_ = m->GetCounter("switchyard_archive_bytes_total",
                              "Compressed bytes of archive files uploaded.");
  a->m_raw_bytes_ = m->GetCounter("switchyard_archive_uncompressed_bytes_total",
                                  "Uncompressed (NDJSON) bytes of archive files uploaded.");
  a->m_events_ = m->GetCounter("switchyard_archive_events_total", "Events archived.");
  a->m_failures_ = m->GetCounter("switchyard_archive_upload_failures_total",
                                 "Archive uploads that failed (each is retried).");
  a->m_upload_ =
      m->GetHistogram("switchyard_archive_upload_seconds",
                      "Time to upload one archive file (successful attempts).", LatencyBuckets());
  // Lag in events comes from the log (switchyard_consumer_lag_events, by cursor); the age of the
  // oldest event not yet in an uploaded file is ours.
  std::shared_ptr<Lag> lag = a->lag_;
  Clock* clock = a->o_.clock;
  log::ConsumerLagSeconds(m);  // declares the family (name, help)
  m->AddCallbackGauge("switchyard_consumer_lag_seconds", "", {{"cursor", a->o_.cursor_name}},
                      [clock, lag] {
                        int64_t t = lag->oldest_open_ms.load();
                        return t == 0 ? 0.0 : (clock->Now().value() - t) / 1000.0;
                      });
  Logger()->info("archive started store={} cursor={} from_offset={}", a->o_.store->Describe(),
                 a->o_.cursor_name, a->last_commit_.value());
  a->thread_ = std::thread([p = a.get()] {
    SetThreadName("sy-archive");
    p->Run();
  });
  return a;
}

Archiver::~Archiver() {
  Stop();
}

void Archiver::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  stop_requested_ = true;
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Archiver::SleepUnlessStopping(int64_t ms) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
}

void Archiver::Run() {
  while (!stop_requested_.load()) {
    // Wake in time for the next age roll.
    int64_t wait_ms = 200;
    int64_t now = o_.clock->MonotonicNanos();
    for (const auto& [source, f] : open_) {
      int64_t due = f.opened_mono_ns + o_.config.roll_age_ms * 1'000'000 - now;
      wait_ms = std::max<int64_t>(1, std::min(wait_ms, due / 1'000'000));
    }
    if (cursor_->WaitForData(std::chrono::milliseconds(wait_ms))) {
      auto batch = cursor_->Read(4096, 16 << 20);
      if (!batch.ok()) {
        Logger()->error("archive: log read failed status={}", batch.status().ToString());
        SleepUnlessStopping(1000);
        continue;
      }
      for (const auto& e : *batch) {
        Add(e);
        processed_ = e.offset.Next();
        if (stop_requested_.load()) break;  // the rest of the batch is read again after restart
      }
      read_position_ = processed_.value();
    }
    RollDue(false);
    CommitProgress();
  }
  // Close what is open: one upload attempt each; what fails is rebuilt from the log on restart.
  RollDue(true);
  CommitProgress();
}

void Archiver::Add(const log::LogEntry& e) {
  // An event a tracking plan blocked is not archived: replay would deliver it (archive lines carry
  // no headers). Its released copy, a record of its own, is archived (docs/governance.md).
  if (!e.headers.empty() && log::FindHeader(e.headers, log::kHeaderBlocked) != nullptr) return;
  SourceProgress& p = progress_[e.source];
  if (e.offset < p.next) return;  // archived before a restart
  auto [it, fresh] = open_.try_emplace(e.source);
  OpenFile& f = it->second;
  if (fresh) {
    f.first = e.offset;
    f.first_received = e.received_at;
    f.opened_mono_ns = o_.clock->MonotonicNanos();
    int64_t oldest = lag_->oldest_open_ms.load();
    if (oldest == 0 || e.received_at.value() < oldest) lag_->oldest_open_ms = e.received_at.value();
  }
  f.last = e.offset;
  f.raw += e.payload;
  f.raw += '\n';
  f.raw_bytes += e.payload.size() + 1;
  ++f.events;
  if (f.raw.size() >= kMemberBytes) CompressMember(f);
  bool roll = p.has_intent ? e.offset == p.intent_last
                           : f.raw_bytes >= static_cast<uint64_t>(o_.config.roll_bytes);
  if (roll) Roll(e.source, false);
}

void Archiver::CompressMember(OpenFile& f) {
  int level = o_.gzip_level;
  f.compressing.push_back(std::async(std::launch::async, [data = std::move(f.raw), level] {
    SetThreadName("sy-archive-gz");
    std::string out;
    AppendGzipMember(data, level, &out);
    return out;
  }));
  f.raw = std::string();
  f.raw.reserve(kMemberBytes + (64 << 10));
  // Collect what is done; wait for the oldest when too many are in flight.
  while (!f.compressing.empty() &&
         (f.compressing.size() > kMembersInFlight ||
          f.compressing.front().wait_for(std::chrono::seconds(0)) == std::future_status::ready)) {
    f.gz += f.compressing.front().get();
    f.compressing.pop_front();
  }
}

void Archiver::FinishMembers(OpenFile& f) {
  while (!f.compressing.empty()) {
    f.gz += f.compressing.front().get();
    f.compressing.pop_front();
  }
}

void Archiver::RollDue(bool stopping) {
  int64_t now = o_.clock->MonotonicNanos();
  std::vector<std::string> due;
  for (const auto& [source, f] : open_) {
    // A file being rebuilt for an intent closes only at the intent's last offset.
    if (progress_[source].has_intent) continue;
    if (stopping || now - f.opened_mono_ns >= o_.config.roll_age_ms * 1'000'000)
      due.push_back(source);
  }
  for (const auto& s : due)
    Roll(s, stopping);
}

bool Archiver::Roll(const std::string& source, bool stopping) {
  OpenFile& f = open_.at(source);
  FinishMembers(f);
  if (!f.raw.empty()) {
    AppendGzipMember(f.raw, o_.gzip_level, &f.gz);
    f.raw.clear();
  }
  SourceProgress& p = progress_[source];
  std::string key = FormatKey(o_.config.prefix, source, f.first, f.last, f.first_received);
  if (!p.has_intent || p.intent_last != f.last) {
    p.has_intent = true;
    p.intent_last = f.last;
    while (true) {
      Status s = WriteArchiveState(state_path_, progress_, o_.env);
      if (s.ok()) break;
      Logger()->error("archive: cannot write state status={}", s.ToString());
      if (stopping || !SleepUnlessStopping(1000)) return false;
    }
  }
  RetrySchedule retry(o_.upload_retry, o_.clock);
  while (true) {
    int64_t t0 = o_.clock->MonotonicNanos();
    std::optional<int64_t> retry_after_ms;
    Status s = o_.store->PutReportingRetryAfter(key, f.gz, &retry_after_ms);
    if (s.ok()) {
      m_upload_->Observe((o_.clock->MonotonicNanos() - t0) / 1e9);
      break;
    }
    ++failures_;
    m_failures_->Inc();
    Logger()->warn(
        "archive upload failed key={} attempt={} status={} (retrying; the log keeps the "
        "events)",
        key, retry.attempts(), s.ToString());
    if (stopping) return false;
    // Never nullopt under the policy Start accepts; stop rather than spin if it were.
    std::optional<int64_t> delay =
        retry.AfterFailure(s.code() == StatusCode::kUnavailable, retry_after_ms);
    if (!delay || !SleepUnlessStopping(std::max<int64_t>(*delay, 10))) return false;
  }
  const SourceProgress with_intent = p;
  p.next = f.last.Next();
  p.has_intent = false;
  while (true) {
    Status s = WriteArchiveState(state_path_, progress_, o_.env);
    if (s.ok()) break;
    // The object is uploaded; until the state says so a restart re-uploads it (same key).
    Logger()->error("archive: cannot write state status={}", s.ToString());
    if (stopping || !SleepUnlessStopping(1000)) {
      // The file stays open, so CommitProgress does not move the cursor past its events.
      p = with_intent;
      return false;
    }
  }
  ++files_;
  events_ += f.events;
  m_files_->Inc();
  m_bytes_->Inc(f.gz.size());
  m_raw_bytes_->Inc(f.raw_bytes);
  m_events_->Inc(f.events);
  Logger()->debug("archive file uploaded key={} events={} bytes={}", key, f.events, f.gz.size());
  open_.erase(source);
  int64_t oldest = 0;
  for (const auto& [s, of] : open_)
    if (oldest == 0 || of.first_received.value() < oldest) oldest = of.first_received.value();
  lag_->oldest_open_ms = oldest;
  return true;
}

void Archiver::CommitProgress() {
  // Not cursor_->position(): a stop may leave the tail of a read batch unprocessed.
  Offset to = processed_;
  for (const auto& [source, f] : open_)
    to = std::min(to, f.first);
  if (to <= last_commit_) return;
  if (Status s = cursor_->Commit(to); !s.ok()) {
    Logger()->warn("archive: cursor commit failed status={}", s.ToString());
    return;
  }
  last_commit_ = to;
}

}  // namespace sy::archive
