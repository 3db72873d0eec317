#include "ingest/dedupe_index.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <tuple>

#include "base/coding.h"
#include "base/crc32c.h"
#include "base/logging.h"
#include "base/thread_name.h"

namespace sy::ingest {
namespace {

// Journal chunk: header (24 bytes) then `count` entries of 24 bytes, all little-endian.
//   u32 magic "SYDJ" | u32 count | u64 covered_end | u32 crc32c(entries, then header bytes 0..15)
//   | u32 reserved(0) | entries: u64 key.lo, u64 key.hi, i64 time_ms
constexpr uint32_t kMagic = 0x4A445953;  // "SYDJ"
constexpr size_t kHeader = 24;
constexpr size_t kEntry = 24;
// Entries per appended chunk: bounds the buffer a Flush needs whatever the commit rate.
constexpr size_t kChunkEntries = 16 * 1024;
// The journal is rewritten when over 1 MiB and more than twice its live entries.
constexpr int64_t kCompactAboveBytes = 1 << 20;
// Bits per key of a run's filter while the budget allows (~1 % false positives).
constexpr int kFullFilterBits = 10;
constexpr char kRunPrefix[] = "run-";
constexpr char kRunSuffix[] = ".sdr";

std::shared_ptr<spdlog::logger> Logger() {
  static auto l = ModuleLogger("ingest");
  return l;
}

std::string EncodeChunk(const std::deque<DedupeEntry>& order, size_t begin, size_t end,
                        Offset covered_end) {
  const size_t count = end - begin;
  std::string buf(kHeader + count * kEntry, '\0');
  for (size_t i = 0; i < count; ++i) {
    const DedupeEntry& e = order[begin + i];
    char* p = buf.data() + kHeader + i * kEntry;
    EncodeFixed64(p, e.key.lo);
    EncodeFixed64(p + 8, e.key.hi);
    EncodeFixed64(p + 16, static_cast<uint64_t>(e.time_ms));
  }
  EncodeFixed32(buf.data(), kMagic);
  EncodeFixed32(buf.data() + 4, static_cast<uint32_t>(count));
  EncodeFixed64(buf.data() + 8, covered_end.value());
  uint32_t crc = crc32c::Value(buf.data() + kHeader, count * kEntry);
  crc = crc32c::Extend(crc, buf.data(), 16);
  EncodeFixed32(buf.data() + 16, crc);
  return buf;
}

bool IsRunName(const std::string& name) {
  const size_t p = sizeof(kRunPrefix) - 1, s = sizeof(kRunSuffix) - 1;
  return name.size() > p + s && name.compare(0, p, kRunPrefix) == 0 &&
         name.compare(name.size() - s, s, kRunSuffix) == 0;
}

size_t PowerOfTwoAtMost(size_t n) {
  size_t p = 1;
  while (p * 2 <= n)
    p *= 2;
  return p;
}

}  // namespace

bool DedupeIndex::RunSet::MayContain(const Hash128& key) const {
  for (const auto& run : runs) {
    if (run->MayContain(key)) return true;
  }
  return false;
}

DedupeIndex::DedupeIndex(const Options& options)
    : options_(options),
      env_(options.env != nullptr ? options.env : Env::Default()),
      journal_path_(options.dir + "/dedupe.journal") {
  if (options.max_memory_bytes <= 0) return;
  // How the budget is shared (docs/formats/dedupe.md, "Memory"):
  // - each shard's table may grow to a power of two of slots within 40 % of the budget; it
  //   starts spilling at a load of 0.3 and spills down to 0.15, and refuses a claim
  //   (kUnavailable) rather than grow past it (load 1/2) when spilling cannot keep up;
  // - the commit-order queue (24 B per key in memory) and a spill's sorted copy of the keys it
  //   writes, each at most half a table's slots;
  // - the rest goes to the runs' filters and fences.
  bounded_ = true;
  const int64_t m = options.max_memory_bytes;
  const size_t slot = sizeof(KeyTable<Entry>::Slot);
  shard_slots_cap_ =
      std::max<size_t>(16, PowerOfTwoAtMost(static_cast<size_t>(m / 10 * 4) / kShards / slot));
  const size_t slots = kShards * shard_slots_cap_;
  spill_above_keys_ = slots * 3 / 10;
  spill_down_to_keys_ = slots * 3 / 20;
  const int64_t tables = static_cast<int64_t>(slots * slot);
  const int64_t queue = static_cast<int64_t>(slots / 2 * sizeof(DedupeEntry));
  filter_budget_bytes_ = std::max<int64_t>(0, m - tables - 2 * queue);
}

DedupeIndex::~DedupeIndex() {
  {
    std::lock_guard lock(spill_mu_);
    stopping_ = true;
  }
  spill_cv_.notify_all();
  if (spiller_.joinable()) spiller_.join();
}

Hash128 DedupeIndex::Key(std::string_view source, std::string_view message_id) {
  return HashPair(source, message_id);
}

Result<std::unique_ptr<DedupeIndex>> DedupeIndex::Open(const Options& options, log::EventLog* log) {
  std::unique_ptr<DedupeIndex> idx(new DedupeIndex(options));
  SY_RETURN_IF_ERROR(CreateDirDurably(idx->env_, options.dir));
  auto start = std::chrono::steady_clock::now();
  SY_RETURN_IF_ERROR(idx->OpenRuns());
  Offset covered;
  SY_RETURN_IF_ERROR(idx->LoadJournal(&covered));
  size_t from_journal = idx->order_.size();
  SY_RETURN_IF_ERROR(idx->ScanLog(log, covered));
  idx->covered_end_ = log->EndOffset();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  Logger()->info(
      "dedupe index loaded keys={} from_journal={} runs={} spilled_keys={} "
      "scanned_from_offset={} duration_ms={}",
      idx->size(), from_journal, idx->runs(), idx->spilled_keys(), covered.value(), ms);
  if (options.spill_in_background && idx->bounded_) {
    idx->spiller_ = std::thread([p = idx.get()] { p->SpillLoop(); });
  }
  return idx;
}

Status DedupeIndex::OpenRuns() {
  SY_ASSIGN_OR_RETURN(auto names, env_->ListDir(options_.dir));
  std::sort(names.begin(), names.end());
  std::vector<std::string> paths;
  uint64_t total = 0;
  for (const auto& name : names) {
    const std::string path = options_.dir + "/" + name;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
      // A run or journal rewrite that a crash interrupted: never renamed, so never relied on.
      SY_RETURN_IF_ERROR(env_->RemoveFile(path));
      continue;
    }
    if (!IsRunName(name)) continue;
    uint64_t number = 0;
    if (std::sscanf(name.c_str() + sizeof(kRunPrefix) - 1, "%" SCNu64, &number) == 1)
      next_run_number_ = std::max(next_run_number_, number + 1);
    auto count = DedupeRun::ReadCount(env_, path);
    total += count.ok() ? *count : 0;
    paths.push_back(path);
  }
  const int bits = BitsPerKeyFor(total, 0, 0);
  const int64_t now = options_.clock->Now().value();
  auto set = std::make_shared<RunSet>();
  for (const auto& path : paths) {
    auto run = DedupeRun::Open(env_, path, bits);
    if (!run.ok()) {
      // Damaged on disk (it was complete and synced when renamed): its keys can no longer be
      // found, so a retry of one of their events would be stored again. Kept for inspection.
      Logger()->error("dedupe run unreadable, set aside status={}", run.status().ToString());
      SY_RETURN_IF_ERROR(env_->Rename(path, path + ".damaged"));
      continue;
    }
    if (now - (*run)->max_time_ms() >= options_.window_ms || (*run)->count() == 0) {
      SY_RETURN_IF_ERROR(env_->RemoveFile(path));
      continue;
    }
    set->runs.push_back(std::move(*run));
  }
  std::sort(set->runs.begin(), set->runs.end(),
            [](const auto& a, const auto& b) { return a->min_time_ms() < b->min_time_ms(); });
  PublishRuns(std::move(set));
  return Status::Ok();
}

