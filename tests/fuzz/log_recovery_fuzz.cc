// Fuzz target: on-disk bytes → the local log's recovery. The input becomes the first segment
// file of a fresh log directory (and, when the first byte says so, its last 20 bytes a cursor
// file), then the log is opened as the server would after a crash. Invariants checked on every
// input:
//  - opening either fails with an error or recovers; it never crashes;
//  - after recovery the log is appendable: one more event is acknowledged, and a reopen reads
//    back exactly the recovered events followed by that event (recovery is idempotent and never
//    takes back what it already recovered);
//  - offsets read back are consecutive from the log's start.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include "base/logging.h"
#include "log/local/local_log.h"
#include "log/local/segment.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

void WriteFile(const std::filesystem::path& p, const uint8_t* data, size_t size) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

sy::log::LocalLogOptions Options(const std::string& dir) {
  sy::log::LocalLogOptions o;
  o.dir = dir;
  o.fsync = sy::log::FsyncPolicy::kNever;  // durability is not under test; speed is
  return o;
}

// Every entry from the log's start, or nullopt when reading fails.
std::optional<std::vector<sy::log::LogEntry>> ReadAll(sy::log::EventLog* log) {
  auto reader = log->OpenReader();
  if (!reader.ok()) return std::nullopt;
  std::vector<sy::log::LogEntry> all;
  for (int guard = 0; guard < 100000; ++guard) {
    auto batch = (*reader)->Read(1024, 1 << 20);
    if (!batch.ok()) return std::nullopt;
    if (batch->empty()) break;
    for (auto& e : *batch)
      all.push_back(std::move(e));
  }
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const bool quiet = (sy::SetLogLevel("off"), true);  // recovery logs every torn tail
  (void)quiet;
  static const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("sy_logfuzz_" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root / "cursors");
  const bool with_cursor = (data[0] & 1) && size > 21;
  ++data;
  --size;
  if (with_cursor) {
    WriteFile(root / "cursors" / "fz.cursor", data + size - 20, 20);
    size -= 20;
  }
  WriteFile(root / sy::log::SegmentFileName(sy::Offset(0)), data, size);

  auto opened = sy::log::OpenLocalLog(Options(root.string()));
  if (!opened.ok()) return 0;  // refusing a damaged directory with an error is allowed
  auto& log = *opened;
  auto recovered = ReadAll(log.get());
  if (!recovered) {
    (void)log->Close();
    return 0;  // a read error on what recovery kept is reported, not a crash
  }
  for (size_t i = 0; i < recovered->size(); ++i)
    Check((*recovered)[i].offset.value() == log->StartOffset().value() + i,
          "recovered offsets are consecutive");

  std::promise<sy::log::AppendResult> appended;
  std::vector<sy::log::LogRecord> records(1);
  records[0] = {"web", "fuzz-mid", sy::TimestampMs(1), R"({"type":"track"})"};
  log->Append(std::move(records), [&](const sy::log::AppendResult& r) { appended.set_value(r); });
  auto result = appended.get_future().get();
  Check(result.status.ok(), "a recovered log accepts an append");
  Check(log->Close().ok(), "a recovered log closes");
  log.reset();

  auto reopened = sy::log::OpenLocalLog(Options(root.string()));
  Check(reopened.ok(), "a log that was recovered and closed reopens");
  auto again = ReadAll(reopened->get());
  Check(again.has_value(), "a reopened log reads");
  Check(again->size() == recovered->size() + 1,
        "reopen keeps the recovered events and the new one");
  for (size_t i = 0; i < recovered->size(); ++i)
    Check((*again)[i].payload == (*recovered)[i].payload, "recovered events are stable");
  Check(again->back().message_id == "fuzz-mid", "the appended event is last");
  Check((*reopened)->Close().ok(), "reopened log closes");
  return 0;
}
