// Maps write keys to sources. Keys are held only as digests, never in clear: SHA-256 from the
// config, and, once a key has been verified against its SHA-256, a seeded XXH3-128 of it in a
// cache so later requests skip SHA-256 (the cache holds at most one entry per source).
// Also holds each source's rate limit (sources[].rate_limit), a token bucket of events.
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

#include "base/hash.h"
#include "config/config.h"

namespace sy::ingest {

class SourceTable {
 public:
  explicit SourceTable(const std::vector<config::SourceConfig>& sources);
  // The source name for a write key, or nullopt.
  std::optional<std::string> Lookup(std::string_view write_key) const;

  // Admits a request of `events` events from `source` under its rate limit at `now_ns`
  // (Clock::MonotonicNanos). Returns 0 when admitted (its events are taken from the bucket), or
  // how many milliseconds until the bucket could admit it (nothing taken). A source without a
  // limit always gets 0. The bucket refills at events_per_second up to `burst`; a request of
  // more than `burst` events is admitted once the bucket is full and leaves it in debt, so a
  // large batch waits its turn instead of being refused for ever and the long-run rate holds.
  int64_t AdmitEvents(std::string_view source, size_t events, int64_t now_ns) const;

 private:
  struct Bucket {
    double events_per_ns = 0;
    double burst = 0;
    std::mutex mu;
    double tokens = 0;  // may go below zero after a request larger than the burst
    int64_t updated_ns = -1;
  };

  Hash128 FastDigest(std::string_view write_key) const;

  std::unordered_map<std::string, std::string> by_key_sha256_;
  uint64_t seed_;  // random per process: the fast digests are useless outside it
  mutable std::mutex mu_;
  mutable std::unordered_map<Hash128, std::string, Hash128Hasher> verified_;
  std::map<std::string, std::unique_ptr<Bucket>, std::less<>> buckets_;  // limited sources only
};

// Extracts the write key from "Authorization: Basic base64(<wk>:)"; nullopt if absent or
// malformed. The password part is ignored (Segment sends it empty).
std::optional<std::string> WriteKeyFromBasicAuth(std::string_view authorization);

}  // namespace sy::ingest
