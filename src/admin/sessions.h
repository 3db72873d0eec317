// Browser sessions of the admin API, and the limiter of login attempts.
//
// Sessions live in memory only: a restart logs every browser out (tokens, which are stored,
// keep working). A session is found by the SHA-256 of its cookie value, so the table's lookup
// time says nothing about how much of a guessed id was right, and the ids themselves are never
// kept. Each session carries its own CSRF token, returned by login and GET /api/v1/session.
//
// Both classes are thread-safe and take their time from the Clock seam (tests use FakeClock).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/clock.h"

namespace sy::admin {

struct SessionOptions {
  // A session unused this long ends (`admin.session_idle_timeout`).
  int64_t idle_timeout_ms = 30LL * 60 * 1000;
  // A session ends this long after login, used or not (`admin.session_max_age`).
  int64_t max_age_ms = 12LL * 3600 * 1000;
  // Sessions held at most: past it, the least recently used one ends. Bounds memory whatever
  // the number of logins (~300 bytes each).
  size_t max_sessions = 10'000;
};

struct BrowserSession {
  std::string user;
  std::string user_epoch;  // User::epoch when the session opened
  std::string csrf_token;  // 64 hex digits
  int64_t created_ms = 0;
  int64_t last_used_ms = 0;
  int64_t expires_ms = 0;  // when it ends if unused: min(last use + idle, created + max age)
};

class SessionTable {
 public:
  SessionTable(SessionOptions options, Clock* clock);

  // Opens a session; returns the cookie value (64 hex digits, shown to this client only).
  std::string Open(const std::string& user, const std::string& user_epoch, BrowserSession* opened);
  // The session of this cookie value, if it has not expired; marks it used.
  std::optional<BrowserSession> Use(std::string_view cookie);
  void Close(std::string_view cookie);
  // Ends every session of `user` (user removed, password changed).
  void CloseAllOf(std::string_view user);
  size_t size() const;

 private:
  bool Expired(const BrowserSession& s, int64_t now) const;

  const SessionOptions options_;
  Clock* const clock_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, BrowserSession> by_digest_;  // SHA-256 of the cookie value
};

struct LoginLimiterOptions {
  // Failed logins allowed per user name and per client address before lock-outs begin.
  int free_failures = 5;
  // The first lock-out; each further failure doubles it, up to max_lockout_ms.
  int64_t first_lockout_ms = 1'000;
  int64_t max_lockout_ms = 15LL * 60 * 1000;
  // Counters are forgotten this long after their last failure (and once a login succeeds, for
  // the user's counter).
  int64_t forget_after_ms = 60LL * 60 * 1000;
  // Counters held at most per kind (user names, addresses): a flood of made-up names or
  // addresses cannot grow memory past it; past it the counters idle longest are dropped first.
  size_t max_entries = 10'000;
};

// Counts failed logins per user name and per client address: after `free_failures` failures,
// each further one locks logins out for an exponentially growing time. A locked-out attempt is
// refused before the password is checked (429 with Retry-After), so a guesser gets at most
// `free_failures` guesses and then one per lock-out.
class LoginLimiter {
 public:
  LoginLimiter(LoginLimiterOptions options, Clock* clock);
  // 0 when a login for `user` from `address` may be tried now; else milliseconds to wait.
  int64_t RetryAfterMs(std::string_view user, std::string_view address);
  void RecordFailure(std::string_view user, std::string_view address);
  void RecordSuccess(std::string_view user);
  size_t entries() const;

 private:
  struct Counter {
    int failures = 0;
    int64_t last_failure_ms = 0;
    int64_t locked_until_ms = 0;
  };
  using Table = std::unordered_map<std::string, Counter>;
  void Fail(Table* table, std::string_view key, int64_t now);
  void MakeRoom(Table* table, int64_t now);
  int64_t Wait(const Table& table, std::string_view key, int64_t now) const;

  const LoginLimiterOptions options_;
  Clock* const clock_;
  mutable std::mutex mu_;
  Table users_;
  Table addresses_;
};

}  // namespace sy::admin
