// The dedupe index's cost per unique key, in process (no HTTP, no log), against the in-memory
// baseline measured in the same run (docs/benchmarks.md, "Dedupe index"):
//   A. in memory, no bound (max_memory 0: every key of the window in memory, as before the bound)
//   B. the same keys under the default budget (128 MiB): nothing spills, the cost must match A
//   C. KEYS keys in memory, no bound (the baseline at scale; its RSS grows with the keys)
//   D. the same KEYS keys under a small budget: the oldest keys spill to run files, merged in the
//      background; then duplicates read back from runs, and new keys against them
// Each phase drives the index as the server does: prefetch and claim a request's keys (an I/O
// thread), commit them (the log's completion thread), Flush every 2 s of fake time worth of keys.
// CPU is the process's (all threads: the spill thread's sorting, writing and merging included).
//
// Usage: dedupe_bench [KEYS] [SMALL_MAX_MEMORY_MB] [DIR]   (defaults 2000000, 16, a temp dir)
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "base/clock.h"
#include "ingest/dedupe_index.h"
#include "tests/support/memory_event_log.h"

namespace {

using sy::ingest::DedupeIndex;

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double RssMb() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

struct Phase {
  double cpu_us_per_key = 0;
  double claim_us_per_key = 0;
};

std::unique_ptr<DedupeIndex> OpenIndex(const std::filesystem::path& dir, sy::FakeClock* clock,
                                       sy::testing::MemoryEventLog* log, int64_t max_memory) {
  std::filesystem::remove_all(dir);
  DedupeIndex::Options o;
  o.dir = dir.string();
  o.clock = clock;
  o.max_memory_bytes = max_memory;
  auto opened = DedupeIndex::Open(o, log);
  if (!opened.ok()) {
    std::fprintf(stderr, "open: %s\n", opened.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*opened);
}

// Stores keys[0, n) as requests of 100 (one /v1/batch each).
Phase StoreUnique(DedupeIndex* idx, sy::FakeClock* clock, const std::vector<sy::Hash128>& keys,
                  size_t n, uint64_t* claimant, const char* name) {
  constexpr size_t kBatch = 100;
  std::vector<sy::Hash128> batch, claimed;
  uint64_t refused = 0;
  const double cpu0 = CpuSeconds(), t0 = Now();
  double claim_s = 0;
  for (size_t i = 0; i < n; i += kBatch) {
    batch.assign(keys.begin() + static_cast<std::ptrdiff_t>(i),
                 keys.begin() + static_cast<std::ptrdiff_t>(std::min(n, i + kBatch)));
    claimed.clear();
    const double c0 = Now();
    idx->Prefetch(batch);
    for (const auto& k : batch) {
      auto r = idx->Claim(k, *claimant);
      if (r == DedupeIndex::ClaimResult::kNew) {
        claimed.push_back(k);
      } else if (r == DedupeIndex::ClaimResult::kUnavailable) {
        ++refused;
      } else {
        std::fprintf(stderr, "%s: a unique key was not new\n", name);
        std::exit(2);
      }
    }
    claim_s += Now() - c0;
    idx->Commit(claimed, clock->Now(), sy::Offset(i + batch.size()));
    ++*claimant;
    if (i % 100'000 == 0) {
      clock->Advance(std::chrono::milliseconds(2'000));
      if (!idx->Flush().ok()) std::exit(3);
    }
  }
  if (!idx->Flush().ok()) std::exit(3);
  Phase p;
  const double cpu = CpuSeconds() - cpu0, wall = Now() - t0;
  p.cpu_us_per_key = cpu * 1e6 / static_cast<double>(n);
  p.claim_us_per_key = claim_s * 1e6 / static_cast<double>(n);
  std::printf(
      "%-44s %9zu keys %6.2f s wall  %.3f us CPU/key  claim %.3f us/key  memory %6.1f MiB  "
      "runs %zu  spilled %llu  refused %llu  RSS %.0f MB\n",
      name, n, wall, p.cpu_us_per_key, p.claim_us_per_key,
      static_cast<double>(idx->memory_bytes()) / (1 << 20), idx->runs(),
      static_cast<unsigned long long>(idx->spilled_keys()),
      static_cast<unsigned long long>(refused), RssMb());
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t keys_n = argc > 1 ? std::stoull(argv[1]) : 2'000'000;
  const int64_t small_mb = argc > 2 ? std::stoll(argv[2]) : 16;
  const std::filesystem::path dir = argc > 3
                                        ? std::filesystem::path(argv[3])
                                        : std::filesystem::temp_directory_path() /
                                              ("sy-dedupe-bench-" + std::to_string(::getpid()));
  // Keys are hashed before timing: the index's cost only (hashing is the same in every phase).
  std::vector<sy::Hash128> keys;
  keys.reserve(keys_n + 200'000);
  for (size_t i = 0; i < keys_n + 200'000; ++i)
    keys.push_back(DedupeIndex::Key("bench", "msg-" + std::to_string(i)));
  const size_t under = std::min<size_t>(keys_n, 250'000);
  uint64_t claimant = 1;

  std::printf("== %ld cores, load average %s", sysconf(_SC_NPROCESSORS_ONLN), [] {
    static char buf[64] = "?\n";
    FILE* f = std::fopen("/proc/loadavg", "r");
    if (f != nullptr) {
      if (std::fgets(buf, sizeof(buf), f) == nullptr) buf[0] = 0;
      std::fclose(f);
    }
    return buf;
  }());
  Phase a, b, c, d;
  {
    sy::FakeClock clock;
    sy::testing::MemoryEventLog log;
    auto idx = OpenIndex(dir, &clock, &log, 0);
    a = StoreUnique(idx.get(), &clock, keys, under, &claimant, "A. in memory, no bound");
  }
  {
    sy::FakeClock clock;
    sy::testing::MemoryEventLog log;
    auto idx = OpenIndex(dir, &clock, &log, 128LL << 20);
    b = StoreUnique(idx.get(), &clock, keys, under, &claimant, "B. max_memory 128 MiB (under it)");
  }
  std::printf("B/A CPU per key: %.2f (claim %.2f)\n", b.cpu_us_per_key / a.cpu_us_per_key,
              b.claim_us_per_key / a.claim_us_per_key);
  {
    sy::FakeClock clock;
    sy::testing::MemoryEventLog log;
    auto idx = OpenIndex(dir, &clock, &log, 0);
    c = StoreUnique(idx.get(), &clock, keys, keys_n, &claimant, "C. in memory, no bound");
  }
  sy::FakeClock clock;
  sy::testing::MemoryEventLog log;
  auto idx = OpenIndex(dir, &clock, &log, small_mb << 20);
  char name[64];
  std::snprintf(name, sizeof(name), "D. max_memory %lld MiB (spilling)",
                static_cast<long long>(small_mb));
  d = StoreUnique(idx.get(), &clock, keys, keys_n, &claimant, name);
  std::printf("D/C CPU per key: %.2f (claim %.2f)\n", d.cpu_us_per_key / c.cpu_us_per_key,
              d.claim_us_per_key / c.claim_us_per_key);

  // Duplicates spread over the window, most of them in runs: what a flood of old messageIds
  // costs an I/O thread.
  std::mt19937_64 rng(1);
  const uint64_t dups = std::min<uint64_t>(keys_n, 200'000);
  uint64_t reads0 = idx->run_reads(), not_dup = 0;
  double t0 = Now(), cpu0 = CpuSeconds();
  for (uint64_t n = 0; n < dups; ++n)
    not_dup += idx->Claim(keys[rng() % keys_n], claimant) != DedupeIndex::ClaimResult::kDuplicate;
  std::printf(
      "D. duplicates (random, %llu): %.2f us wall, %.2f us CPU per claim; %llu run reads; %llu "
      "not answered duplicate (refused while memory was full)\n",
      static_cast<unsigned long long>(dups), (Now() - t0) * 1e6 / static_cast<double>(dups),
      (CpuSeconds() - cpu0) * 1e6 / static_cast<double>(dups),
      static_cast<unsigned long long>(idx->run_reads() - reads0),
      static_cast<unsigned long long>(not_dup));
  // New keys against the full index: how many the filters let through to a run read.
  reads0 = idx->run_reads();
  const uint64_t fresh = 200'000;
  t0 = Now();
  cpu0 = CpuSeconds();
  for (uint64_t n = 0; n < fresh; ++n) {
    auto r = idx->Claim(keys[keys_n + n], ++claimant);
    if (r == DedupeIndex::ClaimResult::kDuplicate) {
      std::fprintf(stderr, "a new key was answered duplicate\n");
      return 4;
    }
    if (r == DedupeIndex::ClaimResult::kNew) idx->Release({keys[keys_n + n]}, claimant);
  }
  std::printf(
      "D. new keys against %llu spilled in %zu runs: %.3f us wall per claim+release, %.2f %% "
      "read a run (filter false positives)\n",
      static_cast<unsigned long long>(idx->spilled_keys()), idx->runs(),
      (Now() - t0) * 1e6 / static_cast<double>(fresh),
      100.0 * static_cast<double>(idx->run_reads() - reads0) / static_cast<double>(fresh));
  idx.reset();
  if (argc <= 3) std::filesystem::remove_all(dir);
  return 0;
}