Status DedupeIndex::LoadJournal(Offset* covered_end) {
  *covered_end = Offset(0);
  if (!env_->FileExists(journal_path_)) {
    SY_ASSIGN_OR_RETURN(journal_, env_->OpenWritable(journal_path_, /*truncate=*/false));
    journal_bytes_ = 0;
    // The new file's directory entry must survive a power cut before chunks rely on it.
    return env_->SyncDir(options_.dir);
  }
  SY_ASSIGN_OR_RETURN(std::string data, ReadWholeFile(env_, journal_path_));
  int64_t now = options_.clock->Now().value();
  size_t pos = 0;
  while (pos + kHeader <= data.size()) {
    const char* h = data.data() + pos;
    uint32_t count = DecodeFixed32(h + 4);
    if (DecodeFixed32(h) != kMagic || pos + kHeader + size_t{count} * kEntry > data.size()) break;
    uint32_t crc = crc32c::Value(h + kHeader, size_t{count} * kEntry);
    crc = crc32c::Extend(crc, h, 16);
    if (crc != DecodeFixed32(h + 16)) break;
    *covered_end = std::max(*covered_end, Offset(DecodeFixed64(h + 8)));
    for (uint32_t i = 0; i < count; ++i) {
      const char* e = h + kHeader + size_t{i} * kEntry;
      Journaled j{{DecodeFixed64(e), DecodeFixed64(e + 8)},
                  static_cast<int64_t>(DecodeFixed64(e + 16))};
      if (now - j.time_ms >= options_.window_ms) continue;
      *ShardOf(j.key).keys.TryEmplace(j.key, Entry{}).first = Entry{j.time_ms, 0};
      order_.push_back(j);
    }
    pos += kHeader + size_t{count} * kEntry;
  }
  SY_ASSIGN_OR_RETURN(journal_, env_->OpenWritable(journal_path_, /*truncate=*/false));
  journal_bytes_ = static_cast<int64_t>(pos);
  if (pos != data.size()) {
    // A torn last chunk (crash during Flush): its keys are still in the log, which we rescan.
    // The first Flush rewrites the journal whole rather than append after the damage.
    Logger()->warn("dedupe journal has a torn tail; it will be rewritten path={} bytes={} at={}",
                   journal_path_, data.size() - pos, pos);
    journal_needs_rewrite_ = true;
  }
  return Status::Ok();
}

