#include "observe/disk_usage.h"

#include <sys/statvfs.h>

#include <filesystem>
#include <system_error>

namespace sy::observe {

namespace fs = std::filesystem;

DiskUsage::Figure DiskUsage::Walk(const std::string& dir) const {
  Figure f;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    f.exists = false;
    return f;
  }
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  uint64_t entries = 0;
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (++entries > options_.max_entries) {
      f.complete = false;
      break;
    }
    std::error_code entry_ec;
    if (!it->is_regular_file(entry_ec) || entry_ec) continue;  // a file removed meanwhile too
    const uintmax_t size = it->file_size(entry_ec);
    if (entry_ec) continue;
    f.bytes += size;
    ++f.files;
  }
  if (ec) f.complete = false;  // a directory vanished mid-walk (segments retire): a lower bound
  return f;
}

DiskUsage::Figure DiskUsage::Measure(const std::string& dir, int64_t now_ms) {
  std::lock_guard lock(mu_);
  auto it = cache_.find(dir);
  if (it != cache_.end() && now_ms - it->second.measured_ms < options_.ttl_ms &&
      now_ms >= it->second.measured_ms) {
    return it->second;
  }
  Figure f = Walk(dir);
  f.measured_ms = now_ms;
  cache_[dir] = f;
  return f;
}

std::optional<uint64_t> DiskUsage::FreeBytes(const std::string& path) {
  struct statvfs s {};
  if (::statvfs(path.c_str(), &s) != 0) return std::nullopt;
  return static_cast<uint64_t>(s.f_bavail) * static_cast<uint64_t>(s.f_frsize);
}

}  // namespace sy::observe
