// DedupeRun: one immutable file of dedupe keys that the in-memory DedupeIndex spilled to disk
// because it would otherwise pass `ingest.dedupe.max_memory` (docs/formats/dedupe.md, "Runs").
//
// The file holds 128-bit keys sorted and unique, each with the received_at time of its event. In
// memory a run keeps only a blocked Bloom filter (the owner chooses its bits per key; 10 gives
// ~1 % false positives) and one fence key per 128 entries (0.125 B per key); with 0 bits, neither
// (MayContain is always true and Find binary-searches the file). A lookup is
// MayContain() — one 64-byte line of the filter, no I/O — and, only when that says "maybe",
// Find(): one ReadAt of at most 3 KiB and a binary search. A false positive of the filter costs
// that read and nothing else: Find() is exact, so a Bloom false positive never makes a new event
// a duplicate.
//
// Files are written through the Env, durably (`<path>.tmp`, fdatasync, rename, directory fsync),
// and never modified afterwards: a run is replaced by a merge or deleted once every key in it is
// older than the window.
//
// Thread safety: a DedupeRun is immutable once built; MayContain and Find may run concurrently
// on any thread. RunWriter and RunReader are used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/hash.h"
#include "base/status.h"

namespace sy::ingest {

struct DedupeEntry {
  Hash128 key;
  int64_t time_ms = 0;  // received_at of the event stored under `key`
};

// Key order of a run: by key.hi, then key.lo, as unsigned integers.
inline bool KeyLess(const Hash128& a, const Hash128& b) {
  return a.hi != b.hi ? a.hi < b.hi : a.lo < b.lo;
}

// A blocked Bloom filter over 128-bit keys that are already uniform hashes: a key picks one
// 512-bit line (from key.hi) and sets k bits in it (9 bits of key.lo each). One cache miss per
// lookup. bits_per_key 0 means no filter at all: MayContain() is always true.
class RunFilter {
 public:
  RunFilter() = default;
  RunFilter(uint64_t keys, int bits_per_key);
  void Insert(const Hash128& key);
  bool MayContain(const Hash128& key) const;
  size_t bytes() const { return words_.size() * sizeof(uint64_t); }
  int bits_per_key() const { return bits_per_key_; }

 private:
  const uint64_t* LineOf(const Hash128& key) const;
  std::vector<uint64_t> words_;  // 8 words per line
  uint64_t lines_ = 0;
  int bits_per_key_ = 0;
  int probes_ = 0;
};

class DedupeRun {
 public:
  // Opens and checks an existing run file (magic, size, order, CRC), building its filter with
  // `bits_per_key` bits per key and its fences.
  static Result<std::shared_ptr<DedupeRun>> Open(Env* env, const std::string& path,
                                                 int bits_per_key);
  // The entry count a run file's header announces, without reading the rest (to size filters).
  static Result<uint64_t> ReadCount(Env* env, const std::string& path);

  bool MayContain(const Hash128& key) const { return filter_.MayContain(key); }
  // The stored time of `key`, or nullopt when the run does not hold it. An error names the file.
  Result<std::optional<int64_t>> Find(const Hash128& key) const;

  const std::string& path() const { return path_; }
  uint64_t count() const { return count_; }
  int64_t min_time_ms() const { return min_time_ms_; }
  int64_t max_time_ms() const { return max_time_ms_; }
  int bits_per_key() const { return filter_.bits_per_key(); }
  // What the run holds in memory: its filter and fences.
  size_t memory_bytes() const {
    return filter_.bytes() + fences_.capacity() * sizeof(Hash128) + sizeof(*this);
  }

 private:
  friend class RunWriter;
  friend class RunReader;
  DedupeRun() = default;

  std::string path_;
  std::unique_ptr<RandomAccessFile> file_;
  uint64_t count_ = 0;
  int64_t min_time_ms_ = 0;
  int64_t max_time_ms_ = 0;
  RunFilter filter_;
  // Key of entry i * 128, when the run has a filter; without one (the owner's budget is spent)
  // the run costs no memory per key and Find() binary-searches the file, one read per step.
  bool fenced_ = false;
  std::vector<Hash128> fences_;
};

// Writes one run: Add() entries in strictly increasing key order, then Finish(). The filter is
// sized for `expected_keys` (an upper bound of what will be added).
class RunWriter {
 public:
  static Result<std::unique_ptr<RunWriter>> Create(Env* env, const std::string& path,
                                                   uint64_t expected_keys, int bits_per_key);
  ~RunWriter();
  Status Add(const DedupeEntry& entry);
  // Seal() then Persist().
  Result<std::shared_ptr<DedupeRun>> Finish();
  // Writes the header and trailer and opens the run for reading, still under `<path>.tmp` and
  // not yet durable (a crash loses it; the owner must not rely on it surviving).
  Result<std::shared_ptr<DedupeRun>> Seal();
  // After Seal(): fdatasyncs, renames `<path>.tmp` to `path` and fsyncs the directory. On error
  // nothing is left under `path` by this writer (the temp file is removed when possible) and the
  // run must not be relied on after a restart.
  Status Persist();

 private:
  RunWriter() = default;
  Status FlushBuffer();

  Env* env_ = nullptr;
  std::string path_;
  std::unique_ptr<WritableFile> file_;
  std::shared_ptr<DedupeRun> run_;
  std::string buffer_;
  uint64_t written_ = 0;  // bytes of entries in the file
  uint32_t crc_ = 0;
  bool finished_ = false;
};

// Reads a run's entries in order, in blocks (for merging runs).
class RunReader {
 public:
  explicit RunReader(const DedupeRun* run) : run_(run) {}
  // The next entry, or nullopt at the end.
  Result<std::optional<DedupeEntry>> Next();

 private:
  const DedupeRun* run_;
  std::vector<DedupeEntry> block_;
  size_t pos_ = 0;
  uint64_t next_index_ = 0;
};

// Merges two runs into a new one at `path`: keys of both, one entry per key (the later time),
// entries received at or before `expired_at_or_before_ms` left out.
Result<std::shared_ptr<DedupeRun>> MergeRuns(Env* env, const DedupeRun& a, const DedupeRun& b,
                                             const std::string& path,
                                             int64_t expired_at_or_before_ms, int bits_per_key);

}  // namespace sy::ingest
