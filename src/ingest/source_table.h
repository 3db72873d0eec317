// Maps write keys to sources. Keys are held only as SHA-256 digests; lookups hash the
// presented key. Immutable after construction: safe to share between threads.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"

namespace sy::ingest {

class SourceTable {
 public:
  explicit SourceTable(const std::vector<config::SourceConfig>& sources);
  // The source name for a write key, or nullopt.
  std::optional<std::string> Lookup(std::string_view write_key) const;

 private:
  std::unordered_map<std::string, std::string> by_key_sha256_;
};

// Extracts the write key from "Authorization: Basic base64(<wk>:)"; nullopt if absent or
// malformed. The password part is ignored (Segment sends it empty).
std::optional<std::string> WriteKeyFromBasicAuth(std::string_view authorization);

}  // namespace sy::ingest
