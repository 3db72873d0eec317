#include "replay/replay.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "base/clock.h"
#include "base/data_dir.h"
#include "base/env.h"
#include "base/logging.h"
#include "base/thread_name.h"
#include "base/time_format.h"
#include "delivery/destination_stream.h"
#include "event/raw_json.h"
#include "log/local/local_log.h"

namespace sy::replay {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<spdlog::logger> Logger() {
  static auto l = ModuleLogger("replay");
  return l;
}

constexpr const char* kStateHeader = "switchyard-replay-state 1";
// Events imported per round (one state write, with fdatasync, each).
constexpr size_t kChunkEvents = 32768;
constexpr size_t kChunkBytes = 24 << 20;
// Events per Append, each waited for, so each is one frame of the private log: a reader decodes
// a whole frame to reach any offset in it, so the stream's reads stay cheap with small frames.
constexpr size_t kAppendEvents = 512;
constexpr size_t kAppendsInFlight = 4;

// receivedAt among an event's top-level members.
std::optional<TimestampMs> ReceivedAtIn(const std::vector<event::RawMember>& members) {
  for (auto it = members.rbegin(); it != members.rend(); ++it) {
    std::string_view v;
    if (it->key == "receivedAt") {
      if (!event::PlainString(it->value, &v)) return std::nullopt;
      return ParseIso8601(v);
    }
  }
  return std::nullopt;
}

struct PlanFile {
  std::string source;
  uint64_t size = 0;
  std::string key;
};

struct Position {
  size_t file = 0;  // index into the plan
  size_t line = 0;  // lines of that file already consumed
};

struct ReplayState {
  std::string selection;  // canonical text of the selection
  uint64_t log_end = 0;
  std::vector<PlanFile> files;
  std::map<std::string, Position> pos;
};

std::string OptTime(const std::optional<TimestampMs>& t) {
  return t ? std::to_string(t->value()) : "-";
}

std::string SelectionText(const archive::ArchiveSelection& s) {
  return (s.source.empty() ? "-" : s.source) + " " + OptTime(s.from) + " " + OptTime(s.to);
}

Status SaveState(const std::string& path, const ReplayState& s) {
  std::string t = std::string(kStateHeader) + "\nselection " + s.selection + "\nlog_end " +
                  std::to_string(s.log_end) + "\n";
  for (const auto& f : s.files)
    t += "file " + f.source + " " + std::to_string(f.size) + " " + f.key + "\n";
  for (const auto& [source, p] : s.pos)
    t += "pos " + source + " " + std::to_string(p.file) + " " + std::to_string(p.line) + "\n";
  return WriteFileAtomically(Env::Default(), path, t);
}

Result<ReplayState> LoadState(const std::string& path) {
  if (!Env::Default()->FileExists(path)) return NotFound("no replay state");
  SY_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(Env::Default(), path));
  std::istringstream in(text);
  ReplayState s;
  std::string line;
  if (!std::getline(in, line) || line != kStateHeader) return DataLoss(path + ": bad header");
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string tag;
    ls >> tag;
    if (tag == "selection") {
      std::getline(ls >> std::ws, s.selection);
    } else if (tag == "log_end") {
      ls >> s.log_end;
    } else if (tag == "file") {
      PlanFile f;
      ls >> f.source >> f.size >> f.key;
      s.files.push_back(std::move(f));
    } else if (tag == "pos") {
      std::string source;
      Position p;
      ls >> source >> p.file >> p.line;
      s.pos[source] = p;
    } else if (!tag.empty()) {
      return DataLoss(path + ": unknown line " + tag);
    }
    if (ls.fail()) return DataLoss(path + ": bad line: " + line);
  }
  return s;
}

std::string Rewrite(std::string_view json, const std::vector<event::RawMember>& members,
                    bool split_ok, std::string_view integrations, std::string* message_id);
std::string IntegrationsFor(std::string_view destination);

