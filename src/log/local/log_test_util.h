// Helpers shared by the local log's tests. Test-only.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <string>
#include <vector>

#include "log/local/local_log.h"

namespace sy::log::testing {

// A fresh directory under the test temp dir, removed at destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    path_ = (std::filesystem::temp_directory_path() /
             ("sy_log_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
              std::to_string(rd())))
                .string();
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline LogRecord MakeRecord(const std::string& payload, int64_t received_at = 1'700'000'000'000,
                            const std::string& source = "web") {
  return LogRecord{source, "msg-" + payload, TimestampMs(received_at), payload};
}

// Appends and waits for the callback.
inline AppendResult AppendSync(EventLog& log, std::vector<LogRecord> records) {
  std::promise<AppendResult> p;
  auto f = p.get_future();
  log.Append(std::move(records), [&p](const AppendResult& r) { p.set_value(r); });
  return f.get();
}

// Reads everything from `cursor` until caught up.
inline Result<std::vector<LogEntry>> ReadAll(LogCursor& cursor) {
  std::vector<LogEntry> all;
  for (;;) {
    SY_ASSIGN_OR_RETURN(auto batch, cursor.Read(37, 1 << 20));
    if (batch.empty()) return all;
    for (auto& e : batch)
      all.push_back(std::move(e));
  }
}

// A whole file's bytes ("" if it cannot be read).
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace sy::log::testing
