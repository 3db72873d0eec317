// ReplayAdmin: the admin API's replay routes (admin/replay_api.h): runs, inside the server, the
// replay `switchyard replay` runs (replay::RunReplay: the archive's events for one destination
// through its own private log and stream, the same encoder, retries and dead letters), one
// thread (`sy-replay-api`) per running replay, and keeps each one's progress for GET.
//
// Each replay sends through its own instance of the destination, built from the current
// configuration (file ⊕ overlay), and its own metrics registry (the server's /metrics shows it
// through the progress file RunReplay writes, as for the CLI's). At most one replay per
// destination and kMaxRunning at once; the last kKeepFinished finished ones stay listed.
// Cancel interrupts: starting the same selection again resumes where it stopped.
//
// Thread-safe. The destructor interrupts every running replay and waits for it.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "admin/replay_api.h"
#include "config/config.h"
#include "delivery/dead_letter_store.h"
#include "delivery/transform.h"
#include "http/client.h"
#include "replay/replay.h"

namespace sy::app {

class ReplayAdmin final : public admin::ReplayApi {
 public:
  struct Options {
    std::string data_dir;
    std::string config_file;
    config::ArchiveConfig archive;
    http::HttpClient* http = nullptr;
    delivery::DeadLetterStore* dead_letters = nullptr;
    // The destination's / source's current configuration; false when there is none.
    std::function<bool(std::string_view name, config::DestinationConfig* out)> find_destination;
    std::function<bool(std::string_view name)> has_source;
    // The destination's user functions (docs/functions.md: a replay runs today's functions);
    // null result: none. Unset: replays run no functions.
    std::function<std::unique_ptr<delivery::EventTransform>(const config::DestinationConfig&)>
        make_transform;
  };
  static constexpr size_t kMaxRunning = 2;
  static constexpr size_t kKeepFinished = 50;

  explicit ReplayAdmin(Options options) : options_(std::move(options)) {}
  ~ReplayAdmin() override;

  admin::ApiResult StartReplay(const admin::Actor& actor,
                               const admin::ReplayRequest& request) override;
  admin::ApiResult ListReplays() override;
  admin::ApiResult GetReplay(std::string_view id) override;
  admin::ApiResult CancelReplay(const admin::Actor& actor, std::string_view id) override;

 private:
  enum class State { kRunning, kDone, kFailed, kCancelled };
  struct Job {
    std::string id;
    admin::ReplayRequest request;
    int64_t started_ms = 0, finished_ms = 0;
    State state = State::kRunning;    // guarded by ReplayAdmin::mu_
    replay::ReplayProgress progress;  // guarded by ReplayAdmin::mu_
    std::string error;                // guarded by ReplayAdmin::mu_
    std::atomic<bool> interrupt{false};
    std::thread thread;
  };
  std::string JobJson(const Job& job) const;  // under mu_
  void Run(Job* job, replay::ReplayOptions options);

  Options options_;
  mutable std::mutex mu_;
  std::deque<std::unique_ptr<Job>> jobs_;  // newest first; guarded by mu_
  uint64_t next_id_ = 1;                   // guarded by mu_
};

}  // namespace sy::app