// Merges the plan's per-source file sequences into one receivedAt-ordered sequence of events
// (ties: the source listed first). Deterministic for a given plan and positions.
class Merger {
 public:
  Merger(archive::ObjectStore* store, const archive::ArchiveSelection& sel, ReplayState* state,
         std::string destination)
      : store_(store), sel_(sel), state_(state), destination_(std::move(destination)) {
    for (size_t i = 0; i < state->files.size(); ++i) {
      const auto& f = state->files[i];
      auto [it, fresh] = index_.try_emplace(f.source, sources_.size());
      if (fresh) {
        Src src;
        src.name = f.source;
        sources_.push_back(std::move(src));
      }
      sources_[it->second].files.push_back(i);
    }
    for (auto& src : sources_) {
      auto it = state->pos.find(src.name);
      Position p = it != state->pos.end() ? it->second : Position{src.files.front(), 0};
      src.k = 0;
      while (src.k < src.files.size() && src.files[src.k] < p.file)
        ++src.k;
      src.line = p.line;
    }
  }

  // The next event: its source, receive time, messageId and payload (already rewritten for the
  // destination, moved out). false when every source is exhausted.
  Result<bool> Next(std::string* source, std::optional<TimestampMs>* t, std::string* message_id,
                    std::string* payload) {
    Src* best = nullptr;
    for (auto& s : sources_) {
      SY_RETURN_IF_ERROR(Head(s));
      if (!s.has_head) continue;
      if (!best || (s.head_t.value_or(TimestampMs(0)) < best->head_t.value_or(TimestampMs(0))))
        best = &s;
    }
    if (!best) return false;
    *source = best->name;
    *t = best->head_t;
    *message_id = std::move(best->cur->message_ids[best->line]);
    *payload = std::move(best->cur->payloads[best->line]);
    ++best->line;
    best->has_head = false;
    state_->pos[best->name] = {best->files[best->k], best->line};
    return true;
  }

  uint64_t bytes_done() const { return bytes_done_; }
  uint64_t files_done() const { return files_done_; }

 private:
  // One downloaded, decompressed and prepared file: per line its receive time, messageId and
  // rewritten payload. Prepared on a loader thread (the split and rewrite are per event and
  // independent of the merge), so the merging thread only compares times and moves strings.
  struct LoadedFile {
    Status status;
    std::vector<std::optional<TimestampMs>> times;
    std::vector<std::string> message_ids;
    std::vector<std::string> payloads;
    // 0 for a line that is not a JSON object: it is not imported (no destination could take
    // it; the stream's routing skipped such events before it trusted replay's integrations).
    std::vector<uint8_t> deliverable;
  };
  static std::unique_ptr<LoadedFile> Load(archive::ObjectStore* store, std::string key,
                                          std::string destination) {
    auto f = std::make_unique<LoadedFile>();
    std::vector<event::RawMember> members;
    size_t not_objects = 0;
    const std::string integrations = IntegrationsFor(destination);
    f->status = archive::ForEachArchiveLine(store, key, [&](std::string_view line) {
      members.clear();
      bool ok = event::SplitObject(line, &members);
      f->times.push_back(ok ? ReceivedAtIn(members) : std::nullopt);
      f->message_ids.emplace_back();
      f->payloads.push_back(ok ? Rewrite(line, members, ok, integrations, &f->message_ids.back())
                               : std::string());
      f->deliverable.push_back(ok ? 1 : 0);
      not_objects += ok ? 0 : 1;
    });
    if (not_objects > 0) {
      Logger()->warn("replay: {} lines of {} are not JSON objects: not replayed", not_objects, key);
    }
    return f;
  }

  struct Src {
    std::string name;
    std::vector<size_t> files;
    size_t k = 0;
    std::unique_ptr<LoadedFile> cur;  // files[k], once loaded
    // files[k + 1], downloading and decompressing on another thread while files[k] is merged.
    std::future<std::unique_ptr<LoadedFile>> next;
    std::optional<TimestampMs> head_t;
    bool has_head = false;
    size_t line = 0;
  };

