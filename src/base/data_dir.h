// DataDir: the one place that names the paths under a server's data_dir. The server and every CLI
// command build their paths here, never by string concatenation, so the layout is written once
// (docs/architecture.md, "Files under data_dir").
//
//   <data_dir>/LOCK                 flock(LOCK_EX) held by `serve` (and offline `warehouse sync`);
//                                   holds the holder's pid
//   <data_dir>/ADMIN_TOKEN          the running server's admin token (0600)
//   <data_dir>/log/                 the event log (docs/formats/log.md)
//   <data_dir>/dlq/                 dead letters (docs/formats/dlq.md)
//   <data_dir>/dedupe/              the dedupe window
//   <data_dir>/archive-state/state  the archiver's per-source progress
//   <data_dir>/replay/<dest>/       a replay's private log and state; <dest>.progress beside it
//   <data_dir>/config-overlay.json  changes made through the admin API (docs/formats/overlay.md)
//   <data_dir>/admin/credentials.json  admin API users (Argon2id hashes) and tokens (SHA-256)
//   <data_dir>/admin/audit.jsonl    the audit log: one JSON object a line, appended and fsynced
//   <data_dir>/admin/LOCK           flock held by whoever changes the two files above
//
// Value type; thread-compatible.
#pragma once

#include <string>

namespace sy {

class DataDir {
 public:
  explicit DataDir(std::string root) : root_(std::move(root)) {}

  const std::string& root() const { return root_; }
  std::string Lock() const { return root_ + "/LOCK"; }
  std::string AdminToken() const { return root_ + "/ADMIN_TOKEN"; }
  std::string Log() const { return root_ + "/log"; }
  std::string Dlq() const { return root_ + "/dlq"; }
  // ctx.store of user functions: <name>.store.json each (src/functions/store.h).
  std::string Functions() const { return root_ + "/functions"; }
  std::string Dedupe() const { return root_ + "/dedupe"; }
  std::string ArchiveState() const { return root_ + "/archive-state"; }
  std::string ConfigOverlay() const { return root_ + "/config-overlay.json"; }
  std::string Replays() const { return root_ + "/replay"; }
  std::string Replay(const std::string& destination) const { return Replays() + "/" + destination; }
  std::string ReplayProgress(const std::string& destination) const {
    return Replays() + "/" + destination + ".progress";
  }
  std::string Admin() const { return root_ + "/admin"; }
  std::string AdminCredentials() const { return Admin() + "/credentials.json"; }
  std::string AuditLog() const { return Admin() + "/audit.jsonl"; }
  std::string AdminLock() const { return Admin() + "/LOCK"; }

 private:
  std::string root_;
};

}  // namespace sy
