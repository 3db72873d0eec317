// FaultInjectionEnv: an Env for tests that wraps a real one and can
//  - fail the next writes with a short write (a prefix lands, then EIO) or ENOSPC;
//  - fail fdatasync (EIO), in which case the bytes do not count as synced;
//  - cut the power (Crash): what was not made durable is lost, as after a power failure, and
//    every later operation fails until Revive().
//
// The power-cut model (what a filesystem promises, not what ext4 happens to do):
//  - file contents: each file (an inode: its content follows it through renames) is cut back to
//    the length its last successful Sync covered, plus optionally a random prefix of the
//    unsynced tail (a torn write). A truncation counts as durable at once (pessimistic: the cut
//    keeps less, never more).
//  - directory entries: a file created, renamed or unlinked through this Env, and a directory
//    created by CreateDirIfMissing, is an entry of its parent directory that becomes durable
//    only with a successful SyncDir of that directory. At the cut, every entry goes back to
//    its state at that directory's last SyncDir: a new file disappears, a renamed file is back
//    under its old name (with the content of its synced length), a file replaced by a rename
//    gets its old content back, an unlinked file reappears, and a new directory disappears with
//    everything in it.
//  - files and directories this Env did not create count as durable (content and entry) when
//    first touched.
// Sync() does not call fdatasync unless `real_sync` is set, so tests run fast; durability is
// modelled by the bookkeeping above instead, and Crash() applies it to the real files.
// A WritableFile opened before a Crash() fails every operation afterwards, also after Revive():
// reopen files after a cut, as a restarted process does.
//
// Limits: paths are compared after lexical normalisation (no symlink resolution); files written
// without this Env (directly through the OS) are not modelled; no hard links.
//
// Thread safety: all methods are thread-safe; file operations are serialized by one mutex.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
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
  // Cuts the power: applies the model above to the real files (keeping a random part of each
  // unsynced tail when `torn_tail`) and fails every later operation until Revive().
  void Crash(bool torn_tail = true);
  void Revive();
  uint64_t syncs() const;
  // Mutating operations so far (WriteAt, Sync, SyncDir, Rename, Truncate, RemoveFile): tests
  // count them in a clean run, then fail or crash at each one in turn.
  uint64_t operations() const;
  // The `n`-th mutating operation from now (1 = the next) fails with kIoError and the power is
  // cut right before it takes effect (as Crash(torn_tail)); 0 disarms.
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
  using InodeId = uint64_t;
  struct Inode {
    uint64_t size = 0;    // bytes written so far
    uint64_t synced = 0;  // bytes known durable
    // The synced bytes, saved when the inode lost its last current name while a durable name
    // still points at it (unlinked, or replaced by a rename, before the directory fsync): a
    // power cut puts them back under that name.
    std::optional<std::string> saved;
  };
  Status WriteAt(InodeId id, uint64_t epoch, WritableFile& file, uint64_t offset,
                 std::string_view data);
  Status Sync(const std::string& path, InodeId id, uint64_t epoch, WritableFile& file);
  Status Truncate(InodeId id, uint64_t epoch, WritableFile& file, uint64_t size);
  Status DeadError() const;

  // The inode now at `path` (normalised); a file that exists but was never seen is registered as
  // durable. 0 when there is no file. Requires mu_.
  InodeId TrackLocked(const std::string& path);
  // When `path` is about to lose inode `id` and no other current name holds it, the bytes a power
  // cut must restore under a durable name (nullopt when none is needed). Requires mu_.
  std::optional<std::string> BytesToSaveLocked(const std::string& path, InodeId id);
  // After `id` lost its current name `path`: keeps `saved` or forgets an inode nothing names.
  void ForgetNameLocked(const std::string& path, InodeId id, std::optional<std::string> saved);
  void DropInodeIfUnnamedLocked(InodeId id);
  bool UnderNewDirLocked(const std::string& path) const;
  std::string ReadPrefixLocked(const std::string& path, uint64_t n);

  Env* const base_;
  const bool real_sync_;
  mutable std::mutex mu_;
  InodeId next_inode_ = 1;
  std::map<InodeId, Inode> inodes_;
  std::map<std::string, InodeId> current_;  // file paths as they are now
  std::map<std::string, InodeId> durable_;  // file paths as a power cut would leave them
  std::set<std::string> new_dirs_;          // created; entry in the parent not yet durable
  uint64_t epoch_ = 0;                      // counts crashes; files of an older epoch are dead
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
