#include "base/fault_injection_env.h"

#include <algorithm>
#include <filesystem>
#include <vector>

namespace sy {
namespace {

// One spelling per path, so that "dir//x", "dir/./x" and "dir/x" are one directory entry.
std::string Normalize(const std::string& path) {
  std::string p = std::filesystem::path(path).lexically_normal().string();
  while (p.size() > 1 && p.back() == '/')
    p.pop_back();
  return p;
}

}  // namespace

class FaultInjectionWritableFile final : public WritableFile {
 public:
  FaultInjectionWritableFile(FaultInjectionEnv* env, std::string path, uint64_t inode,
                             uint64_t epoch, std::unique_ptr<WritableFile> base)
      : env_(env), path_(std::move(path)), inode_(inode), epoch_(epoch), base_(std::move(base)) {}
  Status WriteAt(uint64_t offset, std::string_view data) override {
    return env_->WriteAt(inode_, epoch_, *base_, offset, data);
  }
  Status Sync() override { return env_->Sync(path_, inode_, epoch_, *base_); }
  Status Truncate(uint64_t size) override { return env_->Truncate(inode_, epoch_, *base_, size); }

 private:
  FaultInjectionEnv* const env_;
  const std::string path_;  // as opened (for error messages; the file may be renamed since)
  const uint64_t inode_;
  const uint64_t epoch_;
  const std::unique_ptr<WritableFile> base_;
};

FaultInjectionEnv::FaultInjectionEnv(Env* base, bool real_sync, uint64_t seed)
    : base_(base), real_sync_(real_sync), rng_(seed) {}

void FaultInjectionEnv::FailWritesShort(int n) {
  std::lock_guard lock(mu_);
  short_writes_ = n;
}
void FaultInjectionEnv::SetDiskFull(bool full) {
  std::lock_guard lock(mu_);
  disk_full_ = full;
}
void FaultInjectionEnv::FailSyncs(int n) {
  std::lock_guard lock(mu_);
  failing_syncs_ = n;
}
void FaultInjectionEnv::FailDirSyncs(int n) {
  std::lock_guard lock(mu_);
  failing_dir_syncs_ = n;
}
void FaultInjectionEnv::FailRenames(int n) {
  std::lock_guard lock(mu_);
  failing_renames_ = n;
}
uint64_t FaultInjectionEnv::operations() const {
  std::lock_guard lock(mu_);
  return operations_;
}
void FaultInjectionEnv::CrashAtOperation(uint64_t n, bool torn_tail) {
  std::lock_guard lock(mu_);
  crash_at_ = n == 0 ? 0 : operations_ + n;
  crash_torn_tail_ = torn_tail;
}
bool FaultInjectionEnv::CountOperationLocked() {
  ++operations_;
  if (crash_at_ != 0 && operations_ == crash_at_) {
    crash_at_ = 0;
    CrashLocked(crash_torn_tail_);
    return true;
  }
  return false;
}
uint64_t FaultInjectionEnv::syncs() const {
  std::lock_guard lock(mu_);
  return syncs_;
}

void FaultInjectionEnv::Crash(bool torn_tail) {
  std::lock_guard lock(mu_);
  CrashLocked(torn_tail);
}

bool FaultInjectionEnv::UnderNewDirLocked(const std::string& path) const {
  for (const auto& d : new_dirs_) {
    if (path.size() > d.size() && path.compare(0, d.size(), d) == 0 && path[d.size()] == '/')
      return true;
  }
  return false;
}

std::string FaultInjectionEnv::ReadPrefixLocked(const std::string& path, uint64_t n) {
  std::string bytes;
  auto file = base_->OpenReadable(path);
  if (!file.ok()) return bytes;
  bytes.resize(n);
  auto got = (*file)->ReadAt(0, n, bytes.data());
  bytes.resize(got.ok() ? *got : 0);
  return bytes;
}

void FaultInjectionEnv::CrashLocked(bool torn_tail) {
  dead_ = true;
  ++epoch_;
  // Durable names whose inode is not at that name now (renamed away, replaced, unlinked): their
  // synced bytes, read before anything below changes the files.
  std::map<std::string, std::string> restore;
  for (const auto& [path, id] : durable_) {
    if (UnderNewDirLocked(path)) continue;  // its directory disappears
    auto cur = current_.find(path);
    if (cur != current_.end() && cur->second == id) continue;
    const Inode& ino = inodes_.at(id);
    if (ino.saved) {
      restore[path] = *ino.saved;
      continue;
    }
    for (const auto& [holder, hid] : current_) {
      if (hid == id) {
        restore[path] = ReadPrefixLocked(holder, ino.synced);
        break;
      }
    }
  }
  // Files at their durable names lose what was not synced (a random part of it may remain).
  std::map<std::string, uint64_t> kept;  // path → size after the cut
  for (const auto& [path, id] : current_) {
    auto d = durable_.find(path);
    if (d == durable_.end() || d->second != id || UnderNewDirLocked(path)) continue;
    Inode& ino = inodes_.at(id);
    uint64_t keep = std::min(ino.synced, ino.size);
    if (torn_tail && ino.size > keep) {
      keep += std::uniform_int_distribution<uint64_t>(0, ino.size - keep)(rng_);
    }
    if (keep < ino.size) {
      auto file = base_->OpenWritable(path, /*truncate=*/false);
      if (file.ok()) (*file)->Truncate(keep).IgnoreError();
    }
    kept[path] = keep;
  }
  // Entries that are not durable go; new directories go with everything in them.
  for (const auto& [path, id] : current_) {
    if (!kept.count(path) && !UnderNewDirLocked(path)) base_->RemoveFile(path).IgnoreError();
  }
  for (const auto& d : new_dirs_) {
    std::error_code ec;
    std::filesystem::remove_all(d, ec);
  }
  // Durable entries come back with their synced bytes.
  for (const auto& [path, bytes] : restore) {
    auto file = base_->OpenWritable(path, /*truncate=*/true);
    if (file.ok()) (*file)->WriteAt(0, bytes).IgnoreError();
  }
  // The model after the cut: every name durable, every file synced, one inode per name.
  inodes_.clear();
  current_.clear();
  durable_.clear();
  new_dirs_.clear();
  auto add = [&](const std::string& path, uint64_t size) {
    InodeId id = next_inode_++;
    inodes_[id] = Inode{size, size, std::nullopt};
    current_[path] = id;
    durable_[path] = id;
  };
  for (const auto& [path, size] : kept)
    add(path, size);
  for (const auto& [path, bytes] : restore)
    add(path, bytes.size());
}

void FaultInjectionEnv::Revive() {
  std::lock_guard lock(mu_);
  dead_ = false;
  short_writes_ = 0;
  disk_full_ = false;
  failing_syncs_ = 0;
  failing_dir_syncs_ = 0;
  failing_renames_ = 0;
  crash_at_ = 0;
}

Status FaultInjectionEnv::DeadError() const {
  return IoError("injected: machine crashed");
}

FaultInjectionEnv::InodeId FaultInjectionEnv::TrackLocked(const std::string& path) {
  auto it = current_.find(path);
  if (it != current_.end()) return it->second;
  if (!base_->FileExists(path)) return 0;
  uint64_t size = 0;
  if (auto r = base_->OpenReadable(path); r.ok()) {
    if (auto s = (*r)->Size(); s.ok()) size = *s;
  }
  InodeId id = next_inode_++;
  inodes_[id] = Inode{size, size, std::nullopt};
  current_[path] = id;
  durable_[path] = id;
  return id;
}

std::optional<std::string> FaultInjectionEnv::BytesToSaveLocked(const std::string& path,
                                                                InodeId id) {
  for (const auto& [p, i] : current_) {
    if (i == id && p != path) return std::nullopt;  // still named elsewhere
  }
  for (const auto& [p, i] : durable_) {
    if (i == id) return ReadPrefixLocked(path, inodes_.at(id).synced);
  }
  return std::nullopt;
}

void FaultInjectionEnv::DropInodeIfUnnamedLocked(InodeId id) {
  for (const auto& [p, i] : current_)
    if (i == id) return;
  for (const auto& [p, i] : durable_)
    if (i == id) return;
  inodes_.erase(id);
}

void FaultInjectionEnv::ForgetNameLocked(const std::string& path, InodeId id,
                                         std::optional<std::string> saved) {
  current_.erase(path);
  if (saved) inodes_.at(id).saved = std::move(saved);
  DropInodeIfUnnamedLocked(id);
}

Status FaultInjectionEnv::WriteAt(InodeId id, uint64_t epoch, WritableFile& file, uint64_t offset,
                                  std::string_view data) {
  std::lock_guard lock(mu_);
  if (dead_ || epoch != epoch_ || CountOperationLocked()) return DeadError();
  auto it = inodes_.find(id);
  Inode scratch;  // an unlinked file nothing will bring back: its bytes do not matter
  Inode& ino = it != inodes_.end() ? it->second : scratch;
  if (short_writes_ > 0 || disk_full_) {
    bool full = disk_full_;
    if (short_writes_ > 0) --short_writes_;
    std::string_view prefix = data.substr(0, data.size() / 2);
    if (!prefix.empty() && file.WriteAt(offset, prefix).ok()) {
      ino.size = std::max(ino.size, offset + prefix.size());
    }
    return full ? ResourceExhausted("injected: no space left on device")
                : IoError("injected: short write");
  }
  SY_RETURN_IF_ERROR(file.WriteAt(offset, data));
  ino.size = std::max(ino.size, offset + data.size());
  return Status::Ok();
}

Status FaultInjectionEnv::Sync(const std::string& path, InodeId id, uint64_t epoch,
                               WritableFile& file) {
  std::lock_guard lock(mu_);
  if (dead_ || epoch != epoch_ || CountOperationLocked()) return DeadError();
  ++syncs_;
  if (failing_syncs_ > 0) {
    --failing_syncs_;
    return IoError("injected: fdatasync of " + path + " failed");
  }
  if (real_sync_) SY_RETURN_IF_ERROR(file.Sync());
  if (auto it = inodes_.find(id); it != inodes_.end()) it->second.synced = it->second.size;
  return Status::Ok();
}

Status FaultInjectionEnv::Truncate(InodeId id, uint64_t epoch, WritableFile& file, uint64_t size) {
  std::lock_guard lock(mu_);
  if (dead_ || epoch != epoch_ || CountOperationLocked()) return DeadError();
  SY_RETURN_IF_ERROR(file.Truncate(size));
  if (auto it = inodes_.find(id); it != inodes_.end()) {
    it->second.size = size;
    it->second.synced = std::min(it->second.synced, size);
  }
  return Status::Ok();
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::OpenWritable(const std::string& path,
                                                                      bool truncate) {
  std::lock_guard lock(mu_);
  if (dead_) return DeadError();
  const std::string p = Normalize(path);
  InodeId id = TrackLocked(p);
  SY_ASSIGN_OR_RETURN(auto file, base_->OpenWritable(path, truncate));
  if (id == 0) {  // created now: its entry is durable after a SyncDir of its directory
    id = next_inode_++;
    inodes_[id] = Inode{};
    current_[p] = id;
  } else if (truncate) {
    inodes_.at(id).size = 0;
    inodes_.at(id).synced = 0;
  }
  return std::unique_ptr<WritableFile>(
      new FaultInjectionWritableFile(this, path, id, epoch_, std::move(file)));
}

Result<std::unique_ptr<RandomAccessFile>> FaultInjectionEnv::OpenReadable(const std::string& path) {
  return base_->OpenReadable(path);
}

Status FaultInjectionEnv::CreateDirIfMissing(const std::string& path) {
  std::lock_guard lock(mu_);
  if (dead_) return DeadError();
  std::vector<std::string> missing;
  for (std::string d = Normalize(path); !d.empty() && d != "." && d != "/" && !base_->FileExists(d);
       d = DirName(d)) {
    missing.push_back(d);
  }
  SY_RETURN_IF_ERROR(base_->CreateDirIfMissing(path));
  new_dirs_.insert(missing.begin(), missing.end());
  return Status::Ok();
}

Result<std::vector<std::string>> FaultInjectionEnv::ListDir(const std::string& dir) {
  return base_->ListDir(dir);
}

Status FaultInjectionEnv::SyncDir(const std::string& dir) {
  std::lock_guard lock(mu_);
  if (dead_ || CountOperationLocked()) return DeadError();
  if (failing_dir_syncs_ > 0) {
    --failing_dir_syncs_;
    return IoError("injected: fsync of directory " + dir + " failed");
  }
  if (real_sync_) SY_RETURN_IF_ERROR(base_->SyncDir(dir));
  // Every entry of `dir` becomes durable as it is now.
  const std::string d = Normalize(dir);
  std::vector<InodeId> unnamed;
  for (auto it = durable_.begin(); it != durable_.end();) {
    if (DirName(it->first) == d && !current_.count(it->first)) {
      unnamed.push_back(it->second);
      it = durable_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [path, id] : current_) {
    if (DirName(path) != d) continue;
    auto it = durable_.find(path);
    if (it != durable_.end() && it->second != id) unnamed.push_back(it->second);
    durable_[path] = id;
  }
  for (InodeId id : unnamed)
    DropInodeIfUnnamedLocked(id);
  for (auto it = new_dirs_.begin(); it != new_dirs_.end();) {
    it = DirName(*it) == d ? new_dirs_.erase(it) : std::next(it);
  }
  return Status::Ok();
}

Status FaultInjectionEnv::Rename(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  if (dead_ || CountOperationLocked()) return DeadError();
  if (failing_renames_ > 0) {
    --failing_renames_;
    return IoError("injected: rename " + from + " failed");
  }
  const std::string f = Normalize(from), t = Normalize(to);
  const InodeId id = TrackLocked(f);
  const InodeId replaced = TrackLocked(t);
  std::optional<std::string> saved;
  if (replaced != 0 && replaced != id) saved = BytesToSaveLocked(t, replaced);
  SY_RETURN_IF_ERROR(base_->Rename(from, to));
  if (id == 0 || f == t) return Status::Ok();
  if (replaced != 0 && replaced != id) ForgetNameLocked(t, replaced, std::move(saved));
  current_.erase(f);
  current_[t] = id;
  return Status::Ok();
}

Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  std::lock_guard lock(mu_);
  if (dead_ || CountOperationLocked()) return DeadError();
  const std::string p = Normalize(path);
  const InodeId id = TrackLocked(p);
  std::optional<std::string> saved;
  if (id != 0) saved = BytesToSaveLocked(p, id);
  SY_RETURN_IF_ERROR(base_->RemoveFile(path));
  if (id != 0) ForgetNameLocked(p, id, std::move(saved));
  return Status::Ok();
}

bool FaultInjectionEnv::FileExists(const std::string& path) {
  return base_->FileExists(path);
}

}  // namespace sy