Status DedupeIndex::ScanLog(log::EventLog* log, Offset from) {
  SY_ASSIGN_OR_RETURN(auto reader, log->OpenReader());
  if (from > reader->position()) SY_RETURN_IF_ERROR(reader->Seek(from));
  int64_t now = options_.clock->Now().value();
  while (true) {
    SY_ASSIGN_OR_RETURN(auto entries, reader->Read(4096, 16 << 20));
    if (entries.empty()) break;
    for (const auto& e : entries) {
      if (now - e.received_at.value() >= options_.window_ms) continue;
      Hash128 k = Key(e.source, e.message_id);
      *ShardOf(k).keys.TryEmplace(k, Entry{}).first = Entry{e.received_at.value(), 0};
      order_.push_back({k, e.received_at.value()});
      ++unflushed_;
    }
  }
  return Status::Ok();
}

DedupeIndex::ClaimResult DedupeIndex::Claim(const Hash128& key, uint64_t claimant) {
  int64_t now = options_.clock->Now().value();
  Shard& shard = ShardOf(key);
  std::shared_ptr<const RunSet> runs;
  bool pending = true;  // the key is now pending for us in memory (else: memory is full)
  bool full = false;    // memory is full and no run may hold the key: refused
  {
    std::lock_guard lock(shard.mu);
    Entry* entry = nullptr;
    bool inserted = false;
    if (bounded_ && (shard.keys.size() + 1) * 2 > shard_slots_cap_) {
      // The table is at its share of the budget (spilling is behind or failing): a key held in
      // memory or in a run is answered as usual; a new one is refused rather than grow memory.
      entry = shard.keys.Find(key);
      if (entry == nullptr) {
        // Keys are spread evenly over shards, but not exactly: one shard can fill before the
        // total reaches the spill threshold. Ask for a spill either way.
        shard_full_.store(true, std::memory_order_relaxed);
        if (shard.runs == nullptr || !shard.runs->MayContain(key)) {
          full = true;
        } else {
          runs = shard.runs;
          pending = false;
        }
      }
    } else {
      std::tie(entry, inserted) = shard.keys.TryEmplace(key, Entry{now, claimant});
    }
    if (full) {
      // Falls through to wake the spiller, outside the shard's lock.
    } else if (entry != nullptr && !inserted) {
      Entry& e = *entry;
      if (e.claimant == 0) {
        if (now - e.time_ms < options_.window_ms) return ClaimResult::kDuplicate;
        // Expired: a new event as far as dedupe is concerned. Runs can only hold older copies
        // of a key held in memory, so they are expired too.
        e = Entry{now, claimant};
        return ClaimResult::kNew;
      }
      return e.claimant == claimant ? ClaimResult::kDuplicate : ClaimResult::kInFlight;
    }
    if (!full && pending) {
      // New to memory. Nothing spilled, or no run's filter has it: new, without any I/O.
      if (shard.runs == nullptr || !shard.runs->MayContain(key)) return ClaimResult::kNew;
      runs = shard.runs;
    }
  }
  if (full) {
    WakeSpiller();
    return ClaimResult::kUnavailable;
  }
  // A run may hold the key. It is pending for us meanwhile, so a concurrent claim of the same key
  // answers kInFlight. The run lookup is exact: a filter false positive ends here as kNew.
  run_reads_.fetch_add(1, std::memory_order_relaxed);
  bool stored = false;
  Status error;
  for (const auto& run : runs->runs) {
    if (!run->MayContain(key)) continue;
    auto time = run->Find(key);
    if (!time.ok()) {
      error = time.status();
      break;
    }
    if (time->has_value() && now - **time < options_.window_ms) {
      stored = true;
      break;
    }
  }
  if (!stored && error.ok() && pending) return ClaimResult::kNew;
  if (pending) {
    std::lock_guard lock(shard.mu);
    Entry* e = shard.keys.Find(key);
    if (e != nullptr && e->claimant == claimant) shard.keys.Erase(key);
  }
  if (!error.ok()) {
    SY_LOG_RATE_LIMITED(Logger(), warn, "dedupe run read failed status={}", error.ToString());
    return ClaimResult::kUnavailable;
  }
  return stored ? ClaimResult::kDuplicate : ClaimResult::kUnavailable;
}

