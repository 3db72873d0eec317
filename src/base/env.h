// Env: the file-system seam of every file that must survive a crash (after LevelDB's Env, which
// also lives at the root). The event log, the dead-letter store, the archive state and local
// object store, replay state and the admin token all do their file I/O through an Env, so tests can
// inject short writes, fsync failures, a full disk or a crash (FaultInjectionEnv) without touching
// the code under test.
//
// Thread safety: Env methods are thread-safe. A WritableFile is used by one thread at a time (the
// log's writer thread, or the thread committing a cursor). A RandomAccessFile is thread-safe
// (pread), so readers share one per segment.
//
// Error mapping: ENOSPC/EDQUOT → kResourceExhausted; every other errno → kIoError. Every error
// names the path it is about.
//
// Permissions: the data is every event users sent, so the POSIX Env creates files 0600
// (kFileMode) and directories 0700 (kDirMode), whatever the umask lets through on top; existing
// files and directories keep their mode (docs/security.md, "Files and permissions").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sy {

// Modes of the files and directories the POSIX Env creates (before the umask).
inline constexpr unsigned kFileMode = 0600;
inline constexpr unsigned kDirMode = 0700;

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes all of `data` at `offset` (retrying short writes). On error some prefix of `data` may
  // have reached the file.
  virtual Status WriteAt(uint64_t offset, std::string_view data) = 0;
  // fdatasync: on OK, every byte written so far (and the file size) survives a power loss.
  virtual Status Sync() = 0;
  virtual Status Truncate(uint64_t size) = 0;
};

class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads up to `n` bytes at `offset` into `scratch`; returns the count (short only at EOF).
  virtual Result<size_t> ReadAt(uint64_t offset, size_t n, char* scratch) const = 0;
  virtual Result<uint64_t> Size() const = 0;
};

class Env {
 public:
  virtual ~Env() = default;

  // Opens `path` for writing, creating it if missing; `truncate` empties an existing file.
  virtual Result<std::unique_ptr<WritableFile>> OpenWritable(const std::string& path,
                                                             bool truncate) = 0;
  virtual Result<std::unique_ptr<RandomAccessFile>> OpenReadable(const std::string& path) = 0;
  // Creates `path` and its missing parents (kDirMode). Does not sync the parent directories:
  // callers that need the creation durable call SyncDir on the parent.
  virtual Status CreateDirIfMissing(const std::string& path) = 0;
  // Names (not paths) of the entries of `dir`, without "." and "..".
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // fsync of a directory: makes creations, renames and deletions in it durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  virtual bool FileExists(const std::string& path) = 0;

  // The process-wide POSIX implementation; never destroyed.
  static Env* Default();
};

// Writes `data` to `path` atomically and durably: write `path`.tmp, fdatasync, rename over
// `path`, fsync the directory. After OK, a crash leaves either the old or the new content, never a
// mix, and the new content survives a power loss. On error (every failed write, fdatasync, rename
// or directory fsync is one, naming the path) the new content must be treated as not written: a
// crash may leave the old content; the temp file is removed when possible.
Status WriteFileAtomically(Env* env, const std::string& path, std::string_view data);

// Creates directory `path` and its missing parents, fsyncs the parent of each directory it
// created, and fsyncs the parent of `path` even when `path` existed (a creation whose parent
// fsync failed before is made durable now). After OK, files made durable in `path` survive a
// power loss with it. For opening a store, not for every write: it costs a directory fsync.
Status CreateDirDurably(Env* env, const std::string& path);

// Replaces `path` with `data` for concurrent readers (write `path`.tmp, rename) without syncing:
// for informational files (progress) that need not survive a power loss.
Status ReplaceFile(Env* env, const std::string& path, std::string_view data);

// The directory part of `path` ("." when it has none).
std::string DirName(const std::string& path);

// Size of `path` in bytes.
Result<uint64_t> FileSize(Env* env, const std::string& path);

// Reads a whole (small) file.
Result<std::string> ReadWholeFile(Env* env, const std::string& path);

}  // namespace sy
