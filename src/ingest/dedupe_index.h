// DedupeIndex: remembers which (source, messageId) pairs were stored within the dedupe window,
// so a retried event is acknowledged without being stored twice.
//
// Lifecycle of a key: Claim() marks it pending for one request; when that request's append is
// durable, Commit() makes it permanent for the window (and queues it for the journal); if the
// append failed, Release() forgets it so the client's retry is stored.
//
// Persistence: committed keys are appended to `<dir>/dedupe.journal` in checksummed chunks by
// Flush() (the server calls it every few seconds and at shutdown). Each chunk records the log
// offset its keys cover; at open the journal is replayed and the log is scanned from that
// offset on, so the window survives a restart (and a crash) with no gap.
//
// Memory: about 100 bytes per key held (a 32-byte slot at load <= 1/2, plus the expiry queue):
// 24 h at 1,000 events/s is about 9 GB, so size `ingest.dedupe_window` to the traffic. Thread-safe:
// one mutex, held briefly.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/hash.h"
#include "base/status.h"
#include "base/types.h"
#include "ingest/key_table.h"
#include "log/event_log.h"

namespace sy::ingest {

class DedupeIndex {
 public:
  enum class ClaimResult {
    kNew,        // not seen: now pending for this claimant
    kDuplicate,  // stored before within the window (or claimed earlier in the same request)
    kInFlight,   // another request holds it pending: its fate is unknown, ask the client to retry
  };

  struct Options {
    std::string dir;  // holds dedupe.journal
    int64_t window_ms = 24LL * 3600 * 1000;
    Clock* clock = nullptr;
  };

  // Loads the journal and scans the log's tail from the last covered offset.
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

  // Writes keys committed since the last flush to the journal (fdatasync'd); compacts it when
  // mostly expired. Drops expired keys from memory.
  Status Flush();

  size_t size() const;

 private:
  struct Entry {
    int64_t time_ms;
    uint64_t claimant;  // 0 once committed
  };
  struct Journaled {
    Hash128 key;
    int64_t time_ms;
  };
  explicit DedupeIndex(const Options& options);
  Status LoadJournal(Offset* covered_end);
  Status ScanLog(log::EventLog* log, Offset from);
  void ExpireLocked(int64_t now_ms);
  Status AppendChunk(const std::vector<Journaled>& entries, Offset covered_end);
  Status RewriteJournal();

  Options options_;
  std::string journal_path_;
  int journal_fd_ = -1;
  int64_t journal_bytes_ = 0;

  // Keys are spread over shards, each with its own lock, so I/O threads rarely contend and a
  // table resize pauses only the 1/kShards of claims that land on that shard.
  static constexpr size_t kShards = 64;
  struct Shard {
    mutable std::mutex mu;
    KeyTable<Entry> keys;
  };
  Shard& ShardOf(const Hash128& k) { return shards_[k.hi % kShards]; }
  const Shard& ShardOf(const Hash128& k) const { return shards_[k.hi % kShards]; }
  std::array<Shard, kShards> shards_;

  mutable std::mutex mu_;        // guards order_, unflushed_, covered_end_; taken before a shard's
  std::deque<Journaled> order_;  // committed keys in commit order, for expiry
  std::vector<Journaled> unflushed_;  // committed, not yet in the journal
  Offset covered_end_;                // every committed key below this is in unflushed_/journal
  std::mutex flush_mu_;               // one Flush at a time
};

}  // namespace sy::ingest