void DedupeIndex::Prefetch(std::span<const Hash128> keys) const {
  for (const auto& k : keys)
    ShardOf(k).keys.Prefetch(k);
}

void DedupeIndex::Commit(const std::vector<Hash128>& keys, TimestampMs received_at, Offset end) {
  Prefetch(keys);
  for (const auto& k : keys) {
    Shard& shard = ShardOf(k);
    std::lock_guard lock(shard.mu);
    if (Entry* e = shard.keys.Find(k)) *e = Entry{received_at.value(), 0};
  }
  bool spill = false;
  {
    std::lock_guard lock(mu_);
    for (const auto& k : keys)
      order_.push_back({k, received_at.value()});
    unflushed_ += keys.size();
    if (end > covered_end_) covered_end_ = end;
    spill = bounded_ && order_.size() > spill_above_keys_;
  }
  if (spill) WakeSpiller();
}

void DedupeIndex::WakeSpiller() {
  if (!spiller_.joinable()) return;
  std::lock_guard lock(spill_mu_);
  if (!spill_wanted_) {
    spill_wanted_ = true;
    spill_cv_.notify_one();
  }
}

void DedupeIndex::Release(const std::vector<Hash128>& keys, uint64_t claimant) {
  for (const auto& k : keys) {
    Shard& shard = ShardOf(k);
    std::lock_guard lock(shard.mu);
    Entry* e = shard.keys.Find(k);
    if (e != nullptr && e->claimant == claimant) shard.keys.Erase(k);
  }
}

