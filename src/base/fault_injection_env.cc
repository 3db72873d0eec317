#include "base/fault_injection_env.h"

#include <algorithm>

namespace sy {

class FaultInjectionWritableFile final : public WritableFile {
 public:
  FaultInjectionWritableFile(FaultInjectionEnv* env, std::string path,
                             std::unique_ptr<WritableFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}
  Status WriteAt(uint64_t offset, std::string_view data) override {
    return env_->WriteAt(path_, *base_, offset, data);
  }
  Status Sync() override { return env_->Sync(path_, *base_); }
  Status Truncate(uint64_t size) override { return env_->Truncate(path_, *base_, size); }

 private:
  FaultInjectionEnv* const env_;
  const std::string path_;
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

void FaultInjectionEnv::CrashLocked(bool torn_tail) {
  dead_ = true;
  for (auto& [path, st] : files_) {
    uint64_t keep = st.synced;
    if (torn_tail && st.size > st.synced) {
      keep += std::uniform_int_distribution<uint64_t>(0, st.size - st.synced)(rng_);
    }
    if (keep < st.size) {
      auto file = base_->OpenWritable(path, /*truncate=*/false);
      if (file.ok()) (*file)->Truncate(keep).IgnoreError();
    }
    st.size = keep;
    st.synced = keep;
  }
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

Status FaultInjectionEnv::WriteAt(const std::string& path, WritableFile& file, uint64_t offset,
                                  std::string_view data) {
  std::lock_guard lock(mu_);
  if (dead_ || CountOperationLocked()) return DeadError();
  auto& st = files_[path];
  if (short_writes_ > 0 || disk_full_) {
    bool full = disk_full_;
    if (short_writes_ > 0) --short_writes_;
    std::string_view prefix = data.substr(0, data.size() / 2);
    if (!prefix.empty() && file.WriteAt(offset, prefix).ok()) {
      st.size = std::max(st.size, offset + prefix.size());
    }
    return full ? ResourceExhausted("injected: no space left on device")
                : IoError("injected: short write");
  }
  SY_RETURN_IF_ERROR(file.WriteAt(offset, data));
  st.size = std::max(st.size, offset + data.size());
  return Status::Ok();
}

Status FaultInjectionEnv::Sync(const std::string& path, WritableFile& file) {
  std::lock_guard lock(mu_);
  if (dead_ || CountOperationLocked()) return DeadError();
  ++syncs_;
  if (failing_syncs_ > 0) {
    --failing_syncs_;
    return IoError("injected: fdatasync of " + path + " failed");
  }
  if (real_sync_) SY_RETURN_IF_ERROR(file.Sync());
  auto& st = files_[path];
  st.synced = st.size;
  return Status::Ok();
}

Status FaultInjectionEnv::Truncate(const std::string& path, WritableFile& file, uint64_t size) {
  std::lock_guard lock(mu_);
  if (dead_ || CountOperationLocked()) return DeadError();
  SY_RETURN_IF_ERROR(file.Truncate(size));
  auto& st = files_[path];
  st.size = size;
  st.synced = std::min(st.synced, size);
  return Status::Ok();
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::OpenWritable(const std::string& path,
                                                                      bool truncate) {
  std::lock_guard lock(mu_);
  if (dead_) return DeadError();
  bool existed = base_->FileExists(path);
  SY_ASSIGN_OR_RETURN(auto file, base_->OpenWritable(path, truncate));
  auto it = files_.find(path);
  if (it == files_.end()) {
    FileState st;
    if (existed && !truncate) {
      auto r = base_->OpenReadable(path);
      if (r.ok()) {
        auto size = (*r)->Size();
        if (size.ok()) st.size = st.synced = *size;
      }
    }
    files_[path] = st;
  } else if (truncate) {
    it->second.size = 0;
    it->second.synced = 0;
  }
  return std::unique_ptr<WritableFile>(new FaultInjectionWritableFile(this, path, std::move(file)));
}

Result<std::unique_ptr<RandomAccessFile>> FaultInjectionEnv::OpenReadable(const std::string& path) {
  return base_->OpenReadable(path);
}

Status FaultInjectionEnv::CreateDirIfMissing(const std::string& path) {
  {
    std::lock_guard lock(mu_);
    if (dead_) return DeadError();
  }
  return base_->CreateDirIfMissing(path);
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
  return real_sync_ ? base_->SyncDir(dir) : Status::Ok();
}

Status FaultInjectionEnv::Rename(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  if (dead_ || CountOperationLocked()) return DeadError();
  if (failing_renames_ > 0) {
    --failing_renames_;
    return IoError("injected: rename " + from + " failed");
  }
  SY_RETURN_IF_ERROR(base_->Rename(from, to));
  auto it = files_.find(from);
  if (it != files_.end()) {
    files_[to] = it->second;
    files_.erase(from);
  } else {
    files_.erase(to);
  }
  return Status::Ok();
}

Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  std::lock_guard lock(mu_);
  if (dead_ || CountOperationLocked()) return DeadError();
  SY_RETURN_IF_ERROR(base_->RemoveFile(path));
  files_.erase(path);
  return Status::Ok();
}

bool FaultInjectionEnv::FileExists(const std::string& path) {
  return base_->FileExists(path);
}

}  // namespace sy
