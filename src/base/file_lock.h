// FileLock: an exclusive flock on a lock file, held for one read-modify-write of files that
// several processes change (the server and the CLI): the admin files (DataDir::AdminLock) and a
// destination's dead-letter file, so a `switchyard users add` and an API request, or a
// `dlq redrive` and the server's stream, never interleave. Released by the destructor, or by the
// kernel if the process dies. Move-only; one thread at a time.
#pragma once

#include <string>

#include "base/status.h"

namespace sy {

class FileLock {
 public:
  // Blocks until the lock is held (holders keep it for one file write and fsync).
  static Result<FileLock> Take(const std::string& path);
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace sy
