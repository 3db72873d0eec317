// The replay side of the admin API (POST/GET /api/v1/replays, GET /api/v1/replays/{id}, POST
// /api/v1/replays/{id}/cancel; docs/admin-api.md "Replays"). Implemented by the application
// (app/replay_admin.h), which runs the replay `switchyard replay` runs (src/replay/), so the
// admin module includes no replay code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "admin/config_api.h"

namespace sy::admin {

// A checked POST /api/v1/replays body.
struct ReplayRequest {
  std::string destination;
  std::string source;              // "" = every source
  std::optional<int64_t> from_ms;  // receivedAt ≥ from (ms since the epoch)
  std::optional<int64_t> to_ms;    // receivedAt < to
  int64_t rate = 0;                // events per second; 0 = as fast as the destination takes them
};

class ReplayApi {
 public:
  virtual ~ReplayApi() = default;
  // Starts a replay on its own threads and answers 202 with the Replay JSON at once; 404 for an
  // unknown destination or source, 409 `replay_running` (that destination has one running),
  // `no_archive` (no archive configured) or `too_many_replays`.
  virtual ApiResult StartReplay(const Actor& actor, const ReplayRequest& request) = 0;
  virtual ApiResult ListReplays() = 0;                   // {"replays":[Replay…]}, newest first
  virtual ApiResult GetReplay(std::string_view id) = 0;  // Replay, or 404
  // Interrupts a running replay (it can be resumed by starting the same selection); 409 when it
  // is not running.
  virtual ApiResult CancelReplay(const Actor& actor, std::string_view id) = 0;
};

}  // namespace sy::admin
