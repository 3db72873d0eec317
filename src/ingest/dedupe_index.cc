#include "ingest/dedupe_index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/crc32c.h"
#include "base/logging.h"

namespace sy::ingest {
namespace {

// Journal chunk: header (24 bytes) then `count` entries of 24 bytes, all little-endian.
//   u32 magic "SYDJ" | u32 count | u64 covered_end | u32 crc32c(entries, then header bytes 0..15)
//   | u32 reserved(0) | entries: u64 key.lo, u64 key.hi, i64 time_ms
constexpr uint32_t kMagic = 0x4A445953;  // "SYDJ"
constexpr size_t kHeader = 24;
constexpr size_t kEntry = 24;

std::shared_ptr<spdlog::logger> Logger() {
  static auto l = ModuleLogger("ingest");
  return l;
}

void Put32(char* p, uint32_t v) {
  std::memcpy(p, &v, 4);
}
void Put64(char* p, uint64_t v) {
  std::memcpy(p, &v, 8);
}
uint32_t Get32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t Get64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

Status WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError(std::string("dedupe journal write: ") + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return IoError("open dir " + dir + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return IoError("fsync dir " + dir + ": " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace

DedupeIndex::DedupeIndex(const Options& options)
    : options_(options), journal_path_(options.dir + "/dedupe.journal") {}

DedupeIndex::~DedupeIndex() {
  if (journal_fd_ >= 0) ::close(journal_fd_);
}

Hash128 DedupeIndex::Key(std::string_view source, std::string_view message_id) {
  return HashPair(source, message_id);
}

Result<std::unique_ptr<DedupeIndex>> DedupeIndex::Open(const Options& options, log::EventLog* log) {
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return IoError("create " + options.dir + ": " + ec.message());
  std::unique_ptr<DedupeIndex> idx(new DedupeIndex(options));
  auto start = std::chrono::steady_clock::now();
  Offset covered;
  SY_RETURN_IF_ERROR(idx->LoadJournal(&covered));
  size_t from_journal = idx->size();
  SY_RETURN_IF_ERROR(idx->ScanLog(log, covered));
  idx->covered_end_ = log->EndOffset();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  Logger()->info(
      "dedupe index loaded keys={} from_journal={} scanned_from_offset={} duration_ms={}",
      idx->size(), from_journal, covered.value(), ms);
  return idx;
}

Status DedupeIndex::LoadJournal(Offset* covered_end) {
  *covered_end = Offset(0);
  int fd = ::open(journal_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("open " + journal_path_ + ": " + std::strerror(errno));
  journal_fd_ = fd;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return IoError("stat " + journal_path_);
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::pread(fd, data.data() + got, data.size() - got, static_cast<off_t>(got));
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return IoError("read " + journal_path_);
    }
    got += static_cast<size_t>(n);
  }
  int64_t now = options_.clock->Now().value();
  size_t pos = 0;
  while (pos + kHeader <= data.size()) {
    const char* h = data.data() + pos;
    uint32_t count = Get32(h + 4);
    if (Get32(h) != kMagic || pos + kHeader + size_t{count} * kEntry > data.size()) break;
    uint32_t crc = crc32c::Value(h + kHeader, size_t{count} * kEntry);
    crc = crc32c::Extend(crc, h, 16);
    if (crc != Get32(h + 16)) break;
    *covered_end = std::max(*covered_end, Offset(Get64(h + 8)));
    for (uint32_t i = 0; i < count; ++i) {
      const char* e = h + kHeader + size_t{i} * kEntry;
      Journaled j{{Get64(e), Get64(e + 8)}, static_cast<int64_t>(Get64(e + 16))};
      if (now - j.time_ms >= options_.window_ms) continue;
      *ShardOf(j.key).keys.TryEmplace(j.key, Entry{}).first = Entry{j.time_ms, 0};
      order_.push_back(j);
    }
    pos += kHeader + size_t{count} * kEntry;
  }
  if (pos != data.size()) {
    // A torn last chunk (crash during Flush): its keys are still in the log, which we rescan.
    Logger()->warn("dedupe journal has a torn tail; truncating bytes={} at={}", data.size() - pos,
                   pos);
    if (::ftruncate(fd, static_cast<off_t>(pos)) != 0) return IoError("truncate " + journal_path_);
  }
  journal_bytes_ = static_cast<int64_t>(pos);
  if (::lseek(fd, static_cast<off_t>(pos), SEEK_SET) < 0) return IoError("seek " + journal_path_);
  return Status::Ok();
}

Status DedupeIndex::ScanLog(log::EventLog* log, Offset from) {
  SY_ASSIGN_OR_RETURN(auto reader, log->OpenReader());
  if (from > reader->position()) SY_RETURN_IF_ERROR(reader->Seek(from));
  int64_t now = options_.clock->Now().value();
  while (true) {
    SY_ASSIGN_OR_RETURN(auto entries, reader->Read(4096, 16 << 20));
    if (entries.empty()) break;
    for (const auto& e : entries) {
      if (now - e.received_at.value() >= options_.window_ms) continue;
      Hash128 k = Key(e.source, e.message_id);
      *ShardOf(k).keys.TryEmplace(k, Entry{}).first = Entry{e.received_at.value(), 0};
      Journaled j{k, e.received_at.value()};
      order_.push_back(j);
      unflushed_.push_back(j);
    }
  }
  return Status::Ok();
}

DedupeIndex::ClaimResult DedupeIndex::Claim(const Hash128& key, uint64_t claimant) {
  int64_t now = options_.clock->Now().value();
  Shard& shard = ShardOf(key);
  std::lock_guard lock(shard.mu);
  auto [entry, inserted] = shard.keys.TryEmplace(key, Entry{now, claimant});
  if (inserted) return ClaimResult::kNew;
  Entry& e = *entry;
  if (e.claimant == 0) {
    if (now - e.time_ms < options_.window_ms) return ClaimResult::kDuplicate;
    e = Entry{now, claimant};  // expired: a new event as far as dedupe is concerned
    return ClaimResult::kNew;
  }
  return e.claimant == claimant ? ClaimResult::kDuplicate : ClaimResult::kInFlight;
}

void DedupeIndex::Prefetch(std::span<const Hash128> keys) const {
  for (const auto& k : keys)
    ShardOf(k).keys.Prefetch(k);
}

void DedupeIndex::Commit(const std::vector<Hash128>& keys, TimestampMs received_at, Offset end) {
  Prefetch(keys);
  for (const auto& k : keys) {
    Shard& shard = ShardOf(k);
    std::lock_guard lock(shard.mu);
    if (Entry* e = shard.keys.Find(k)) *e = Entry{received_at.value(), 0};
  }
  std::lock_guard lock(mu_);
  for (const auto& k : keys) {
    order_.push_back({k, received_at.value()});
    unflushed_.push_back({k, received_at.value()});
  }
  if (end > covered_end_) covered_end_ = end;
}

void DedupeIndex::Release(const std::vector<Hash128>& keys, uint64_t claimant) {
  for (const auto& k : keys) {
    Shard& shard = ShardOf(k);
    std::lock_guard lock(shard.mu);
    Entry* e = shard.keys.Find(k);
    if (e != nullptr && e->claimant == claimant) shard.keys.Erase(k);
  }
}

void DedupeIndex::ExpireLocked(int64_t now_ms) {
  while (!order_.empty() && now_ms - order_.front().time_ms >= options_.window_ms) {
    Shard& shard = ShardOf(order_.front().key);
    std::lock_guard lock(shard.mu);
    Entry* e = shard.keys.Find(order_.front().key);
    if (e != nullptr && e->claimant == 0 && e->time_ms == order_.front().time_ms) {
      shard.keys.Erase(order_.front().key);
    }
    order_.pop_front();
  }
}

Status DedupeIndex::AppendChunk(const std::vector<Journaled>& entries, Offset covered_end) {
  std::string buf(kHeader + entries.size() * kEntry, '\0');
  for (size_t i = 0; i < entries.size(); ++i) {
    char* e = buf.data() + kHeader + i * kEntry;
    Put64(e, entries[i].key.lo);
    Put64(e + 8, entries[i].key.hi);
    Put64(e + 16, static_cast<uint64_t>(entries[i].time_ms));
  }
  Put32(buf.data(), kMagic);
  Put32(buf.data() + 4, static_cast<uint32_t>(entries.size()));
  Put64(buf.data() + 8, covered_end.value());
  uint32_t crc = crc32c::Value(buf.data() + kHeader, entries.size() * kEntry);
  crc = crc32c::Extend(crc, buf.data(), 16);
  Put32(buf.data() + 16, crc);
  SY_RETURN_IF_ERROR(WriteAll(journal_fd_, buf));
  if (::fdatasync(journal_fd_) != 0)
    return IoError(std::string("fdatasync dedupe journal: ") + std::strerror(errno));
  journal_bytes_ += static_cast<int64_t>(buf.size());
  return Status::Ok();
}

Status DedupeIndex::RewriteJournal() {
  std::vector<Journaled> live;
  Offset covered;
  {
    std::lock_guard lock(mu_);
    live.assign(order_.begin(), order_.end());
    covered = covered_end_;
    unflushed_.clear();
  }
  std::string tmp = journal_path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("open " + tmp + ": " + std::strerror(errno));
  int old = journal_fd_;
  journal_fd_ = fd;
  journal_bytes_ = 0;
  Status s = AppendChunk(live, covered);
  if (s.ok() && ::rename(tmp.c_str(), journal_path_.c_str()) != 0) s = IoError("rename " + tmp);
  if (s.ok()) s = SyncDir(options_.dir);
  if (!s.ok()) {
    ::close(fd);
    journal_fd_ = old;
    return s;
  }
  ::close(old);
  return Status::Ok();
}

Status DedupeIndex::Flush() {
  std::lock_guard flush_lock(flush_mu_);
  std::vector<Journaled> batch;
  Offset covered;
  size_t live = 0;
  {
    std::lock_guard lock(mu_);
    ExpireLocked(options_.clock->Now().value());
    batch.swap(unflushed_);
    covered = covered_end_;
    live = order_.size();
  }
  // Compact when most of the journal is expired keys.
  int64_t live_bytes = static_cast<int64_t>(live * kEntry);
  if (journal_bytes_ > (1 << 20) && journal_bytes_ > 2 * live_bytes) return RewriteJournal();
  if (batch.empty()) return Status::Ok();
  Status s = AppendChunk(batch, covered);
  if (!s.ok()) {
    std::lock_guard lock(mu_);
    unflushed_.insert(unflushed_.begin(), batch.begin(), batch.end());
  }
  return s;
}

size_t DedupeIndex::size() const {
  size_t n = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard.mu);
    n += shard.keys.size();
  }
  return n;
}

}  // namespace sy::ingest
