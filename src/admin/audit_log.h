// AuditLog: every change made through the admin API or the admin CLI — configuration changes
// (with the object before and after, secrets masked by ConfigApi), users and tokens, logins,
// failed logins and logouts — appended as one JSON object a line to DataDir::AuditLog.
//
// Durability: Append returns OK only once the line is fsynced (and, for a new file, its
// directory entry too); the admin API answers only after that. Appends from the server and the
// CLI take the admin flock (DataDir::AdminLock), so lines never interleave.
//
// An entry's `id` is the byte offset of its line in the file: unique, increasing, and what
// `GET /api/v1/audit?before=` pages by. A line torn by a crash (no final newline) is skipped by
// readers and closed by the next append. The file is not rotated (docs/admin-api.md).
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "base/clock.h"
#include "base/data_dir.h"
#include "base/env.h"
#include "base/status.h"

namespace sy::admin {

struct AuditEntry {
  std::string actor;   // user name, "token:<name>", or "cli" for the CLI
  std::string role;    // the actor's role ("" when not known: a failed login)
  std::string action;  // e.g. "login", "login.failed", "user.add", "destination.patch"
  std::string target;  // the object's name ("" when none)
  std::string client;  // the peer address, "" for the CLI
  int status = 0;      // the HTTP status answered (0 for the CLI)
  std::string before;  // JSON of the object before ("" when none)
  std::string after;   // JSON of the object after ("" when none)
};

class AuditLog {
 public:
  AuditLog(const DataDir& data_dir, Env* env, Clock* clock);

  // Appends `entry` with the current time; durable on OK.
  Status Append(const AuditEntry& entry);

  // The newest `limit` entries with an id below `before` (0: from the end), newest first, as
  // {"entries":[...],"next_before":<id of the last one, or null when there are no older ones>}.
  Result<std::string> Page(size_t limit, uint64_t before);

 private:
  const std::string dir_;
  const std::string path_;
  const std::string lock_path_;
  Env* const env_;
  Clock* const clock_;
  std::mutex mu_;  // one append at a time in this process (the flock serialises processes)
};

}  // namespace sy::admin
