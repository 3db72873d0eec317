// Archive write throughput: fills a local event log with N Segment-like events (~900 bytes),
// then runs the Archiver (src/archive) over it into a LocalObjectStore with 64 MiB files, and
// prints events/s, uncompressed and compressed MB/s. Baseline, measured in the same run on the
// same bytes: zlib level 1 compression of the NDJSON in the same 1 MiB members plus writing the
// result with one fdatasync per 64 MiB file (what `gzip -1 | dd conv=fdatasync` would do, without
// pipes) — the work the archiver cannot avoid; the ratio archiver / baseline shows its overhead
// (log read, framing, state, rename).
//
// Usage: archive_bench DIR [EVENTS]   (DIR is created; it keeps data/log and data/archive for
// bench/archive_bench.sh's replay stage)
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <string>
#include <thread>

#include "archive/archiver.h"
#include "archive/gzip.h"
#include "archive/object_store.h"
#include "base/time_format.h"
#include "log/local/local_log.h"

using namespace sy;

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string MakeEvent(uint64_t i, int64_t received_at) {
  std::string ts = FormatIso8601(TimestampMs(received_at));
  std::string e =
      R"({"type":"track","event":"Order Completed","userId":"user-)" + std::to_string(i % 50'000) +
      R"(","anonymousId":"anon-)" + std::to_string(i * 7919 % 1'000'003) +
      R"(","messageId":"bench-)" + std::to_string(i) + R"(","properties":{"orderId":")" +
      std::to_string(i * 31) + R"(","total":)" + std::to_string(i % 997) +
      R"(.5,"currency":"USD","products":[{"sku":"SKU-)" + std::to_string(i % 113) +
      R"(","name":"Monopoly: 3rd Edition","price":19.0,"quantity":1,"category":"Games"}]},)" +
      R"("context":{"library":{"name":"analytics.js","version":"2.11.1"},"ip":"203.0.113.)" +
      std::to_string(i % 250) +
      R"(","userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Safari/537.36","page":{"path":"/checkout","url":"https://shop.example.com/checkout","referrer":"https://shop.example.com/cart"}},)" +
      R"("timestamp":")" + ts + R"(","originalTimestamp":")" + ts + R"(","sentAt":")" + ts +
      R"(","receivedAt":")" + ts + R"("})";
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: archive_bench DIR [EVENTS]\n");
    return 2;
  }
  std::string dir = argv[1];
  uint64_t n = argc > 2 ? std::stoull(argv[2]) : 1'000'000;
  std::filesystem::remove_all(dir + "/data");
  std::filesystem::create_directories(dir + "/data");

  // Setup: the log (not timed).
  log::LocalLogOptions lo;
  lo.dir = dir + "/data/log";
  lo.fsync = log::FsyncPolicy::kNever;
  auto log = std::move(*log::OpenLocalLog(lo));
  const int64_t t0_ms = 1'764'165'600'000;
  uint64_t raw_bytes = 0;
  size_t sample_size = 0;
  for (uint64_t i = 0; i < n;) {
    std::vector<log::LogRecord> recs;
    for (int k = 0; k < 2000 && i < n; ++k, ++i) {
      std::string p = MakeEvent(i, t0_ms + static_cast<int64_t>(i / 20));
      raw_bytes += p.size() + 1;
      sample_size = p.size();
      recs.push_back({i % 5 == 0 ? "backend" : "web", "bench-" + std::to_string(i),
                      TimestampMs(t0_ms + static_cast<int64_t>(i / 20)), std::move(p)});
    }
    std::promise<void> done;
    log->Append(std::move(recs), [&](const log::AppendResult&) { done.set_value(); });
    done.get_future().get();
  }
  std::printf("events: %llu of ~%zu bytes, %.1f MB of NDJSON\n", static_cast<unsigned long long>(n),
              sample_size, raw_bytes / 1e6);

  // Baseline: compress the same NDJSON (1 MiB members, zlib level 1) and write it with one
  // fdatasync per 64 MiB of input.
  double base_compressed = 0;
  double b0 = Now();
  {
    auto reader = std::move(*log->OpenReader());
    std::string member, gz;
    uint64_t file_raw = 0;
    std::string path = dir + "/baseline.gz";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    auto flush = [&] {
      if (!gz.empty() && ::write(fd, gz.data(), gz.size()) < 0) std::perror("write");
      base_compressed += gz.size();
      gz.clear();
      ::fdatasync(fd);
      file_raw = 0;
    };
    while (true) {
      auto batch = reader->Read(4096, 16 << 20);
      if (!batch.ok() || batch->empty()) break;
      for (const auto& e : *batch) {
        member += e.payload;
        member += '\n';
        if (member.size() >= (1 << 20)) {
          file_raw += member.size();
          archive::AppendGzipMember(member, 1, &gz);
          member.clear();
          if (file_raw >= (64u << 20)) flush();
        }
      }
    }
    if (!member.empty()) archive::AppendGzipMember(member, 1, &gz);
    flush();
    ::close(fd);
    std::filesystem::remove(path);
  }
  double base_s = Now() - b0;

  // The archiver.
  archive::ArchiverOptions ao;
  ao.config.enabled = true;
  ao.config.roll_bytes = 64 << 20;
  ao.config.roll_age_ms = 3'600'000;
  ao.log = log.get();
  ao.store = archive::NewLocalObjectStore(dir + "/data/archive");
  ao.state_dir = dir + "/data/archive-state";
  MetricsRegistry metrics;
  ao.metrics = &metrics;
  double a0 = Now();
  auto archiver = std::move(*archive::Archiver::Start(std::move(ao)));
  while (archiver->read_position().value() < n)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  archiver->Stop();  // uploads the files still open
  double arch_s = Now() - a0;
  double compressed = metrics.GetCounter("switchyard_archive_bytes_total", "")->Value();
  uint64_t archived = archiver->events_archived();
  archiver.reset();
  log->Close().IgnoreError();

  std::printf(
      "baseline (zlib -1 members + write + fdatasync): %.2f s  %.0f events/s  %.1f MB/s in  "
      "%.1f MB/s out\n",
      base_s, n / base_s, raw_bytes / 1e6 / base_s, base_compressed / 1e6 / base_s);
  std::printf(
      "archiver: %.2f s  %.0f events/s  %.1f MB/s in  %.1f MB/s compressed  (ratio %.2f)  "
      "files %llu\n",
      arch_s, archived / arch_s, raw_bytes / 1e6 / arch_s, compressed / 1e6 / arch_s,
      raw_bytes / compressed,
      static_cast<unsigned long long>(
          metrics.GetCounter("switchyard_archive_files_total", "")->Value()));
  std::printf("archiver / baseline: %.2f\n", base_s / arch_s);
  if (archived != n) {
    std::fprintf(stderr, "archived %llu of %llu events\n",
                 static_cast<unsigned long long>(archived), static_cast<unsigned long long>(n));
    return 1;
  }
  return 0;
}