void DedupeIndex::ExpireLocked(int64_t now_ms) {
  while (!order_.empty() && now_ms - order_.front().time_ms >= options_.window_ms) {
    Shard& shard = ShardOf(order_.front().key);
    std::lock_guard lock(shard.mu);
    Entry* e = shard.keys.Find(order_.front().key);
    if (e != nullptr && e->claimant == 0 && e->time_ms == order_.front().time_ms) {
      shard.keys.Erase(order_.front().key);
    }
    order_.pop_front();
  }
  unflushed_ = std::min(unflushed_, order_.size());
}

void DedupeIndex::PublishRuns(std::shared_ptr<const RunSet> runs) {
  uint64_t keys = 0;
  int64_t bytes = 0;
  for (const auto& run : runs->runs) {
    keys += run->count();
    bytes += static_cast<int64_t>(run->memory_bytes());
  }
  std::shared_ptr<const RunSet> for_shards = runs->runs.empty() ? nullptr : runs;
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mu);
    shard.runs = for_shards;
  }
  spilled_keys_.store(keys, std::memory_order_relaxed);
  run_count_.store(runs->runs.size(), std::memory_order_relaxed);
  runs_memory_bytes_.store(bytes, std::memory_order_relaxed);
  runs_ = std::move(runs);
}

int DedupeIndex::BitsPerKeyFor(uint64_t keys, uint64_t others_keys, int64_t others_bytes) const {
  if (!bounded_ || keys == 0) return kFullFilterBits;
  // An equal share of the filter budget for every key on disk, and no more than what the other
  // runs left. Fences take ~1 bit per key of the same budget.
  const double fair =
      8.0 * static_cast<double>(filter_budget_bytes_) / static_cast<double>(keys + others_keys);
  const double left =
      8.0 * static_cast<double>(filter_budget_bytes_ - others_bytes) / static_cast<double>(keys);
  const double bits = std::min(fair, left) - 1.0;
  if (bits < 1.0) return 0;
  return std::min(kFullFilterBits, static_cast<int>(bits));
}

std::string DedupeIndex::NewRunPath() {
  char name[40];
  std::snprintf(name, sizeof(name), "%s%012" PRIu64 "%s", kRunPrefix, next_run_number_++,
                kRunSuffix);
  return options_.dir + "/" + name;
}

bool DedupeIndex::OverSpillThreshold() const {
  std::lock_guard lock(mu_);
  return bounded_ &&
         (order_.size() > spill_above_keys_ || shard_full_.load(std::memory_order_relaxed));
}

