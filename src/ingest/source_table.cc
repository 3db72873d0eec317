#include "ingest/source_table.h"

#include <boost/beast/core/detail/base64.hpp>

#include <xxhash.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <random>

namespace sy::ingest {

SourceTable::SourceTable(const std::vector<config::SourceConfig>& sources, const Clock* clock)
    : clock_(clock),
      seed_((static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}()) {
  table_ = Build(sources, nullptr);
}

std::shared_ptr<const SourceTable::Table> SourceTable::Build(
    const std::vector<config::SourceConfig>& sources, const Table* previous) const {
  auto t = std::make_shared<Table>();
  for (const auto& s : sources) {
    if (!s.enabled) continue;
    t->by_key_sha256[s.write_key_sha256] = {s.name, 0};
    if (!s.previous_write_key_sha256.empty())
      t->by_key_sha256[s.previous_write_key_sha256] = {s.name, s.previous_write_key_expires_ms};
    if (s.rate_limit_events_per_second > 0) {
      const int64_t burst = std::max(s.rate_limit_burst, int64_t{1});
      if (previous) {
        auto it = previous->buckets.find(s.name);
        if (it != previous->buckets.end() &&
            it->second->events_per_second == s.rate_limit_events_per_second &&
            it->second->burst_events == burst) {
          t->buckets[s.name] = it->second;  // same limit: keep what the source has used
          continue;
        }
      }
      auto b = std::make_shared<Bucket>();
      b->events_per_second = s.rate_limit_events_per_second;
      b->burst_events = burst;
      b->events_per_ns = static_cast<double>(s.rate_limit_events_per_second) / 1e9;
      b->burst = static_cast<double>(burst);
      b->tokens = b->burst;
      t->buckets[s.name] = std::move(b);
    }
  }
  return t;
}

void SourceTable::Replace(const std::vector<config::SourceConfig>& sources) {
  std::shared_ptr<const Table> next = Build(sources, Current().get());
  std::lock_guard lock(mu_);
  table_ = std::move(next);
  verified_.clear();  // keys removed, disabled or rotated out must be checked again
}

std::shared_ptr<const SourceTable::Table> SourceTable::Current() const {
  std::lock_guard lock(mu_);
  return table_;
}

int64_t SourceTable::AdmitEvents(std::string_view source, size_t events, int64_t now_ns) const {
  std::shared_ptr<const Table> table = Current();
  if (table->buckets.empty()) return 0;
  auto it = table->buckets.find(source);
  if (it == table->buckets.end()) return 0;
  Bucket& b = *it->second;
  std::lock_guard lock(b.mu);
  if (b.updated_ns >= 0 && now_ns > b.updated_ns) {
    b.tokens =
        std::min(b.burst, b.tokens + static_cast<double>(now_ns - b.updated_ns) * b.events_per_ns);
  }
  if (b.updated_ns < now_ns) b.updated_ns = now_ns;
  const double needed = std::min(static_cast<double>(events), b.burst);
  if (b.tokens >= needed) {
    b.tokens -= static_cast<double>(events);
    return 0;
  }
  const double wait_ns = (needed - b.tokens) / b.events_per_ns;
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait_ns / 1e6)));
}

Hash128 SourceTable::FastDigest(std::string_view write_key) const {
  XXH128_hash_t h = XXH3_128bits_withSeed(write_key.data(), write_key.size(), seed_);
  return {h.low64, h.high64};
}

std::optional<std::string> SourceTable::Lookup(std::string_view write_key) const {
  if (write_key.empty()) return std::nullopt;
  const Hash128 fast = FastDigest(write_key);
  auto usable = [this](const KeyHolder& k) {
    return k.expires_ms == 0 || clock_->Now().value() < k.expires_ms;
  };
  std::shared_ptr<const Table> table;
  {
    std::lock_guard lock(mu_);
    if (auto it = verified_.find(fast); it != verified_.end()) {
      if (!usable(it->second)) return std::nullopt;
      return it->second.source;
    }
    table = table_;
  }
  auto it = table->by_key_sha256.find(config::Sha256Hex(write_key));
  if (it == table->by_key_sha256.end()) return std::nullopt;  // unknown keys are never cached
  if (!usable(it->second)) return std::nullopt;
  std::lock_guard lock(mu_);
  // Cached only if the table did not change meanwhile (Replace cleared the cache).
  if (table_ == table) verified_.emplace(fast, it->second);
  return it->second.source;
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
