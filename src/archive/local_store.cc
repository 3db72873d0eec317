#include <algorithm>
#include <filesystem>

#include "archive/object_store.h"

namespace sy::archive {
namespace {

namespace fs = std::filesystem;

// A directory tree: key "a/b/c" is the file <root>/a/b/c. Put creates the missing directories
// (and fsyncs each one's parent, so the path survives a power loss), then writes the object with
// WriteFileAtomically (<file>.tmp, fdatasync, rename, directory fsync). Every failure is an error
// naming the path; the archiver then retries and keeps the events behind its cursor.
class LocalObjectStore final : public ObjectStore {
 public:
  LocalObjectStore(std::string root, Env* env) : root_(std::move(root)), env_(env) {}

  Status Put(const std::string& key, std::string_view data) override {
    if (key.empty() || key.find("..") != std::string::npos || key.front() == '/')
      return InvalidArgument("bad object key " + key);
    const std::string path = (fs::path(root_) / key).string();
    SY_RETURN_IF_ERROR(CreateDirsDurably(DirName(path)));
    return WriteFileAtomically(env_, path, data);
  }

  Result<std::string> Get(const std::string& key) override {
    const std::string path = (fs::path(root_) / key).string();
    if (!env_->FileExists(path)) return NotFound("no object " + key + " in " + root_);
    return ReadWholeFile(env_, path);
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
      // Skips the temp files of Put (and of older versions, which named them <key>.tmp.<pid>).
      if (!rel.starts_with(prefix) || rel.ends_with(".tmp") ||
          rel.find(".tmp.") != std::string::npos)
        continue;
      out.push_back({rel, static_cast<uint64_t>(it->file_size(ec))});
    }
    if (ec) return IoError("list " + root_ + ": " + ec.message());
    std::sort(out.begin(), out.end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    return out;
  }

  Status Delete(const std::string& key) override {
    if (key.empty() || key.find("..") != std::string::npos || key.front() == '/')
      return InvalidArgument("bad object key " + key);
    const std::string path = (fs::path(root_) / key).string();
    if (!env_->FileExists(path)) return Status::Ok();
    SY_RETURN_IF_ERROR(env_->RemoveFile(path));
    return env_->SyncDir(DirName(path));
  }

  std::string Describe() const override { return "local:" + root_; }

 private:
  // Creates `dir` and its missing parents, fsyncing the parent of each one created.
  Status CreateDirsDurably(const std::string& dir) {
    std::vector<std::string> missing;
    for (std::string d = dir; !d.empty() && d != "." && d != "/" && !env_->FileExists(d);
         d = DirName(d)) {
      missing.push_back(d);
    }
    if (missing.empty()) return Status::Ok();
    SY_RETURN_IF_ERROR(env_->CreateDirIfMissing(dir));
    for (const auto& d : missing)
      SY_RETURN_IF_ERROR(env_->SyncDir(DirName(d)));
    return Status::Ok();
  }

  std::string root_;
  Env* const env_;
};

}  // namespace

std::unique_ptr<ObjectStore> NewLocalObjectStore(std::string root, Env* env) {
  return std::make_unique<LocalObjectStore>(std::move(root), env);
}

}  // namespace sy::archive
