// DedupeIndex: remembers which (source, messageId) pairs were stored within the dedupe window,
// so a retried event is acknowledged without being stored twice.
//
// Lifecycle of a key: Claim() marks it pending for one request; when that request's append is
// durable, Commit() makes it permanent for the window (and queues it for the journal); if the
// append failed, Release() forgets it so the client's retry is stored.
//
// Where keys live (docs/formats/dedupe.md). Memory is bounded by Options::max_memory_bytes
// (`ingest.dedupe.max_memory`) whatever the window and the rate:
// - the recent keys in memory, in a sharded hash table, as long as they fit their share of the
//   budget: a claim then costs what it cost before the bound (one table probe);
// - when they would not fit, the oldest committed keys are spilled to an immutable run file on
//   disk (DedupeRun: sorted keys, written through the Env) and forgotten in memory. Each run keeps
//   a Bloom filter and fence keys in memory. A claim of a key that is not in memory checks each
//   run's filter; only a "maybe" (a real duplicate, or a false positive) reads the run, exactly.
// - runs are merged (by Flush) so there are at most kMaxRuns, and deleted once every key in them
//   is older than the window.
//
// Persistence: committed keys still in memory are appended to `<dir>/dedupe.journal` in
// checksummed chunks by Flush() (the server calls it every 2 s and at shutdown); spilled keys are
// in run files, durable before they leave memory. Each chunk records the log offset its keys
// cover; at open the runs are opened, the journal replayed and the log scanned from that offset
// on, so the window survives a restart (and a crash) with no gap. Every file goes through the Env
// (base/env.h): a failed write or fsync is an error naming the path, and the keys stay queued.
//
// Thread safety: all methods are thread-safe. Claim/Prefetch/Release run on I/O threads, Commit
// on the log's completion thread, Flush (journal, expiry, merges) on the server's flusher;
// spilling runs on the index's own thread (`sy-dedupe-spill`) when Options::spill_in_background,
// and in Flush() too.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/env.h"
#include "base/hash.h"
#include "base/status.h"
#include "base/types.h"
#include "ingest/dedupe_run.h"
#include "ingest/key_table.h"
#include "log/event_log.h"

namespace sy::ingest {

class DedupeIndex {
 public:
  enum class ClaimResult {
    kNew,        // not seen: now pending for this claimant
    kDuplicate,  // stored before within the window (or claimed earlier in the same request)
    kInFlight,   // another request holds it pending: its fate is unknown, ask the client to retry
    // The index cannot answer now (a run could not be read, or memory is full while spilling is
    // failing): nothing was claimed; ask the client to retry, never guess.
    kUnavailable,
  };

  struct Options {
    std::string dir;  // holds dedupe.journal and the run files
    int64_t window_ms = 24LL * 3600 * 1000;
    Clock* clock = nullptr;
    // Everything the index holds in memory: the recent keys' table, their commit-order queue and
    // the runs' filters and fences (docs/formats/dedupe.md, "Memory"). <= 0: no bound (every key
    // of the window in memory, as before the bound existed; benchmarks compare against it).
    int64_t max_memory_bytes = 128LL << 20;
    Env* env = nullptr;  // nullptr: Env::Default()
    // Spill on the index's own thread as soon as memory passes its share (the server); false:
    // only Flush() spills (tests, for determinism).
    bool spill_in_background = true;
  };

  // At most this many runs after each spill or merge: a claim of a key not in memory checks
  // each run's filter (one cache line each).
  static constexpr size_t kMaxRuns = 8;

  // Opens the runs, loads the journal and scans the log's tail from the last covered offset.
  static Result<std::unique_ptr<DedupeIndex>> Open(const Options& options, log::EventLog* log);
  ~DedupeIndex();

  static Hash128 Key(std::string_view source, std::string_view message_id);

  // `claimant` identifies the request (unique per request, non-zero).
  ClaimResult Claim(const Hash128& key, uint64_t claimant);
  // Starts fetching the keys' table slots from memory (see KeyTable::Prefetch); any thread.
  void Prefetch(std::span<const Hash128> keys) const;
  // The request's append is durable: its records end before `end`.
  void Commit(const std::vector<Hash128>& keys, TimestampMs received_at, Offset end);
  void Release(const std::vector<Hash128>& keys, uint64_t claimant);

  // Drops expired keys and runs, spills when memory is over its share (unless a background
  // thread does), merges runs, and writes keys committed since the last flush to the journal
  // (fdatasync'd; the whole journal is rewritten when mostly expired or after a failed write).
  // On error the keys stay queued for the next Flush.
  Status Flush();

