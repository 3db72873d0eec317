// Maps write keys to sources. Keys are held only as digests, never in clear: SHA-256 from the
// config, and, once a key has been verified against its SHA-256, a seeded XXH3-128 of it in a
// cache so later requests skip SHA-256 (the cache holds at most two entries per source: its key
// and a rotated-out key in its grace period).
// Also holds each source's rate limit (sources[].rate_limit), a token bucket of events.
// Disabled sources (`enabled: false`) are left out: their keys are unknown keys.
// Replace() swaps the whole table while requests run (the admin API and SIGHUP change sources
// live): a request sees the old table or the new one, never a mix; a source whose rate limit
// did not change keeps its bucket.
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/hash.h"
#include "config/config.h"

namespace sy::ingest {

class SourceTable {
 public:
  // `clock` (wall time) ends the grace period of rotated-out keys; never null.
  explicit SourceTable(const std::vector<config::SourceConfig>& sources,
                       const Clock* clock = SystemClock::Get());
  // The source name for a write key, or nullopt (unknown key, disabled source, or a previous
  // key whose grace period ended).
  std::optional<std::string> Lookup(std::string_view write_key) const;

  // Replaces every source (keys, enabled, rate limits) at once.
  void Replace(const std::vector<config::SourceConfig>& sources);

  // Admits a request of `events` events from `source` under its rate limit at `now_ns`
  // (Clock::MonotonicNanos). Returns 0 when admitted (its events are taken from the bucket), or
  // how many milliseconds until the bucket could admit it (nothing taken). A source without a
  // limit always gets 0. The bucket refills at events_per_second up to `burst`; a request of
  // more than `burst` events is admitted once the bucket is full and leaves it in debt, so a
  // large batch waits its turn instead of being refused for ever and the long-run rate holds.
  int64_t AdmitEvents(std::string_view source, size_t events, int64_t now_ns) const;

 private:
  struct Bucket {
    int64_t events_per_second = 0;  // as configured, to keep a bucket across Replace
    int64_t burst_events = 0;
    double events_per_ns = 0;
    double burst = 0;
    std::mutex mu;
    double tokens = 0;  // may go below zero after a request larger than the burst
    int64_t updated_ns = -1;
  };

  struct KeyHolder {
    std::string source;
    int64_t expires_ms = 0;  // wall-clock ms after which the key is refused; 0: never
  };
  // One generation of the table; immutable once published.
  struct Table {
    std::unordered_map<std::string, KeyHolder> by_key_sha256;
    std::map<std::string, std::shared_ptr<Bucket>, std::less<>> buckets;  // limited sources only
  };

  Hash128 FastDigest(std::string_view write_key) const;
  std::shared_ptr<const Table> Build(const std::vector<config::SourceConfig>& sources,
                                     const Table* previous) const;
  std::shared_ptr<const Table> Current() const;

  const Clock* clock_;
  uint64_t seed_;          // random per process: the fast digests are useless outside it
  mutable std::mutex mu_;  // table_ (the pointer) and verified_
  std::shared_ptr<const Table> table_;
  mutable std::unordered_map<Hash128, KeyHolder, Hash128Hasher> verified_;
};

// Extracts the write key from "Authorization: Basic base64(<wk>:)"; nullopt if absent or
// malformed. The password part is ignored (Segment sends it empty).
std::optional<std::string> WriteKeyFromBasicAuth(std::string_view authorization);

}  // namespace sy::ingest
