#include "ingest/dedupe_run.h"

#include <algorithm>
#include <cstring>

#include "base/coding.h"
#include "base/crc32c.h"

namespace sy::ingest {
namespace {

// File layout (docs/formats/dedupe.md, "Run files"), little-endian:
//   header (32 B): u32 magic "SYDR" | u32 version 1 | u64 count | i64 min_time_ms | i64 max_time_ms
//   count entries (24 B): u64 key_hi | u64 key_lo | i64 time_ms, strictly increasing by key
//   trailer (8 B): u32 crc32c(entries, then header bytes 0..31) | u32 magic "SYDR"
constexpr uint32_t kMagic = 0x52445953;  // "SYDR"
constexpr uint32_t kVersion = 1;
constexpr size_t kHeader = 32;
constexpr size_t kEntry = 24;
constexpr size_t kTrailer = 8;
// One fence per 128 entries: a Find reads at most 3 KiB, and fences cost 0.125 B per key.
constexpr uint64_t kFenceEvery = 128;
// Entries per sequential read when opening or merging (96 KiB).
constexpr size_t kReadBlock = 4096;
constexpr size_t kWriteBuffer = 1 << 20;

DedupeEntry DecodeEntry(const char* p) {
  return {{DecodeFixed64(p + 8), DecodeFixed64(p)}, static_cast<int64_t>(DecodeFixed64(p + 16))};
}

void EncodeHeader(char* h, uint64_t count, int64_t min_time, int64_t max_time) {
  EncodeFixed32(h, kMagic);
  EncodeFixed32(h + 4, kVersion);
  EncodeFixed64(h + 8, count);
  EncodeFixed64(h + 16, static_cast<uint64_t>(min_time));
  EncodeFixed64(h + 24, static_cast<uint64_t>(max_time));
}

struct Header {
  uint64_t count;
  int64_t min_time_ms;
  int64_t max_time_ms;
};

Result<Header> ReadHeader(const RandomAccessFile& file, const std::string& path) {
  char h[kHeader];
  SY_ASSIGN_OR_RETURN(size_t n, file.ReadAt(0, kHeader, h));
  if (n != kHeader || DecodeFixed32(h) != kMagic || DecodeFixed32(h + 4) != kVersion)
    return DataLoss("dedupe run " + path + ": bad header");
  Header header{DecodeFixed64(h + 8), static_cast<int64_t>(DecodeFixed64(h + 16)),
                static_cast<int64_t>(DecodeFixed64(h + 24))};
  SY_ASSIGN_OR_RETURN(uint64_t size, file.Size());
  if (header.count > (size - kHeader) / kEntry ||
      size != kHeader + header.count * kEntry + kTrailer)
    return DataLoss("dedupe run " + path + ": size " + std::to_string(size) +
                    " does not match its header");
  return header;
}

// Reads entries [first, first + n) of `file` into `out`.
Status ReadEntries(const RandomAccessFile& file, const std::string& path, uint64_t first, size_t n,
                   std::string* scratch, std::vector<DedupeEntry>* out) {
  scratch->resize(n * kEntry);
  SY_ASSIGN_OR_RETURN(size_t got,
                      file.ReadAt(kHeader + first * kEntry, n * kEntry, scratch->data()));
  if (got != n * kEntry) return DataLoss("dedupe run " + path + ": short read");
  out->resize(n);
  for (size_t i = 0; i < n; ++i)
    (*out)[i] = DecodeEntry(scratch->data() + i * kEntry);
  return Status::Ok();
}

}  // namespace

RunFilter::RunFilter(uint64_t keys, int bits_per_key)
    : bits_per_key_(std::clamp(bits_per_key, 0, 16)) {
  if (bits_per_key_ == 0) return;
  lines_ = std::max<uint64_t>(1, (keys * static_cast<uint64_t>(bits_per_key_) + 511) / 512);
  words_.assign(lines_ * 8, 0);
  // k ≈ 0.69 × bits per key minimizes false positives; key.lo gives 7 probes of 9 bits.
  probes_ = std::clamp((bits_per_key_ * 69 + 50) / 100, 1, 7);
}

const uint64_t* RunFilter::LineOf(const Hash128& key) const {
  __extension__ using U128 = unsigned __int128;
  return words_.data() + static_cast<size_t>((static_cast<U128>(key.hi) * lines_) >> 64) * 8;
}

void RunFilter::Insert(const Hash128& key) {
  if (lines_ == 0) return;
  uint64_t* line = const_cast<uint64_t*>(LineOf(key));
  uint64_t bits = key.lo;
  for (int i = 0; i < probes_; ++i, bits >>= 9)
    line[(bits & 511) >> 6] |= uint64_t{1} << (bits & 63);
}

bool RunFilter::MayContain(const Hash128& key) const {
  if (lines_ == 0) return true;
  const uint64_t* line = LineOf(key);
  uint64_t bits = key.lo;
  for (int i = 0; i < probes_; ++i, bits >>= 9) {
    if ((line[(bits & 511) >> 6] & (uint64_t{1} << (bits & 63))) == 0) return false;
  }
  return true;
}

Result<uint64_t> DedupeRun::ReadCount(Env* env, const std::string& path) {
  SY_ASSIGN_OR_RETURN(auto file, env->OpenReadable(path));
  SY_ASSIGN_OR_RETURN(Header h, ReadHeader(*file, path));
  return h.count;
}

Result<std::shared_ptr<DedupeRun>> DedupeRun::Open(Env* env, const std::string& path,
                                                   int bits_per_key) {
  std::shared_ptr<DedupeRun> run(new DedupeRun());
  run->path_ = path;
  SY_ASSIGN_OR_RETURN(run->file_, env->OpenReadable(path));
  SY_ASSIGN_OR_RETURN(Header h, ReadHeader(*run->file_, path));
  run->count_ = h.count;
  run->min_time_ms_ = h.min_time_ms;
  run->max_time_ms_ = h.max_time_ms;
  run->filter_ = RunFilter(h.count, bits_per_key);
  run->fenced_ = run->filter_.bits_per_key() > 0;
  if (run->fenced_) run->fences_.reserve((h.count + kFenceEvery - 1) / kFenceEvery);
  std::string scratch;
  std::vector<DedupeEntry> block;
  uint32_t crc = 0;
  Hash128 prev;
  for (uint64_t i = 0; i < h.count; i += kReadBlock) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kReadBlock, h.count - i));
    SY_RETURN_IF_ERROR(ReadEntries(*run->file_, path, i, n, &scratch, &block));
    crc = crc32c::Extend(crc, scratch.data(), scratch.size());
    for (size_t j = 0; j < n; ++j) {
      const DedupeEntry& e = block[j];
      if ((i + j > 0 && !KeyLess(prev, e.key)) || e.time_ms < h.min_time_ms ||
          e.time_ms > h.max_time_ms)
        return DataLoss("dedupe run " + path + ": entry " + std::to_string(i + j) +
                        " out of order or out of its time range");
      if (run->fenced_ && (i + j) % kFenceEvery == 0) run->fences_.push_back(e.key);
      run->filter_.Insert(e.key);
      prev = e.key;
    }
  }
  char t[kTrailer];
  SY_ASSIGN_OR_RETURN(size_t got, run->file_->ReadAt(kHeader + h.count * kEntry, kTrailer, t));
  char header[kHeader];
  EncodeHeader(header, h.count, h.min_time_ms, h.max_time_ms);
  crc = crc32c::Extend(crc, header, kHeader);
  if (got != kTrailer || DecodeFixed32(t) != crc || DecodeFixed32(t + 4) != kMagic)
    return DataLoss("dedupe run " + path + ": checksum mismatch");
  return run;
}

