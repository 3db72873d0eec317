// MemoryEventLog: an in-memory EventLog test double. Appends complete immediately (durable by
// fiat), or are held until ReleaseHeld() when hold_appends is set, or fail with `fail_with`.
// Thread-safe. Cursors are ephemeral readers over the stored vector.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "log/event_log.h"

namespace sy::testing {

class MemoryEventLog final : public log::EventLog {
 public:
  void Append(std::vector<log::LogRecord> records, log::AppendCallback done) override {
    std::unique_lock lock(mu_);
    if (hold_appends) {
      held_.push_back({std::move(records), std::move(done)});
      return;
    }
    if (!fail_with.ok()) {
      Status s = fail_with;
      lock.unlock();
      done({s, Offset()});
      return;
    }
    Offset first = Store(std::move(records));
    lock.unlock();
    NotifyListeners();
    done({Status::Ok(), first});
  }

  // Completes held appends (stored, or failed with `status`).
  void ReleaseHeld(Status status = Status::Ok()) {
    std::vector<Held> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
    }
    for (auto& h : held) {
      Offset first;
      if (status.ok()) {
        std::lock_guard lock(mu_);
        first = Store(std::move(h.records));
      }
      if (status.ok()) NotifyListeners();
      h.done({status, first});
    }
  }

  // Forgets stored entries (offsets keep growing). For long fuzz runs.
  void Clear() {
    std::lock_guard lock(mu_);
    base_ += entries_.size();
    entries_.clear();
  }

  // LogRecord::user of every record stored, in order.
  std::vector<std::string> Users() const {
    std::lock_guard lock(mu_);
    return users_;
  }

  std::vector<log::LogEntry> Entries() const {
    std::lock_guard lock(mu_);
    return entries_;
  }

  Result<std::unique_ptr<log::LogCursor>> OpenCursor(std::string_view) override {
    return OpenReader();
  }
  Result<std::unique_ptr<log::LogCursor>> OpenReader() override {
    return std::unique_ptr<log::LogCursor>(new Reader(this));
  }
  Status DeleteCursor(std::string_view) override { return Status::Ok(); }
  uint64_t AddDataListener(std::function<void()> listener) override {
    std::lock_guard lock(listeners_mu_);
    listeners_.emplace(next_listener_, std::move(listener));
    return next_listener_++;
  }
  void RemoveDataListener(uint64_t id) override {
    std::lock_guard lock(listeners_mu_);
    listeners_.erase(id);
  }
  Offset StartOffset() const override { return Offset(0); }
  Offset EndOffset() const override {
    std::lock_guard lock(mu_);
    return Offset(base_ + entries_.size());
  }
  Status Close() override { return Status::Ok(); }
  Status Health() const override { return fail_with; }

  bool hold_appends = false;
  Status fail_with;

 private:
  struct Held {
    std::vector<log::LogRecord> records;
    log::AppendCallback done;
  };
  class Reader final : public log::LogCursor {
   public:
    explicit Reader(MemoryEventLog* log) : log_(log) {}
    const std::string& name() const override { return name_; }
    Offset position() const override { return pos_; }
    Offset committed() const override { return Offset(); }
    Result<std::vector<log::LogEntry>> Read(size_t max_records, size_t) override {
      std::lock_guard lock(log_->mu_);
      std::vector<log::LogEntry> out;
      while (pos_.value() < log_->entries_.size() && out.size() < max_records) {
        out.push_back(log_->entries_[pos_.value()]);
        pos_ = pos_.Next();
      }
      return out;
    }
    bool WaitForData(std::chrono::milliseconds) override { return false; }
    Status Commit(Offset) override { return FailedPrecondition("ephemeral reader"); }
    Status Seek(Offset o) override {
      pos_ = o;
      return Status::Ok();
    }
    Status SeekToTime(TimestampMs) override { return Status::Ok(); }

   private:
    MemoryEventLog* log_;
    std::string name_;
    Offset pos_;
  };

  Offset Store(std::vector<log::LogRecord> records) {
    Offset first(base_ + entries_.size());
    for (auto& r : records) {
      users_.push_back(std::move(r.user));
      entries_.push_back({Offset(base_ + entries_.size()), r.received_at, std::move(r.source),
                          std::move(r.message_id), std::move(r.payload)});
    }
    return first;
  }

  void NotifyListeners() {
    std::lock_guard lock(listeners_mu_);
    for (auto& [id, fn] : listeners_)
      fn();
  }

  std::mutex listeners_mu_;
  std::map<uint64_t, std::function<void()>> listeners_;
  uint64_t next_listener_ = 1;
  mutable std::mutex mu_;
  std::vector<log::LogEntry> entries_;
  std::vector<std::string> users_;  // LogRecord::user of each entry (not part of a LogEntry)
  std::vector<Held> held_;
  uint64_t base_ = 0;
};

}  // namespace sy::testing
