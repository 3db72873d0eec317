// DiskUsage: bytes under a directory (the log, the dead letters, a local archive), for the admin
// API's `GET /api/v1/overview`, measured at most once per `ttl_ms` per directory and never
// walking more than `max_entries` entries: a directory of very many files costs a bounded walk,
// and the answer then says it is a lower bound (`complete: false`).
//
// Reads the file system directly (std::filesystem, sizes from stat): a measurement, not data
// the server keeps, so it does not go through base's Env seam.
//
// Thread safety: thread-safe; a walk runs on the caller's thread under the object's lock (the
// admin API's worker: never an I/O thread).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace sy::observe {

class DiskUsage {
 public:
  struct Options {
    // A walk stops after this many directory entries: ~10 ms of stat calls per 10,000 on a
    // warm cache. The log's segments, the DLQ files and a day of archive files stay far below.
    uint64_t max_entries = 20'000;
    int64_t ttl_ms = 10'000;  // the console polls every few seconds: one walk per 10 s at most
  };
  struct Figure {
    uint64_t bytes = 0;
    uint64_t files = 0;
    bool complete = true;     // false: the walk stopped at max_entries (bytes is a lower bound)
    bool exists = true;       // false: no such directory (bytes 0)
    int64_t measured_ms = 0;  // when the walk ran
  };

  DiskUsage() : DiskUsage(Options{}) {}
  explicit DiskUsage(Options options) : options_(options) {}

  // The size of everything under `dir` (regular files, recursively; symbolic links are not
  // followed), from the cache when measured less than ttl_ms before now_ms.
  Figure Measure(const std::string& dir, int64_t now_ms);

  // Bytes free to unprivileged users on the file system of `path`; nullopt when unknown.
  static std::optional<uint64_t> FreeBytes(const std::string& path);

 private:
  Figure Walk(const std::string& dir) const;
  const Options options_;
  std::mutex mu_;
  std::map<std::string, Figure> cache_;  // by directory; guarded by mu_
};

}  // namespace sy::observe
