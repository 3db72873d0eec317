// log_bench: append throughput of the local event log with fsync: always.
//
// Each writer has one append in flight and issues the next when it completes, so throughput
// comes only from group commit across writers. Cases: single-event appends with one thread per
// writer ("single"), single-event appends with the writers' appends kept in flight by callbacks
// on one feeder thread, as the HTTP I/O threads do ("single-async"), and batches of 100 events
// of ~900 bytes; each at 1, 16 and 64 writers. MB/s counts the bytes written to
// segment files (frame headers included), the figure comparable with raw disk bandwidth.
//
// Usage: log_bench [--dir DIR] [--seconds S] [--writers 1,16,64]
// Prints a table and one "RESULT ..." line per case for scripts (bench/log_bench.sh).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/logging.h"
#include "base/metrics.h"
#include "log/local/local_log.h"

namespace {

using sy::log::AppendResult;
using sy::log::LogRecord;

struct Case {
  const char* name;
  int events_per_append;
  int writers;
  // false: one thread per writer, each waiting for its append. true: `writers` appends kept in
  // flight by one feeder thread that re-appends as callbacks arrive — how the HTTP ingest path
  // uses the log (each connection is one writer; the I/O threads never block on an append).
  bool async = false;
};

struct Outcome {
  double events_per_s = 0;
  double mb_per_s = 0;
  double events_per_fsync = 0;
};

// Waits for one append's callback.
class Waiter {
 public:
  void Done(bool ok) {
    {
      std::lock_guard lock(mu_);
      done_ = true;
      ok_ = ok;
    }
    cv_.notify_one();
  }
  bool Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return done_; });
    done_ = false;
    return ok_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  bool ok_ = false;
};

Outcome RunCase(const std::string& dir, const Case& c, double seconds) {
  std::filesystem::remove_all(dir);
  sy::MetricsRegistry metrics;
  sy::log::LocalLogOptions opt;
  opt.dir = dir;
  opt.fsync = sy::log::FsyncPolicy::kAlways;
  opt.metrics = &metrics;
  auto log = sy::log::OpenLocalLog(opt);
  if (!log.ok()) {
    std::fprintf(stderr, "open: %s\n", log.status().ToString().c_str());
    std::exit(1);
  }
  // ~900-byte Segment-like track event.
  std::string payload =
      R"({"type":"track","event":"Order Completed","userId":"user-000000","properties":{)";
  while (payload.size() < 880)
    payload += R"("k":"v0123456789abcdef",)";
  payload += R"("end":1}})";

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> events{0};
  std::vector<std::thread> writers;
  std::mutex ready_mu;
  std::condition_variable ready_cv;
  std::vector<int> ready;  // async mode: writers whose append completed
  auto make_batch = [&](int w, uint64_t& n) {
    std::vector<LogRecord> batch;
    batch.reserve(c.events_per_append);
    for (int i = 0; i < c.events_per_append; ++i) {
      batch.push_back(LogRecord{"web", "m-" + std::to_string(w) + "-" + std::to_string(n++),
                                sy::TimestampMs(1'700'000'000'000), payload});
    }
    return batch;
  };
  if (c.async) {
    writers.emplace_back([&] {
      uint64_t n = 0;
      std::vector<int> todo;
      for (int w = 0; w < c.writers; ++w)
        todo.push_back(w);
      while (!stop.load(std::memory_order_relaxed)) {
        for (int w : todo) {
          (*log)->Append(make_batch(w, n), [&, w](const AppendResult& r) {
            if (!r.status.ok()) {
              std::fprintf(stderr, "append failed\n");
              std::exit(1);
            }
            events.fetch_add(c.events_per_append, std::memory_order_relaxed);
            {
              std::lock_guard lock(ready_mu);
              ready.push_back(w);
            }
            ready_cv.notify_one();
          });
        }
        todo.clear();
        std::unique_lock lock(ready_mu);
        ready_cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return !ready.empty(); });
        todo.swap(ready);
      }
    });
  } else {
    for (int w = 0; w < c.writers; ++w) {
      writers.emplace_back([&, w] {
        Waiter waiter;
        uint64_t n = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          (*log)->Append(make_batch(w, n),
                         [&](const AppendResult& r) { waiter.Done(r.status.ok()); });
          if (!waiter.Wait()) {
            std::fprintf(stderr, "append failed\n");
            std::exit(1);
          }
          events.fetch_add(c.events_per_append, std::memory_order_relaxed);
        }
      });
    }
  }
  // Warm up, then measure.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto bytes_counter = metrics.GetCounter("switchyard_log_appended_bytes_total", "");
  auto fsync_counter = metrics.GetCounter("switchyard_log_fsyncs_total", "");
  uint64_t e0 = events.load(), b0 = bytes_counter->Value(), f0 = fsync_counter->Value();
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  uint64_t e1 = events.load(), b1 = bytes_counter->Value(), f1 = fsync_counter->Value();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stop = true;
  for (auto& t : writers)
    t.join();
  (void)(*log)->Close();  // completes appends still in flight (async mode) before we return
  std::filesystem::remove_all(dir);
  Outcome out;
  out.events_per_s = static_cast<double>(e1 - e0) / elapsed;
  out.mb_per_s = static_cast<double>(b1 - b0) / elapsed / 1e6;
  out.events_per_fsync = f1 > f0 ? static_cast<double>(e1 - e0) / static_cast<double>(f1 - f0) : 0;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = (std::filesystem::temp_directory_path() / "sy_log_bench").string();
  double seconds = 3;
  std::vector<int> writer_counts = {1, 16, 64};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--dir") {
      dir = argv[i + 1];
    } else if (flag == "--seconds") {
      seconds = std::atof(argv[i + 1]);
    } else if (flag == "--writers") {
      writer_counts.clear();
      std::stringstream ss(argv[i + 1]);
      for (std::string item; std::getline(ss, item, ',');)
        writer_counts.push_back(std::stoi(item));
    } else {
      std::fprintf(stderr, "usage: log_bench [--dir DIR] [--seconds S] [--writers 1,16,64]\n");
      return 2;
    }
  }
  sy::SetLogLevel("warn");
  std::printf("%-12s %8s %14s %10s %14s\n", "case", "writers", "events/s", "MB/s", "events/fsync");
  for (const char* mode : {"single", "single-async", "batch100"}) {
    std::string m = mode;
    int per_append = m == "batch100" ? 100 : 1;
    for (int w : writer_counts) {
      Case c{mode, per_append, w, m == "single-async"};
      Outcome o = RunCase(dir + "/run", c, seconds);
      std::printf("%-12s %8d %14.0f %10.1f %14.1f\n", mode, w, o.events_per_s, o.mb_per_s,
                  o.events_per_fsync);
      std::printf("RESULT mode=%s writers=%d events_per_s=%.0f mb_per_s=%.2f\n", mode, w,
                  o.events_per_s, o.mb_per_s);
      std::fflush(stdout);
    }
  }
  return 0;
}
