// Maps write keys to sources. Keys are held only as digests, never in clear: SHA-256 from the
// config, and, once a key has been verified against its SHA-256, a seeded XXH3-128 of it in a
// cache so later requests skip SHA-256 (the cache holds at most one entry per source).
// Thread-safe.
#pragma once

#include <cstdint>
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

 private:
  Hash128 FastDigest(std::string_view write_key) const;

  std::unordered_map<std::string, std::string> by_key_sha256_;
  uint64_t seed_;  // random per process: the fast digests are useless outside it
  mutable std::mutex mu_;
  mutable std::unordered_map<Hash128, std::string, Hash128Hasher> verified_;
};

// Extracts the write key from "Authorization: Basic base64(<wk>:)"; nullopt if absent or
// malformed. The password part is ignored (Segment sends it empty).
std::optional<std::string> WriteKeyFromBasicAuth(std::string_view authorization);

}  // namespace sy::ingest