Result<std::optional<int64_t>> DedupeRun::Find(const Hash128& key) const {
  uint64_t first = 0, last = count_;  // the entries [first, last) that may hold `key`
  char buf[kFenceEvery * kEntry];
  if (fenced_) {
    auto it = std::upper_bound(fences_.begin(), fences_.end(), key, KeyLess);
    if (it == fences_.begin()) return std::optional<int64_t>();
    first = static_cast<uint64_t>(it - fences_.begin() - 1) * kFenceEvery;
    last = std::min<uint64_t>(first + kFenceEvery, count_);
  } else {
    // No fences (no memory left for them): narrow down with one read per step first.
    while (last - first > kFenceEvery) {
      const uint64_t mid = first + (last - first) / 2;
      SY_ASSIGN_OR_RETURN(size_t got, file_->ReadAt(kHeader + mid * kEntry, kEntry, buf));
      if (got != kEntry) return DataLoss("dedupe run " + path_ + ": short read");
      if (KeyLess(key, DecodeEntry(buf).key)) {
        last = mid;
      } else {
        first = mid;
      }
    }
  }
  const size_t n = static_cast<size_t>(last - first);
  SY_ASSIGN_OR_RETURN(size_t got, file_->ReadAt(kHeader + first * kEntry, n * kEntry, buf));
  if (got != n * kEntry) return DataLoss("dedupe run " + path_ + ": short read");
  size_t lo = 0, hi = n;
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    const DedupeEntry e = DecodeEntry(buf + mid * kEntry);
    if (e.key == key) return std::optional<int64_t>(e.time_ms);
    if (KeyLess(e.key, key)) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return std::optional<int64_t>();
}

Result<std::unique_ptr<RunWriter>> RunWriter::Create(Env* env, const std::string& path,
                                                     uint64_t expected_keys, int bits_per_key) {
  std::unique_ptr<RunWriter> w(new RunWriter());
  w->env_ = env;
  w->path_ = path;
  SY_ASSIGN_OR_RETURN(w->file_, env->OpenWritable(path + ".tmp", /*truncate=*/true));
  w->run_.reset(new DedupeRun());
  w->run_->path_ = path;
  w->run_->filter_ = RunFilter(expected_keys, bits_per_key);
  w->run_->fenced_ = w->run_->filter_.bits_per_key() > 0;
  if (w->run_->fenced_) w->run_->fences_.reserve((expected_keys + kFenceEvery - 1) / kFenceEvery);
  w->buffer_.reserve(kWriteBuffer);
  return w;
}