  Status Head(Src& s) {
    while (!s.has_head && s.k < s.files.size()) {
      if (!s.cur) {
        s.cur = s.next.valid() ? s.next.get()
                               : Load(store_, state_->files[s.files[s.k]].key, destination_);
        if (!s.cur->status.ok()) {
          Status failed = s.cur->status;
          s.cur.reset();
          return failed;
        }
        if (s.k + 1 < s.files.size())
          s.next = std::async(
              std::launch::async,
              [store = store_, key = state_->files[s.files[s.k + 1]].key, d = destination_] {
                SetThreadName("sy-replay-load");
                return Merger::Load(store, key, d);
              });
      }
      while (s.line < s.cur->times.size()) {
        const auto& t = s.cur->times[s.line];
        if (s.cur->deliverable[s.line] != 0 && archive::InSelection(sel_, t)) {
          s.head_t = t;
          s.has_head = true;
          return Status::Ok();
        }
        ++s.line;
      }
      bytes_done_ += state_->files[s.files[s.k]].size;
      ++files_done_;
      ++s.k;
      s.line = 0;
      s.cur.reset();
      if (s.k < s.files.size()) state_->pos[s.name] = {s.files[s.k], 0};
    }
    return Status::Ok();
  }

  archive::ObjectStore* store_;
  archive::ArchiveSelection sel_;
  ReplayState* state_;
  std::string destination_;
  std::vector<Src> sources_;
  std::map<std::string, size_t> index_;
  uint64_t bytes_done_ = 0;
  uint64_t files_done_ = 0;
};

Result<int> LockDir(const std::string& dir) {
  std::string path = dir + "/LOCK";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kFileMode);
  if (fd < 0) return IoError("open " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return FailedPrecondition("another replay into this destination is running (" + path + ")");
  }
  return fd;
}

void WriteProgressFile(const std::string& path, const ReplayProgress& p, const char* state) {
  std::string t = std::string("state ") + state + "\nfiles_total " + std::to_string(p.files_total) +
                  "\nfiles_done " + std::to_string(p.files_done) + "\nbytes_total " +
                  std::to_string(p.bytes_total) + "\nbytes_done " + std::to_string(p.bytes_done) +
                  "\nevents_imported " + std::to_string(p.events_imported) + "\nevents_done " +
                  std::to_string(p.events_done) + "\n";
  // Informational (metrics and `replay status`): replaced atomically for readers, not synced.
  ReplaceFile(Env::Default(), path, t).IgnoreError();
}

}  // namespace

std::string ReplayDir(const std::string& data_dir, const std::string& destination) {
  return DataDir(data_dir).Replay(destination);
}

namespace {

// The integrations object replayed events carry.
std::string IntegrationsFor(std::string_view destination) {
  return "{\"All\":false,\"" + std::string(destination) + "\":true}";
}

// WithIntegrations on an already split object (`members` of `json`), also reading its messageId.
// `integrations` is IntegrationsFor(destination), built once per file rather than per event.
std::string Rewrite(std::string_view json, const std::vector<event::RawMember>& members,
                    bool split_ok, std::string_view integrations, std::string* message_id) {
  if (!split_ok) return std::string(json);
  if (message_id) {
    for (const auto& m : members) {
      std::string_view v;
      if (m.key == "messageId" && event::PlainString(m.value, &v)) *message_id = std::string(v);
    }
  }
  // Splice: every byte outside the integrations value(s) is copied through as is.
  std::string out;
  out.reserve(json.size() + integrations.size() + 24);
  size_t copied = 0;
  bool replaced = false;
  for (const auto& m : members) {
    if (m.key != "integrations") continue;
    size_t at = static_cast<size_t>(m.value.data() - json.data());
    out.append(json.substr(copied, at - copied));
    out += integrations;
    copied = at + m.value.size();
    replaced = true;
  }
  if (replaced) {
    out.append(json.substr(copied));
    return out;
  }
  size_t brace = json.rfind('}');  // SplitObject accepted an object: it ends with '}'
  out.append(json.substr(0, brace));
  if (!members.empty()) out += ',';
  out += "\"integrations\":";
  out += integrations;
  out.append(json.substr(brace));
  return out;
}

}  // namespace