Status DedupeIndex::Spill() {
  const int64_t now = options_.clock->Now().value();
  std::vector<Journaled> keys;
  size_t n = 0;
  {
    std::lock_guard lock(mu_);
    // A full shard asks for a spill below the threshold: then half of what memory holds goes.
    size_t keep = spill_down_to_keys_;
    if (shard_full_.exchange(false, std::memory_order_relaxed))
      keep = std::min(keep, order_.size() / 2);
    if (order_.size() <= keep) return Status::Ok();
    n = order_.size() - keep;
    keys.assign(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(n));
  }
  // One entry per key (a key re-stored after its window appears twice: keep the later time),
  // live keys first; expired ones are only forgotten.
  std::sort(keys.begin(), keys.end(), [](const Journaled& a, const Journaled& b) {
    return a.key == b.key ? a.time_ms > b.time_ms : KeyLess(a.key, b.key);
  });
  keys.erase(std::unique(keys.begin(), keys.end(),
                         [](const Journaled& a, const Journaled& b) { return a.key == b.key; }),
             keys.end());
  auto live_end = std::stable_partition(keys.begin(), keys.end(), [&](const Journaled& j) {
    return now - j.time_ms < options_.window_ms;
  });
  const uint64_t live = static_cast<uint64_t>(live_end - keys.begin());
  std::unique_ptr<RunWriter> writer;
  std::shared_ptr<DedupeRun> run;
  if (live > 0) {
    const int bits = BitsPerKeyFor(live, spilled_keys_.load(), runs_memory_bytes_.load());
    SY_ASSIGN_OR_RETURN(writer, RunWriter::Create(env_, NewRunPath(), live, bits));
    for (auto it = keys.begin(); it != live_end; ++it)
      SY_RETURN_IF_ERROR(writer->Add(*it));
    SY_ASSIGN_OR_RETURN(run, writer->Seal());
    auto set = std::make_shared<RunSet>(*runs_);
    auto at = std::upper_bound(
        set->runs.begin(), set->runs.end(), run,
        [](const auto& a, const auto& b) { return a->min_time_ms() < b->min_time_ms(); });
    set->runs.insert(at, run);
    // Published to every shard before any key leaves memory: a claim that no longer finds a
    // key in its shard's table finds the run in the same shard.
    PublishRuns(std::move(set));
  }
  // Memory is freed before the run is made durable, so claims refused at a full table wait for
  // the write, not for the fsyncs. The keys stay in order_ (so in the journal's reach) until the
  // run is durable.
  for (const auto& j : keys) {
    Shard& shard = ShardOf(j.key);
    std::lock_guard lock(shard.mu);
    Entry* e = shard.keys.Find(j.key);
    if (e != nullptr && e->claimant == 0 && e->time_ms == j.time_ms) shard.keys.Erase(j.key);
  }
  if (writer != nullptr) {
    if (Status s = writer->Persist(); !s.ok()) {
      // Put the live keys back in memory before the run leaves the shards, so no claim finds a
      // key in neither. A pending claim of one of them found it in the run (it answers
      // duplicate): the committed entry replaces its pending one.
      for (auto it = keys.begin(); it != live_end; ++it) {
        Shard& shard = ShardOf(it->key);
        std::lock_guard lock(shard.mu);
        auto [e, inserted] = shard.keys.TryEmplace(it->key, Entry{it->time_ms, 0});
        if (!inserted && (e->claimant != 0 || e->time_ms < it->time_ms)) *e = Entry{it->time_ms, 0};
      }
      auto set = std::make_shared<RunSet>();
      for (const auto& r : runs_->runs) {
        if (r != run) set->runs.push_back(r);
      }
      PublishRuns(std::move(set));
      return s;
    }
  }
  {
    std::lock_guard lock(mu_);
    order_.erase(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(n));
    unflushed_ = std::min(unflushed_, order_.size());
  }
  spilled_since_rewrite_ = true;
  Logger()->debug("dedupe spilled keys={} runs={} bits_per_key={}", live, runs(),
                  runs_->runs.empty() ? 0 : runs_->runs.back()->bits_per_key());
  return Status::Ok();
}

Status DedupeIndex::DropExpiredRuns(int64_t now_ms) {
  std::vector<std::string> gone;
  auto set = std::make_shared<RunSet>();
  for (const auto& run : runs_->runs) {
    if (now_ms - run->max_time_ms() >= options_.window_ms) {
      gone.push_back(run->path());
    } else {
      set->runs.push_back(run);
    }
  }
  if (gone.empty()) return Status::Ok();
  PublishRuns(std::move(set));
  // A removal lost to a power cut leaves an expired run, which the next open removes again.
  Status result;
  for (const auto& path : gone) {
    if (Status s = env_->RemoveFile(path); !s.ok() && result.ok()) result = s;
  }
  return result;
}