  // Keys held: in memory plus in runs (expired keys count until dropped). For the metrics.
  size_t size() const;
  // Bytes of memory the index accounts for (see Options::max_memory_bytes).
  int64_t memory_bytes() const;
  // Keys in run files, and how many run files.
  uint64_t spilled_keys() const;
  size_t runs() const;
  // Claims that had to read a run file (a duplicate on disk, or a filter false positive).
  uint64_t run_reads() const { return run_reads_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    int64_t time_ms;
    uint64_t claimant;  // 0 once committed
  };
  using Journaled = DedupeEntry;
  // The runs a claim checks; immutable, shared by every shard (replaced as a whole).
  struct RunSet {
    std::vector<std::shared_ptr<DedupeRun>> runs;  // by min_time_ms
    bool MayContain(const Hash128& key) const;
  };

  explicit DedupeIndex(const Options& options);
  Status OpenRuns();
  Status LoadJournal(Offset* covered_end);
  Status ScanLog(log::EventLog* log, Offset from);
  void ExpireLocked(int64_t now_ms);
  // Each part runs with flush_mu_ held.
  Status DropExpiredRuns(int64_t now_ms);
  Status Spill();
  Status WriteJournal();
  // Merges neighbouring runs until there are at most kMaxRuns; takes merge_mu_, and flush_mu_
  // only to pick a pair and to publish the result (the merge's I/O runs without it).
  Status MergeExcessRuns();
  Status RewriteJournal();
  // Installs `runs` in every shard; requires flush_mu_.
  void PublishRuns(std::shared_ptr<const RunSet> runs);
  // Bits per key of the filter of a new run of `keys` keys, beside runs holding `others_keys`
  // keys in `others_bytes` of memory (docs/formats/dedupe.md, "Filters").
  int BitsPerKeyFor(uint64_t keys, uint64_t others_keys, int64_t others_bytes) const;
  std::string NewRunPath();
  bool OverSpillThreshold() const;
  void WakeSpiller();
  void SpillLoop();

  Options options_;
  Env* env_;
  std::string journal_path_;
  std::unique_ptr<WritableFile> journal_;  // guarded by flush_mu_
  int64_t journal_bytes_ = 0;              // valid bytes of the journal; guarded by flush_mu_
  bool journal_needs_rewrite_ = false;     // a write failed: rewrite it whole; flush_mu_
  bool spilled_since_rewrite_ = false;     // keys left memory: compact if mostly spilled; flush_mu_

  // Memory budget, derived from max_memory_bytes in the constructor (see the .cc).
  bool bounded_ = false;
  size_t shard_slots_cap_ = 0;     // a shard's table never grows past this many slots
  size_t spill_above_keys_ = 0;    // committed keys in memory that start a spill
  size_t spill_down_to_keys_ = 0;  // ... and where it stops
  int64_t filter_budget_bytes_ = 0;

  // Keys are spread over shards, each with its own lock, so I/O threads rarely contend and a
  // table resize pauses only the 1/kShards of claims that land on that shard. Each shard holds
  // the current RunSet, swapped under its lock together with the erasure of spilled keys, so a
  // claim never misses a key moving from memory to a run.
  static constexpr size_t kShards = 64;
  struct Shard {
    mutable std::mutex mu;
    KeyTable<Entry> keys;
    std::shared_ptr<const RunSet> runs;  // null while nothing is spilled
  };
  Shard& ShardOf(const Hash128& k) { return shards_[k.hi % kShards]; }
  const Shard& ShardOf(const Hash128& k) const { return shards_[k.hi % kShards]; }
  std::array<Shard, kShards> shards_;

  // Guards order_, unflushed_, covered_end_; taken before a shard's lock.
  mutable std::mutex mu_;
  std::deque<Journaled> order_;  // committed keys in memory, in commit order (expiry, spill)
  size_t unflushed_ = 0;         // the last `unflushed_` of order_ are not in the journal yet
  Offset covered_end_;           // every committed key below this is in order_, a run, or expired

  std::mutex merge_mu_;  // one merge at a time; taken before flush_mu_
  std::mutex flush_mu_;  // one Flush or spill at a time; guards runs_, next_run_number_
  std::shared_ptr<const RunSet> runs_;
  uint64_t next_run_number_ = 1;
  std::atomic<uint64_t> spilled_keys_{0};
  std::atomic<size_t> run_count_{0};
  std::atomic<int64_t> runs_memory_bytes_{0};
  mutable std::atomic<uint64_t> run_reads_{0};
  std::atomic<bool> shard_full_{false};  // a claim was refused: a shard's table is at its cap

  std::mutex spill_mu_;
  std::condition_variable spill_cv_;
  bool spill_wanted_ = false;  // guarded by spill_mu_
  bool stopping_ = false;      // guarded by spill_mu_
  std::thread spiller_;
};

}  // namespace sy::ingest
