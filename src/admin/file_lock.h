// AdminFileLock: an exclusive flock on DataDir::AdminLock held for the duration of one change to
// the admin files (credentials, audit log), shared by the server and the CLI processes, so a
// `switchyard users add` and an API request never interleave their read-modify-write. Released
// by the destructor, or by the kernel if the process dies. Move-only; one thread at a time.
#pragma once

#include <string>

#include "base/status.h"

namespace sy::admin {

class AdminFileLock {
 public:
  // Blocks until the lock is held (holders keep it for one file write and fsync).
  static Result<AdminFileLock> Take(const std::string& path);
  AdminFileLock(AdminFileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  AdminFileLock& operator=(AdminFileLock&&) = delete;
  ~AdminFileLock();

 private:
  explicit AdminFileLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace sy::admin