Status DedupeIndex::MergeExcessRuns() {
  std::lock_guard merge_lock(merge_mu_);
  while (true) {
    std::shared_ptr<DedupeRun> a, b;
    int bits = 0;
    std::string path;
    int64_t expired_at_or_before = 0;
    {
      std::lock_guard lock(flush_mu_);
      const auto& runs = runs_->runs;
      if (runs.size() <= kMaxRuns) return Status::Ok();
      size_t best = 0;
      for (size_t i = 1; i + 1 < runs.size(); ++i) {
        if (runs[i]->count() + runs[i + 1]->count() < runs[best]->count() + runs[best + 1]->count())
          best = i;
      }
      a = runs[best];
      b = runs[best + 1];
      const uint64_t others_keys = spilled_keys_.load() - a->count() - b->count();
      const int64_t others_bytes =
          runs_memory_bytes_.load() - static_cast<int64_t>(a->memory_bytes() + b->memory_bytes());
      bits = BitsPerKeyFor(a->count() + b->count(), others_keys, others_bytes);
      path = NewRunPath();
      expired_at_or_before = options_.clock->Now().value() - options_.window_ms;
    }
    // The merge reads and writes without flush_mu_: spills, claims and the journal go on.
    SY_ASSIGN_OR_RETURN(auto merged, MergeRuns(env_, *a, *b, path, expired_at_or_before, bits));
    bool installed = false;
    {
      std::lock_guard lock(flush_mu_);
      const auto& runs = runs_->runs;
      auto ia = std::find(runs.begin(), runs.end(), a);
      auto ib = std::find(runs.begin(), runs.end(), b);
      if (ia != runs.end() && ib != runs.end()) {
        auto set = std::make_shared<RunSet>();
        for (const auto& run : runs) {
          if (run == a) {
            if (merged->count() > 0) set->runs.push_back(merged);
          } else if (run != b) {
            set->runs.push_back(run);
          }
        }
        PublishRuns(std::move(set));
        installed = true;
      }
    }
    // Inputs (or a merge made moot by an input expiring meanwhile) go once the merged run is
    // durable and published. Lost to a power cut, they come back as copies of what the merged
    // run holds: harmless, merged again later.
    if (!installed || merged->count() == 0) SY_RETURN_IF_ERROR(env_->RemoveFile(merged->path()));
    if (installed) {
      SY_RETURN_IF_ERROR(env_->RemoveFile(a->path()));
      SY_RETURN_IF_ERROR(env_->RemoveFile(b->path()));
    }
  }
}

Status DedupeIndex::RewriteJournal() {
  std::string data;
  size_t written = 0;
  {
    std::lock_guard lock(mu_);
    data = EncodeChunk(order_, 0, order_.size(), covered_end_);
    written = unflushed_;
  }
  journal_.reset();
  Status s = WriteFileAtomically(env_, journal_path_, data);
  // Whatever happened, append to what is now under the journal's name: the old file if the
  // rename did not happen (`journal_needs_rewrite_` keeps us from appending after damage), the
  // new one if it did.
  auto reopened = env_->OpenWritable(journal_path_, /*truncate=*/false);
  if (!reopened.ok()) {
    journal_needs_rewrite_ = true;
    return s.ok() ? reopened.status() : s;
  }
  journal_ = std::move(*reopened);
  if (!s.ok()) {
    journal_needs_rewrite_ = true;
    return s;
  }
  journal_bytes_ = static_cast<int64_t>(data.size());
  journal_needs_rewrite_ = false;
  spilled_since_rewrite_ = false;
  std::lock_guard lock(mu_);
  unflushed_ -= std::min(unflushed_, written);
  return Status::Ok();
}

