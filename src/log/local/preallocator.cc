#include "log/local/preallocator.h"

#include <algorithm>

#include "base/logging.h"
#include "base/thread_name.h"

namespace sy::log {

Preallocator::Preallocator(Env* env, uint64_t ahead, std::shared_ptr<spdlog::logger> logger)
    : env_(env),
      ahead_(ahead),
      chunk_(std::min<uint64_t>(ahead, 256 << 10)),
      logger_(std::move(logger)),
      zeros_(chunk_, '\0') {
  thread_ = std::thread([this] {
    SetThreadName("sy-log-prealloc");
    Run();
  });
}

Preallocator::~Preallocator() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Status Preallocator::Reset(const std::string& path, uint64_t written, uint64_t limit) {
  Detach();
  SY_ASSIGN_OR_RETURN(auto file, env_->OpenWritable(path, /*truncate=*/false));
  {
    std::lock_guard lock(mu_);
    file_ = std::move(file);
    ++generation_;
    limit_ = limit;
    writer_end_ = written;
    written_ = written;
    paused_ = false;
    prepared_.store(written, std::memory_order_release);
  }
  cv_.notify_all();
  return Status::Ok();
}

void Preallocator::Detach() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !busy_; });
  ++generation_;
  file_.reset();
  prepared_.store(0, std::memory_order_release);
}

void Preallocator::BeforeWrite(uint64_t pos, uint64_t len) {
  if (pos + len <= prepared_.load(std::memory_order_acquire)) return;  // zeros already synced
  std::unique_lock lock(mu_);
  if (filling_ && pos < fill_to_ && fill_from_ < pos + len) {
    waits_.fetch_add(1);
    cv_.wait(lock, [&] { return !filling_; });
  }
  // From here on the thread fills only past this write.
  writer_end_ = std::max(writer_end_, pos + len);
}

void Preallocator::Written(uint64_t written, uint64_t frame_bytes) {
  uint64_t avg = avg_frame_.load(std::memory_order_relaxed);
  avg = avg - avg / 8 + frame_bytes / 8;
  avg_frame_.store(avg, std::memory_order_relaxed);
  // Cheap checks first: most rounds find enough prepared ahead, or big frames, and take no lock.
  if (avg >= kSmallFrameBytes) return;
  if (prepared_.load(std::memory_order_acquire) >= written + ahead_ / 2) return;
  bool wake;
  {
    std::lock_guard lock(mu_);
    written_ = written;
    wake = !busy_ && ShouldFill();
  }
  if (wake) cv_.notify_all();
}

bool Preallocator::ShouldFill() const {
  if (stop_ || paused_ || file_ == nullptr) return false;
  if (avg_frame_.load(std::memory_order_relaxed) >= kSmallFrameBytes) return false;
  uint64_t from = std::max(prepared_.load(), writer_end_);
  return from < limit_ && from < written_ + ahead_;
}

void Preallocator::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || ShouldFill(); });
    if (stop_) return;
    const uint64_t from = std::max(prepared_.load(), writer_end_);
    const uint64_t to = std::min(from + chunk_, limit_);
    const uint64_t generation = generation_;
    WritableFile* file = file_.get();  // Detach waits for !busy_ before freeing it
    busy_ = true;
    filling_ = true;
    fill_from_ = from;
    fill_to_ = to;
    lock.unlock();

    Status st = file->WriteAt(from, std::string_view(zeros_).substr(0, to - from));
    // The zeros are in the page cache: from here on the writer may write over them (the sync
    // below then makes their blocks and the size durable whatever they hold), so it only ever
    // waits for this memory copy, never for the disk.
    lock.lock();
    filling_ = false;
    cv_.notify_all();
    lock.unlock();
    if (st.ok()) st = file->Sync();

    lock.lock();
    busy_ = false;
    if (generation == generation_) {
      if (st.ok()) {
        // The writer writes only past writer_end_, which this fill started at or after: every
        // byte up to `to` is now a frame or a synced zero.
        prepared_.store(to, std::memory_order_release);
      } else {
        paused_ = true;
        logger_->warn("preallocation stopped until the next segment: {}", st.ToString());
      }
    }
    cv_.notify_all();
  }
}

}  // namespace sy::log
