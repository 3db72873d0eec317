// The server side of `GET /api/v1/overview` (docs/admin-api.md "Overview"): what the admin module
// cannot see by itself — which sources and destinations are configured, each running stream's
// health and backlog, and the disk use under data_dir. Implemented by the application
// (app/overview_admin.h). The per-minute figures (events in: observe::IngestStats; events out:
// observe::DeliveryStatsBook) the admin API reads itself.
//
// Threads: Facts is called on the admin worker, never an I/O thread. It must not wait behind a
// warehouse load or a reload for longer than it takes to copy the stream list, and its disk
// figures come from a cache (observe::DiskUsage: one bounded walk per directory per TTL).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "observe/disk_usage.h"

namespace sy::admin {

struct OverviewFacts {
  struct Source {
    std::string name;
    bool enabled = true;
  };
  struct Destination {
    std::string name;
    std::string type;
    bool enabled = true;
    bool running = false;  // a stream runs (enabled, started, not stopped for a warehouse sync)
    // From the stream's health (delivery::DestinationStream::Health), when running.
    bool failing = false;
    bool credentials_refused = false;
    std::string reason;
    // How far the stream is behind the log's end, when running.
    bool backlog_known = false;
    uint64_t backlog_events = 0;
    double backlog_seconds = 0;
  };
  std::vector<Source> sources;
  std::vector<Destination> destinations;
  observe::DiskUsage::Figure log;  // data_dir/log
  observe::DiskUsage::Figure dlq;  // data_dir/dlq
  std::optional<uint64_t> data_dir_free_bytes;
  // The archive: "" when not configured, else "local" or "s3"; `archive_local` is measured
  // only for a local directory (an object store's size is not ours to walk).
  std::string archive_store;
  std::optional<observe::DiskUsage::Figure> archive_local;
};

class OverviewApi {
 public:
  virtual ~OverviewApi() = default;
  virtual OverviewFacts Facts() = 0;
};

}  // namespace sy::admin
