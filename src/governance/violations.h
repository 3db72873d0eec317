// Blocked events: listing them and releasing them to destinations (`switchyard violations
// list|release`, docs/governance.md).
//
// A blocked event stays in the log with its header `sy-blocked` (nothing is lost), and every
// destination skips it. Releasing appends a copy of it, without the mark and with the header
// `sy-released-from: <original offset>`, which destinations then deliver like any new event. The
// log itself is the release ledger: an original is released exactly when a copy naming its
// offset is in the log, so a second release (or a release rerun after a crash at any point) finds
// the copy and appends nothing. The scan is linear in the log's retained size; it runs in the
// CLI or on the server's admin job thread, never on an I/O thread.
//
// Re-validation: by default a release judges each event again against the plans in force now
// (the plan was presumably fixed): an event the plan would still block stays blocked and is
// reported; one it would flag is released with `context.violations`; a valid one is released
// as stored. `force` releases without judging.
//
// Callers must serialize releases on one log (the server's one admin job at a time; offline,
// data_dir/LOCK): two releases scanning at once could both append a copy.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "governance/tracking_plans.h"
#include "log/event_log.h"

namespace sy::governance {

struct BlockedFilter {
  std::string plan = {};   // "" = any
  std::string event = {};  // "" = any; a track event's name, or the type of other events
  std::vector<uint64_t> offsets = {};  // empty = any
};

struct BlockedEvent {
  log::LogEntry entry;
  std::string plan;
  std::string type;
  std::string event;                    // track: the name; else ""
  std::string violations;               // the JSON array from the header
  std::optional<uint64_t> released_as;  // the copy's offset, once released
};

// Every blocked event of `log` that matches `filter`, oldest first, with its release state.
Result<std::vector<BlockedEvent>> ScanBlocked(log::EventLog* log, const BlockedFilter& filter);

// One line of `switchyard violations list`: {"offset", "source", "messageId", "receivedAt",
// "plan", "type", "event", "violations", "released", "releasedAs"}.
std::string BlockedEventJson(const BlockedEvent& b);

struct ReleaseReport {
  size_t released = 0;          // copies appended now
  size_t already_released = 0;  // matched, released before (nothing appended)
  size_t still_blocked = 0;     // matched, today's plan still blocks them (nothing appended)
  std::vector<uint64_t> still_blocked_offsets;  // the first 100 of them
};
std::string ReleaseReportJson(const ReleaseReport& r);

// Releases the blocked events matching `filter` (see the top of this file). `plans` are today's
// (null or `force`: no judging). Returns once every copy is durable.
Result<ReleaseReport> ReleaseBlocked(log::EventLog* log, const TrackingPlans* plans,
                                     const BlockedFilter& filter, bool force);

}  // namespace sy::governance
