#include "ingest/source_table.h"

#include <boost/beast/core/detail/base64.hpp>

#include <xxhash.h>

#include <cctype>
#include <random>

namespace sy::ingest {

SourceTable::SourceTable(const std::vector<config::SourceConfig>& sources)
    : seed_((static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}()) {
  for (const auto& s : sources)
    by_key_sha256_[s.write_key_sha256] = s.name;
}

Hash128 SourceTable::FastDigest(std::string_view write_key) const {
  XXH128_hash_t h = XXH3_128bits_withSeed(write_key.data(), write_key.size(), seed_);
  return {h.low64, h.high64};
}

std::optional<std::string> SourceTable::Lookup(std::string_view write_key) const {
  if (write_key.empty()) return std::nullopt;
  const Hash128 fast = FastDigest(write_key);
  {
    std::lock_guard lock(mu_);
    if (auto it = verified_.find(fast); it != verified_.end()) return it->second;
  }
  auto it = by_key_sha256_.find(config::Sha256Hex(write_key));
  if (it == by_key_sha256_.end()) return std::nullopt;  // unknown keys are never cached
  std::lock_guard lock(mu_);
  verified_.emplace(fast, it->second);
  return it->second;
}

std::optional<std::string> WriteKeyFromBasicAuth(std::string_view h) {
  while (!h.empty() && h.front() == ' ')
    h.remove_prefix(1);
  if (h.size() < 6) return std::nullopt;
  std::string scheme(h.substr(0, 6));
  for (char& c : scheme)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "basic ") return std::nullopt;
  std::string_view b64 = h.substr(6);
  while (!b64.empty() && b64.front() == ' ')
    b64.remove_prefix(1);
  while (!b64.empty() && b64.back() == ' ')
    b64.remove_suffix(1);
  if (b64.empty() || b64.size() > 4096) return std::nullopt;
  namespace b = boost::beast::detail::base64;
  std::string out(b::decoded_size(b64.size()), '\0');
  auto [written, read] = b::decode(out.data(), b64.data(), b64.size());
  // The decoder stops at the '=' padding; anything else unread is not base64.
  if (b64.find_first_not_of('=', read) != std::string_view::npos) return std::nullopt;
  out.resize(written);
  auto colon = out.find(':');
  if (colon != std::string::npos) out.resize(colon);
  if (out.empty()) return std::nullopt;
  return out;
}

}  // namespace sy::ingest
