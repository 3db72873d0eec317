#include "admin/sessions.h"

#include <algorithm>
#include <vector>

#include "admin/credentials.h"

namespace sy::admin {

namespace {
int64_t NowMs(Clock* clock) {
  return clock->MonotonicNanos() / 1'000'000;
}
}  // namespace

SessionTable::SessionTable(SessionOptions options, Clock* clock)
    : options_(options), clock_(clock) {}

bool SessionTable::Expired(const BrowserSession& s, int64_t now) const {
  return now >= s.expires_ms;
}

std::string SessionTable::Open(const std::string& user, const std::string& user_epoch,
                               BrowserSession* opened) {
  const int64_t now = NowMs(clock_);
  std::string cookie = RandomHex(32);
  BrowserSession s;
  s.user = user;
  s.user_epoch = user_epoch;
  s.csrf_token = RandomHex(32);
  s.created_ms = now;
  s.last_used_ms = now;
  s.expires_ms = std::min(now + options_.idle_timeout_ms, now + options_.max_age_ms);
  std::lock_guard lock(mu_);
  if (by_digest_.size() >= options_.max_sessions) {
    std::erase_if(by_digest_, [&](const auto& kv) { return Expired(kv.second, now); });
  }
  while (by_digest_.size() >= options_.max_sessions) {
    auto oldest = std::min_element(by_digest_.begin(), by_digest_.end(), [](auto& a, auto& b) {
      return a.second.last_used_ms < b.second.last_used_ms;
    });
    by_digest_.erase(oldest);
  }
  by_digest_[Sha256Hex(cookie)] = s;
  if (opened) *opened = s;
  return cookie;
}

std::optional<BrowserSession> SessionTable::Use(std::string_view cookie) {
  const int64_t now = NowMs(clock_);
  const std::string digest = Sha256Hex(cookie);
  std::lock_guard lock(mu_);
  auto it = by_digest_.find(digest);
  if (it == by_digest_.end()) return std::nullopt;
  if (Expired(it->second, now)) {
    by_digest_.erase(it);
    return std::nullopt;
  }
  BrowserSession& s = it->second;
  s.last_used_ms = now;
  s.expires_ms = std::min(now + options_.idle_timeout_ms, s.created_ms + options_.max_age_ms);
  return s;
}

void SessionTable::Close(std::string_view cookie) {
  const std::string digest = Sha256Hex(cookie);
  std::lock_guard lock(mu_);
  by_digest_.erase(digest);
}

void SessionTable::CloseAllOf(std::string_view user) {
  std::lock_guard lock(mu_);
  std::erase_if(by_digest_, [&](const auto& kv) { return kv.second.user == user; });
}

size_t SessionTable::size() const {
  std::lock_guard lock(mu_);
  return by_digest_.size();
}

LoginLimiter::LoginLimiter(LoginLimiterOptions options, Clock* clock)
    : options_(options), clock_(clock) {}

int64_t LoginLimiter::Wait(const Table& table, std::string_view key, int64_t now) const {
  auto it = table.find(std::string(key));
  if (it == table.end() || it->second.locked_until_ms <= now) return 0;
  return it->second.locked_until_ms - now;
}

int64_t LoginLimiter::RetryAfterMs(std::string_view user, std::string_view address) {
  const int64_t now = NowMs(clock_);
  std::lock_guard lock(mu_);
  return std::max(Wait(users_, user, now), Wait(addresses_, address, now));
}

void LoginLimiter::MakeRoom(Table* table, int64_t now) {
  if (table->size() < options_.max_entries) return;
  std::erase_if(*table, [&](const auto& kv) {
    return kv.second.locked_until_ms <= now &&
           now - kv.second.last_failure_ms >= options_.forget_after_ms;
  });
  if (table->size() < options_.max_entries) return;
  // Still full: drop the half idle longest (one O(n) pass, then room for n/2 more failures).
  std::vector<int64_t> last;
  last.reserve(table->size());
  for (const auto& kv : *table)
    last.push_back(kv.second.last_failure_ms);
  auto mid = last.begin() + static_cast<std::ptrdiff_t>(last.size() / 2);
  std::nth_element(last.begin(), mid, last.end());
  const int64_t cut = *mid;
  std::erase_if(*table, [&](const auto& kv) { return kv.second.last_failure_ms < cut; });
  while (table->size() >= options_.max_entries)
    table->erase(table->begin());
}

void LoginLimiter::Fail(Table* table, std::string_view key, int64_t now) {
  auto it = table->find(std::string(key));
  if (it == table->end()) {
    MakeRoom(table, now);
    it = table->emplace(std::string(key), Counter{}).first;
  } else if (now - it->second.last_failure_ms >= options_.forget_after_ms) {
    it->second = Counter{};
  }
  Counter& c = it->second;
  c.failures++;
  c.last_failure_ms = now;
  if (c.failures >= options_.free_failures) {
    const int doublings = std::min(c.failures - options_.free_failures, 30);
    const int64_t lockout =
        std::min(options_.max_lockout_ms, options_.first_lockout_ms << doublings);
    c.locked_until_ms = now + lockout;
  }
}

void LoginLimiter::RecordFailure(std::string_view user, std::string_view address) {
  const int64_t now = NowMs(clock_);
  std::lock_guard lock(mu_);
  Fail(&users_, user, now);
  Fail(&addresses_, address, now);
}

void LoginLimiter::RecordSuccess(std::string_view user) {
  std::lock_guard lock(mu_);
  users_.erase(std::string(user));
}

size_t LoginLimiter::entries() const {
  std::lock_guard lock(mu_);
  return users_.size() + addresses_.size();
}

}  // namespace sy::admin