std::string WithIntegrations(std::string_view json, std::string_view destination) {
  std::vector<event::RawMember> members;
  bool ok = event::SplitObject(json, &members);
  return Rewrite(json, members, ok, IntegrationsFor(destination), nullptr);
}

Result<ReplayProgress> RunReplay(ReplayOptions o) {
  if (!o.metrics) return InvalidArgument("replay needs a metrics registry");
  Clock* clock = SystemClock::Get();
  const int64_t t0 = clock->MonotonicNanos();
  std::string dir = ReplayDir(o.data_dir, o.destination.name);
  std::string progress_path = DataDir(o.data_dir).ReplayProgress(o.destination.name);
  SY_RETURN_IF_ERROR(Env::Default()->CreateDirIfMissing(dir));
  SY_ASSIGN_OR_RETURN(int lock_fd, LockDir(dir));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{lock_fd};
  std::error_code ec;

  std::string state_path = dir + "/state";
  std::string want = SelectionText(o.selection);
  ReplayState state;
  ReplayProgress progress;
  auto loaded = LoadState(state_path);
  if (loaded.ok() && loaded->selection != want && !o.restart) {
    return FailedPrecondition("an interrupted replay into '" + o.destination.name +
                              "' with another selection (" + loaded->selection +
                              ") is pending: run it again with the same options to finish it, "
                              "or pass --restart to discard it");
  }
  if (loaded.ok() && loaded->selection == want) {
    state = std::move(*loaded);
    progress.resumed = true;
  } else {
    if (!loaded.ok() && loaded.status().code() != StatusCode::kNotFound) return loaded.status();
    fs::remove_all(dir + "/log", ec);
    SY_ASSIGN_OR_RETURN(auto files, archive::ListArchive(o.store, o.prefix, o.selection));
    state.selection = want;
    for (auto& f : files)
      state.files.push_back({f.key.source, f.size, f.object_key});
    SY_RETURN_IF_ERROR(SaveState(state_path, state));
  }
  progress.files_total = state.files.size();
  for (const auto& f : state.files)
    progress.bytes_total += f.size;

  log::LocalLogOptions lo;
  lo.dir = dir + "/log";
  // Not fsync'ed per append: the private log is a cache of the archive. A process crash loses
  // nothing written; after a power loss the log may end before the recorded import position,
  // and the replay then starts over (at least once).
  lo.fsync = log::FsyncPolicy::kNever;
  lo.segment_bytes = 64ull << 20;
  // zstd frames: events compress ~20x, so a long replay does not write (and wait for the page
  // cache's writeback of) the whole range uncompressed.
  lo.compression = log::LogCompression::kZstd;
  SY_ASSIGN_OR_RETURN(auto log, log::OpenLocalLog(lo));
  uint64_t end = log->EndOffset().value();
  if (end < state.log_end) {
    Logger()->warn("replay: the private log of {} lost its tail (power loss?); starting over", dir);
    log->Close().IgnoreError();
    log.reset();
    fs::remove_all(dir + "/log", ec);
    SY_ASSIGN_OR_RETURN(auto files, archive::ListArchive(o.store, o.prefix, o.selection));
    state = ReplayState{};
    state.selection = want;
    for (auto& f : files)
      state.files.push_back({f.key.source, f.size, f.object_key});
    SY_RETURN_IF_ERROR(SaveState(state_path, state));
    progress = ReplayProgress{};
    progress.files_total = state.files.size();
    for (const auto& f : state.files)
      progress.bytes_total += f.size;
    SY_ASSIGN_OR_RETURN(log, log::OpenLocalLog(lo));
    end = log->EndOffset().value();
  }
  uint64_t skip = end - state.log_end;  // appended, but the state write did not follow

  delivery::StreamOptions so;
  so.config = o.destination;
  so.config.enabled = true;
  so.display_name = o.display_name;
  so.destination = std::move(o.instance);
  so.log = log.get();
  so.http = o.http;
  so.dead_letters = o.dead_letters;
  so.clock = clock;
  so.metrics = o.metrics;
  so.transform = std::move(o.transform);
  // Every imported event's integrations object is {"All": false, "<destination>": true}
  // (Rewrite): routing need not look at it again.
  so.integrations_preset = true;
  SY_ASSIGN_OR_RETURN(auto stream, delivery::DestinationStream::Start(std::move(so)));

  // Events of the files already done count as done bytes for the progress bar.
  Merger merger(o.store, o.selection, &state, o.destination.name);
  uint64_t bytes_before = 0, files_before = 0;
  {
    // A source's files before its position are done.
    std::map<std::string, size_t> at;
    for (const auto& [s, p] : state.pos)
      at[s] = p.file;
    for (size_t i = 0; i < state.files.size(); ++i) {
      auto it = at.find(state.files[i].source);
      if (it != at.end() && i < it->second) {
        bytes_before += state.files[i].size;
        ++files_before;
      }
    }
  }

  bool import_done = false;
  bool interrupted = false;
  int64_t last_report = 0;
  uint64_t imported_this_run = 0;
  auto report = [&](bool force) {
    int64_t now = clock->MonotonicNanos();
    if (!force && now - last_report < 200'000'000) return;
    last_report = now;
    progress.files_done = files_before + merger.files_done();
    progress.bytes_done = bytes_before + merger.bytes_done();
    progress.events_imported = log->EndOffset().value();
    progress.events_done = stream->committed().value();
    progress.delivered = stream->delivered();
    progress.dead_lettered = stream->dead_lettered();
    progress.skipped = stream->skipped();
    progress.import_done = import_done;
    progress.elapsed_s = (now - t0) / 1e9;
    WriteProgressFile(progress_path, progress, "running");
    PublishReplayProgress(o.metrics, o.destination.name, progress, true);
    if (o.on_progress) o.on_progress(progress);
  };
  auto stop_requested = [&] { return o.interrupt && o.interrupt->load(); };

  std::vector<log::LogRecord> chunk;
  size_t chunk_bytes = 0;
  std::string source, message_id, payload;
  std::optional<TimestampMs> t;
  while (!import_done && !stop_requested()) {
    chunk.clear();
    chunk_bytes = 0;
    size_t max_events = kChunkEvents;
    if (o.rate > 0) max_events = std::max<size_t>(1, std::min<size_t>(max_events, o.rate / 10));
    while (chunk.size() < max_events && chunk_bytes < kChunkBytes) {
      SY_ASSIGN_OR_RETURN(bool more, merger.Next(&source, &t, &message_id, &payload));
      if (!more) {
        import_done = true;
        break;
      }
      if (skip > 0) {
        --skip;
        continue;
      }
      log::LogRecord r;
      r.source = source;
      r.received_at = t.value_or(TimestampMs(0));
      r.message_id = std::move(message_id);
      r.payload = std::move(payload);
      chunk_bytes += r.payload.size();
      chunk.push_back(std::move(r));
    }
    // Up to kAppendsInFlight appends queued at once (the writer may join them into one frame of
    // at most kAppendsInFlight * kAppendEvents events); all are done before the state is saved.
    {
      std::mutex mu;
      std::condition_variable cv;
      size_t in_flight = 0;
      Status failed;
      for (size_t at = 0; at < chunk.size(); at += kAppendEvents) {
        size_t end_at = std::min(chunk.size(), at + kAppendEvents);
        std::vector<log::LogRecord> part(std::make_move_iterator(chunk.begin() + at),
                                         std::make_move_iterator(chunk.begin() + end_at));
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return in_flight < kAppendsInFlight; });
          ++in_flight;
        }
        log->Append(std::move(part), [&](const log::AppendResult& r) {
          std::lock_guard lock(mu);
          if (!r.status.ok() && failed.ok()) failed = r.status;
          --in_flight;
          cv.notify_all();
        });
        imported_this_run += end_at - at;
      }
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return in_flight == 0; });
      if (!failed.ok()) return failed;
    }
    state.log_end = log->EndOffset().value();
    SY_RETURN_IF_ERROR(SaveState(state_path, state));
    report(false);
    if (o.rate > 0) {
      // Hold the import (and so delivery) to the rate.
      double due_s = static_cast<double>(imported_this_run) / static_cast<double>(o.rate);
      double now_s = (clock->MonotonicNanos() - t0) / 1e9;
      if (due_s > now_s)
        std::this_thread::sleep_for(
            std::chrono::microseconds(static_cast<int64_t>((due_s - now_s) * 1e6)));
    }
  }
  // Wait for the stream to finish every imported event.
  while (!stop_requested()) {
    if (import_done && stream->committed() >= log->EndOffset()) break;
    report(false);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  interrupted = stop_requested();
  stream->Stop();
  report(true);
  if (Status s = log->Close(); !s.ok()) return s;
  log.reset();
  PublishReplayProgress(o.metrics, o.destination.name, progress, false);
  if (interrupted) {
    WriteProgressFile(progress_path, progress, "interrupted");
    return Unavailable("interrupted");
  }
  WriteProgressFile(progress_path, progress, "done");
  fs::remove_all(dir, ec);
  if (ec) Logger()->warn("replay: cannot remove {}: {}", dir, ec.message());
  return progress;
}