RunWriter::~RunWriter() {
  if (!finished_) {
    file_.reset();
    if (env_->FileExists(path_ + ".tmp")) env_->RemoveFile(path_ + ".tmp").IgnoreError();
  }
}

Status RunWriter::Add(const DedupeEntry& e) {
  DedupeRun& run = *run_;
  if (run.count_ == 0) {
    run.min_time_ms_ = run.max_time_ms_ = e.time_ms;
  } else {
    run.min_time_ms_ = std::min(run.min_time_ms_, e.time_ms);
    run.max_time_ms_ = std::max(run.max_time_ms_, e.time_ms);
  }
  if (run.fenced_ && run.count_ % kFenceEvery == 0) run.fences_.push_back(e.key);
  run.filter_.Insert(e.key);
  ++run.count_;
  char b[kEntry];
  EncodeFixed64(b, e.key.hi);
  EncodeFixed64(b + 8, e.key.lo);
  EncodeFixed64(b + 16, static_cast<uint64_t>(e.time_ms));
  buffer_.append(b, kEntry);
  if (buffer_.size() >= kWriteBuffer) return FlushBuffer();
  return Status::Ok();
}

Status RunWriter::FlushBuffer() {
  if (buffer_.empty()) return Status::Ok();
  crc_ = crc32c::Extend(crc_, buffer_.data(), buffer_.size());
  SY_RETURN_IF_ERROR(file_->WriteAt(kHeader + written_, buffer_));
  written_ += buffer_.size();
  buffer_.clear();
  return Status::Ok();
}

Result<std::shared_ptr<DedupeRun>> RunWriter::Seal() {
  SY_RETURN_IF_ERROR(FlushBuffer());
  DedupeRun& run = *run_;
  char header[kHeader];
  EncodeHeader(header, run.count_, run.min_time_ms_, run.max_time_ms_);
  char trailer[kTrailer];
  EncodeFixed32(trailer, crc32c::Extend(crc_, header, kHeader));
  EncodeFixed32(trailer + 4, kMagic);
  SY_RETURN_IF_ERROR(file_->WriteAt(kHeader + written_, std::string_view(trailer, kTrailer)));
  SY_RETURN_IF_ERROR(file_->WriteAt(0, std::string_view(header, kHeader)));
  // Read through its own descriptor, which follows the file through the rename.
  SY_ASSIGN_OR_RETURN(run.file_, env_->OpenReadable(path_ + ".tmp"));
  run.fences_.shrink_to_fit();
  return run_;
}

Status RunWriter::Persist() {
  SY_RETURN_IF_ERROR(file_->Sync());
  file_.reset();
  SY_RETURN_IF_ERROR(env_->Rename(path_ + ".tmp", path_));
  finished_ = true;  // the temp file is gone
  if (Status s = env_->SyncDir(DirName(path_)); !s.ok()) {
    env_->RemoveFile(path_).IgnoreError();
    return s;
  }
  return Status::Ok();
}

Result<std::shared_ptr<DedupeRun>> RunWriter::Finish() {
  SY_ASSIGN_OR_RETURN(auto run, Seal());
  SY_RETURN_IF_ERROR(Persist());
  return run;
}

Result<std::optional<DedupeEntry>> RunReader::Next() {
  if (pos_ == block_.size()) {
    if (next_index_ >= run_->count()) return std::optional<DedupeEntry>();
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(kReadBlock, run_->count() - next_index_));
    std::string scratch;
    SY_RETURN_IF_ERROR(ReadEntries(*run_->file_, run_->path(), next_index_, n, &scratch, &block_));
    next_index_ += n;
    pos_ = 0;
  }
  return std::optional<DedupeEntry>(block_[pos_++]);
}

Result<std::shared_ptr<DedupeRun>> MergeRuns(Env* env, const DedupeRun& a, const DedupeRun& b,
                                             const std::string& path,
                                             int64_t expired_at_or_before_ms, int bits_per_key) {
  SY_ASSIGN_OR_RETURN(auto writer,
                      RunWriter::Create(env, path, a.count() + b.count(), bits_per_key));
  RunReader ra(&a), rb(&b);
  SY_ASSIGN_OR_RETURN(auto ea, ra.Next());
  SY_ASSIGN_OR_RETURN(auto eb, rb.Next());
  while (ea || eb) {
    DedupeEntry e;
    if (ea && eb && ea->key == eb->key) {
      e = {ea->key, std::max(ea->time_ms, eb->time_ms)};
      SY_ASSIGN_OR_RETURN(ea, ra.Next());
      SY_ASSIGN_OR_RETURN(eb, rb.Next());
    } else if (ea && (!eb || KeyLess(ea->key, eb->key))) {
      e = *ea;
      SY_ASSIGN_OR_RETURN(ea, ra.Next());
    } else {
      e = *eb;
      SY_ASSIGN_OR_RETURN(eb, rb.Next());
    }
    if (e.time_ms > expired_at_or_before_ms) SY_RETURN_IF_ERROR(writer->Add(e));
  }
  return writer->Finish();
}

}  // namespace sy::ingest
