#include "base/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sy {
namespace {

Status ErrnoStatus(std::string_view what, const std::string& path, int err) {
  std::string msg = std::string(what) + " " + path + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return ResourceExhausted(std::move(msg));
  return IoError(std::move(msg));
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override { ::close(fd_); }

  Status WriteAt(uint64_t offset, std::string_view data) override {
    while (!data.empty()) {
      ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("pwrite", path_, errno);
      }
      data.remove_prefix(static_cast<size_t>(n));
      offset += static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }

  Status Sync() override {
    if (::fdatasync(fd_) != 0) return ErrnoStatus("fdatasync", path_, errno);
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return ErrnoStatus("ftruncate", path_, errno);
    }
    return Status::Ok();
  }

 private:
  std::string path_;
  int fd_;
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixRandomAccessFile() override { ::close(fd_); }

  Result<size_t> ReadAt(uint64_t offset, size_t n, char* scratch) const override {
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd_, scratch + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("pread", path_, errno);
      }
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  }

  Result<uint64_t> Size() const override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return ErrnoStatus("fstat", path_, errno);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  std::string path_;
  int fd_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<WritableFile>> OpenWritable(const std::string& path,
                                                     bool truncate) override {
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0);
    int fd = ::open(path.c_str(), flags, kFileMode);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd));
  }

  Result<std::unique_ptr<RandomAccessFile>> OpenReadable(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    return std::unique_ptr<RandomAccessFile>(new PosixRandomAccessFile(path, fd));
  }

  Status CreateDirIfMissing(const std::string& path) override {
    if (path.empty()) return Status::Ok();
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) return Status::Ok();
      return IoError("mkdir " + path + ": exists and is not a directory");
    }
    std::string parent = DirName(path);
    if (parent != path && parent != "." && parent != "/") {
      SY_RETURN_IF_ERROR(CreateDirIfMissing(parent));
    }
    if (::mkdir(path.c_str(), kDirMode) != 0 && errno != EEXIST) {
      return ErrnoStatus("mkdir", path, errno);
    }
    return Status::Ok();
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus("opendir", dir, errno);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    ::closedir(d);
    return names;
  }

  Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open dir", dir, errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return ErrnoStatus("fsync dir", dir, err);
    return Status::Ok();
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0)
      return ErrnoStatus("rename", from + " to " + to, errno);
    return Status::Ok();
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus("unlink", path, errno);
    return Status::Ok();
  }

  bool FileExists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }
};

}  // namespace

std::string DirName(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/')
    p.pop_back();
  auto slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

Result<uint64_t> FileSize(Env* env, const std::string& path) {
  SY_ASSIGN_OR_RETURN(auto file, env->OpenReadable(path));
  return file->Size();
}

Env* Env::Default() {
  static Env* env = new PosixEnv();
  return env;
}

Status WriteFileAtomically(Env* env, const std::string& path, std::string_view data) {
  std::string tmp = path + ".tmp";
  Status s;
  {
    SY_ASSIGN_OR_RETURN(auto file, env->OpenWritable(tmp, /*truncate=*/true));
    s = file->WriteAt(0, data);
    if (s.ok()) s = file->Sync();
  }
  if (s.ok()) s = env->Rename(tmp, path);
  if (!s.ok()) {
    if (env->FileExists(tmp)) env->RemoveFile(tmp).IgnoreError();
    return s;
  }
  return env->SyncDir(DirName(path));
}

Status CreateDirDurably(Env* env, const std::string& path) {
  std::vector<std::string> created;
  for (std::string d = path; !d.empty() && d != "." && d != "/" && !env->FileExists(d);
       d = DirName(d)) {
    created.push_back(d);
  }
  SY_RETURN_IF_ERROR(env->CreateDirIfMissing(path));
  // Outermost first: a parent's own entry is durable before the entries in it are synced.
  for (auto it = created.rbegin(); it != created.rend(); ++it)
    SY_RETURN_IF_ERROR(env->SyncDir(DirName(*it)));
  if (created.empty()) SY_RETURN_IF_ERROR(env->SyncDir(DirName(path)));
  return Status::Ok();
}

Status ReplaceFile(Env* env, const std::string& path, std::string_view data) {
  std::string tmp = path + ".tmp";
  {
    SY_ASSIGN_OR_RETURN(auto file, env->OpenWritable(tmp, /*truncate=*/true));
    SY_RETURN_IF_ERROR(file->WriteAt(0, data));
  }
  return env->Rename(tmp, path);
}

Result<std::string> ReadWholeFile(Env* env, const std::string& path) {
  SY_ASSIGN_OR_RETURN(auto file, env->OpenReadable(path));
  SY_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  std::string data(size, '\0');
  SY_ASSIGN_OR_RETURN(size_t n, file->ReadAt(0, data.size(), data.data()));
  data.resize(n);
  return data;
}

}  // namespace sy