namespace {

struct ReplayGauges {
  GaugeFamily* events_imported;
  GaugeFamily* events_done;
  GaugeFamily* bytes_total;
  GaugeFamily* bytes_done;
  GaugeFamily* running;
};

ReplayGauges DeclareReplayGauges(MetricsRegistry* m) {
  return {
      m->Gauges("switchyard_replay_events_imported",
                "Events of the latest replay into this destination read from the archive.",
                {"destination"}),
      m->Gauges("switchyard_replay_events_done",
                "Events of the latest replay with a final outcome (delivered, skipped or "
                "dead-lettered).",
                {"destination"}),
      m->Gauges("switchyard_replay_bytes_total",
                "Compressed archive bytes the latest replay selected.", {"destination"}),
      m->Gauges("switchyard_replay_bytes_done",
                "Compressed archive bytes the latest replay has read.", {"destination"}),
      m->Gauges("switchyard_replay_running", "1 while a replay into this destination is running.",
                {"destination"}),
  };
}

}  // namespace

void PublishReplayProgress(MetricsRegistry* metrics, const std::string& destination,
                           const ReplayProgress& p, bool running) {
  ReplayGauges g = DeclareReplayGauges(metrics);
  g.events_imported->With({destination})->Set(static_cast<double>(p.events_imported));
  g.events_done->With({destination})->Set(static_cast<double>(p.events_done));
  g.bytes_total->With({destination})->Set(static_cast<double>(p.bytes_total));
  g.bytes_done->With({destination})->Set(static_cast<double>(p.bytes_done));
  g.running->With({destination})->Set(running ? 1 : 0);
}

void PublishReplayProgressFiles(MetricsRegistry* metrics, const std::string& data_dir) {
  DeclareReplayGauges(metrics);
  std::error_code ec;
  fs::path root = DataDir(data_dir).Replays();
  if (!fs::is_directory(root, ec)) return;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    std::string name = e.path().filename().string();
    if (!name.ends_with(".progress")) continue;
    std::ifstream in(e.path());
    std::map<std::string, std::string> row;
    std::string k, v;
    while (in >> k >> v)
      row[k] = v;
    auto number = [&](const char* key) -> uint64_t {
      auto it = row.find(key);
      return it == row.end() ? 0 : std::strtoull(it->second.c_str(), nullptr, 10);
    };
    ReplayProgress p;
    p.events_imported = number("events_imported");
    p.events_done = number("events_done");
    p.bytes_total = number("bytes_total");
    p.bytes_done = number("bytes_done");
    PublishReplayProgress(metrics, name.substr(0, name.size() - 9), p, row["state"] == "running");
  }
}

}  // namespace sy::replay
