#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "archive/object_store.h"

namespace sy::archive {
namespace {

namespace fs = std::filesystem;

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("open " + dir + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return IoError("fsync " + dir + ": " + std::strerror(errno));
  return Status::Ok();
}

// A directory tree: key "a/b/c" is the file <root>/a/b/c. Put writes <file>.tmp.<pid>, fsyncs
// it, renames it over the key and fsyncs the directory.
class LocalObjectStore final : public ObjectStore {
 public:
  explicit LocalObjectStore(std::string root) : root_(std::move(root)) {}

  Status Put(const std::string& key, std::string_view data) override {
    if (key.empty() || key.find("..") != std::string::npos || key.front() == '/')
      return InvalidArgument("bad object key " + key);
    fs::path path = fs::path(root_) / key;
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) return IoError("create " + path.parent_path().string() + ": " + ec.message());
    std::string tmp = path.string() + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return IoError("open " + tmp + ": " + std::strerror(errno));
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        Status s = IoError("write " + tmp + ": " + std::strerror(errno));
        ::close(fd);
        ::unlink(tmp.c_str());
        return s;
      }
      done += static_cast<size_t>(n);
    }
    if (::fdatasync(fd) != 0) {
      Status s = IoError("fdatasync " + tmp + ": " + std::strerror(errno));
      ::close(fd);
      ::unlink(tmp.c_str());
      return s;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      Status s = IoError("rename " + tmp + ": " + std::strerror(errno));
      ::unlink(tmp.c_str());
      return s;
    }
    return SyncDir(path.parent_path().string());
  }

  Result<std::string> Get(const std::string& key) override {
    std::ifstream in(fs::path(root_) / key, std::ios::binary);
    if (!in) return NotFound("no object " + key + " in " + root_);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override {
    std::vector<ObjectInfo> out;
    std::error_code ec;
    if (!fs::exists(root_, ec)) return out;
    // Walk only the directory part of the prefix.
    std::string dir_part =
        prefix.substr(0, prefix.rfind('/') == std::string::npos ? 0 : prefix.rfind('/') + 1);
    fs::path start = fs::path(root_) / dir_part;
    if (!fs::exists(start, ec)) return out;
    for (auto it = fs::recursive_directory_iterator(start, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      std::string rel = fs::relative(it->path(), root_, ec).generic_string();
      if (ec) return IoError("list " + root_ + ": " + ec.message());
      if (!rel.starts_with(prefix) || rel.find(".tmp.") != std::string::npos) continue;
      out.push_back({rel, static_cast<uint64_t>(it->file_size(ec))});
    }
    if (ec) return IoError("list " + root_ + ": " + ec.message());
    std::sort(out.begin(), out.end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    return out;
  }

  std::string Describe() const override { return "local:" + root_; }

 private:
  std::string root_;
};

}  // namespace

std::unique_ptr<ObjectStore> NewLocalObjectStore(std::string root) {
  return std::make_unique<LocalObjectStore>(std::move(root));
}

}  // namespace sy::archive