Status DedupeIndex::WriteJournal() {
  size_t live = 0, first = 0, count = 0;
  Offset covered;
  {
    std::lock_guard lock(mu_);
    live = order_.size();
    count = unflushed_;
    first = order_.size() - unflushed_;
    covered = covered_end_;
  }
  // Rewritten whole after a failed write, and when more than half of it is keys that expired
  // (past 1 MiB) or were spilled to runs (whatever its size: the journal then holds no more
  // than what memory holds, so loading it at open stays within the budget).
  const bool mostly_dead = journal_bytes_ > 2 * static_cast<int64_t>(live * kEntry);
  if (journal_needs_rewrite_ || journal_ == nullptr ||
      (mostly_dead && (spilled_since_rewrite_ || journal_bytes_ > kCompactAboveBytes))) {
    return RewriteJournal();
  }
  // Appended in chunks of at most kChunkEntries; only the last one claims the new covered_end
  // (the others' keys do not cover everything below it).
  for (size_t done = 0; done < count;) {
    const size_t n = std::min(kChunkEntries, count - done);
    std::string chunk;
    {
      std::lock_guard lock(mu_);
      chunk = EncodeChunk(order_, first + done, first + done + n,
                          done + n == count ? covered : Offset(0));
    }
    Status s = journal_->WriteAt(static_cast<uint64_t>(journal_bytes_), chunk);
    if (s.ok()) s = journal_->Sync();
    if (!s.ok()) {
      // Never append after a failed write or fdatasync (the file's state is unknown, and a
      // retried fdatasync can report success for pages the kernel dropped): the next Flush
      // rewrites the journal whole, through a new file.
      journal_needs_rewrite_ = true;
      return s;
    }
    journal_bytes_ += static_cast<int64_t>(chunk.size());
    done += n;
    std::lock_guard lock(mu_);
    unflushed_ -= std::min(unflushed_, n);
  }
  return Status::Ok();
}

Status DedupeIndex::Flush() {
  Status result;
  {
    std::lock_guard flush_lock(flush_mu_);
    const int64_t now = options_.clock->Now().value();
    {
      std::lock_guard lock(mu_);
      ExpireLocked(now);
    }
    result = DropExpiredRuns(now);
    if (OverSpillThreshold()) {
      if (Status s = Spill(); !s.ok() && result.ok()) result = s;
    }
  }
  if (Status s = MergeExcessRuns(); !s.ok() && result.ok()) result = s;
  // The journal last, and even when spilling failed: it is what a restart needs.
  std::lock_guard flush_lock(flush_mu_);
  if (Status s = WriteJournal(); !s.ok()) result = s;
  return result;
}

void DedupeIndex::SpillLoop() {
  SetThreadName("sy-dedupe-spill");
  std::unique_lock lock(spill_mu_);
  while (!stopping_) {
    spill_cv_.wait(lock, [&] { return stopping_ || spill_wanted_; });
    if (stopping_) break;
    lock.unlock();
    Status s;
    {
      // Spills only: merging is Flush()'s (on the server's flusher), so that a long merge never
      // holds up the next spill.
      std::lock_guard flush_lock(flush_mu_);
      if (OverSpillThreshold()) s = Spill();
    }
    if (!s.ok()) SY_LOG_RATE_LIMITED(Logger(), warn, "dedupe spill failed status={}", s.ToString());
    lock.lock();
    spill_wanted_ = false;
    // A failing disk is retried once a second, not in a loop; claims past the table's share
    // answer kUnavailable meanwhile.
    if (!s.ok()) spill_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
  }
}

size_t DedupeIndex::size() const {
  size_t n = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard.mu);
    n += shard.keys.size();
  }
  return n + spilled_keys_.load(std::memory_order_relaxed);
}

int64_t DedupeIndex::memory_bytes() const {
  int64_t bytes = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard.mu);
    bytes += static_cast<int64_t>(shard.keys.capacity_bytes());
  }
  {
    std::lock_guard lock(mu_);
    bytes += static_cast<int64_t>(order_.size() * sizeof(Journaled));
  }
  return bytes + runs_memory_bytes_.load(std::memory_order_relaxed);
}

uint64_t DedupeIndex::spilled_keys() const {
  return spilled_keys_.load(std::memory_order_relaxed);
}

size_t DedupeIndex::runs() const {
  return run_count_.load(std::memory_order_relaxed);
}

}  // namespace sy::ingest
