// FaultInjectionEnv: an Env for tests that wraps a real one and can
//  - fail the next writes with a short write (a prefix lands, then EIO) or ENOSPC;
//  - fail fdatasync (EIO), in which case the bytes do not count as synced;
//  - simulate a crash: every file is cut back to the length that was last fdatasync'ed, plus
//    optionally a random prefix of the unsynced tail (a torn write), and every later operation
//    fails until Revive().
// Sync() does not call fdatasync unless `real_sync` is set, so tests run fast; durability is
// modelled by the per-file synced length instead.
//
// Limits of the model: creations, renames and deletions count as durable immediately (only file
// contents are modelled); files not written through this Env count as fully synced.
//
// Thread safety: all methods are thread-safe; file operations are serialized by one mutex.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "base/env.h"

namespace sy {

class FaultInjectionEnv final : public Env {
 public:
  explicit FaultInjectionEnv(Env* base = Env::Default(), bool real_sync = false, uint64_t seed = 1);

  // The next `n` WriteAt calls write half their bytes, then fail with kIoError.
  void FailWritesShort(int n);
  // While set, WriteAt writes half its bytes (if any) and fails with kResourceExhausted.
  void SetDiskFull(bool full);
  // The next `n` Sync calls fail with kIoError (and sync nothing).
  void FailSyncs(int n);
  // The next `n` SyncDir calls fail with kIoError.
  void FailDirSyncs(int n);
  // The next `n` Rename calls fail with kIoError (and rename nothing).
  void FailRenames(int n);
  // Cuts every file back to its synced length (keeping a random part of the unsynced tail when
  // `torn_tail`) and fails every later operation until Revive().
  void Crash(bool torn_tail = true);
  void Revive();
  uint64_t syncs() const;
  // Mutating operations so far (WriteAt, Sync, SyncDir, Rename, Truncate, RemoveFile): tests
  // count them in a clean run, then fail or crash at each one in turn.
  uint64_t operations() const;
  // The `n`-th mutating operation from now (1 = the next) fails with kIoError and the machine
  // crashes right after it (as Crash(torn_tail)); 0 disarms.
  void CrashAtOperation(uint64_t n, bool torn_tail = true);

  Result<std::unique_ptr<WritableFile>> OpenWritable(const std::string& path,
                                                     bool truncate) override;
  Result<std::unique_ptr<RandomAccessFile>> OpenReadable(const std::string& path) override;
  Status CreateDirIfMissing(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status SyncDir(const std::string& dir) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status RemoveFile(const std::string& path) override;
  bool FileExists(const std::string& path) override;

 private:
  friend class FaultInjectionWritableFile;
  struct FileState {
    uint64_t size = 0;    // bytes written so far
    uint64_t synced = 0;  // bytes known durable
  };
  Status WriteAt(const std::string& path, WritableFile& file, uint64_t offset,
                 std::string_view data);
  Status Sync(const std::string& path, WritableFile& file);
  Status Truncate(const std::string& path, WritableFile& file, uint64_t size);
  Status DeadError() const;

  Env* const base_;
  const bool real_sync_;
  mutable std::mutex mu_;
  std::map<std::string, FileState> files_;
  std::mt19937_64 rng_;
  int short_writes_ = 0;
  bool disk_full_ = false;
  int failing_syncs_ = 0;
  int failing_dir_syncs_ = 0;
  int failing_renames_ = 0;
  uint64_t operations_ = 0;
  uint64_t crash_at_ = 0;  // operations_ value that crashes; 0 = none
  bool crash_torn_tail_ = true;
  // Counts one mutating operation; true when it is the one that crashes the machine (the caller
  // then returns DeadError() without doing it). Requires mu_.
  bool CountOperationLocked();
  void CrashLocked(bool torn_tail);
  bool dead_ = false;
  uint64_t syncs_ = 0;
};

}  // namespace sy
