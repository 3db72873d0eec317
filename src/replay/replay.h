// Replay: feeds archived events to one destination through the delivery framework, unchanged —
// the same encoder, batching, retries and dead letters as live delivery.
//
// How: the selected archive files (archive_reader.h) are imported, merged across sources in
// receivedAt order, into a private local EventLog under <data_dir>/replay/<destination>/log, each
// event's `integrations` rewritten to {"All": false, "<destination name>": true} (messageId,
// timestamps and every other member kept byte for byte); a DestinationStream reads that log
// through its own cursor and delivers. Both the import position (the state file next to the log)
// and the stream's cursor are durable, so an interrupted replay started again with the same
// selection continues where it stopped. A replay that reaches the end removes its directory: the
// next run of the same command replays the range again, whole.
//
// Crash safety of the import: a chunk of events is appended (written, not fsync'ed: the private
// log is a cache of the archive), then the state records the log's end offset and the merge
// position (fsync). If the process dies in between, the log holds events the state does not know
// of; on resume, that many merged events are skipped, since the merge is deterministic for a
// given plan (the file list is fixed in the state at the first run): offset n of the private log
// is always the same event. After a power loss the log may end before the recorded position (the
// replay then starts over) or after it (the import continues there; a stream cursor past the
// log's recovered end names the same events, which are not delivered again). docs/archive.md,
// "The replay path".
//
// Threads: RunReplay runs the merge and appends on the calling thread, each source's files are
// downloaded and prepared one file ahead on a loader thread, the stream has its own thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "archive/archive_reader.h"
#include "archive/object_store.h"
#include "base/metrics.h"
#include "config/config.h"
#include "delivery/dead_letter_store.h"
#include "delivery/destination.h"
#include "delivery/transform.h"
#include "http/client.h"

namespace sy::replay {

struct ReplayProgress {
  uint64_t files_total = 0, files_done = 0;
  uint64_t bytes_total = 0, bytes_done = 0;  // compressed archive bytes
  uint64_t events_imported = 0;              // into the private log
  uint64_t events_done = 0;                  // with a final outcome (committed by the stream)
  uint64_t delivered = 0, dead_lettered = 0, skipped = 0;
  bool import_done = false;
  bool resumed = false;
  double elapsed_s = 0;
};

struct ReplayOptions {
  std::string data_dir;
  config::DestinationConfig destination;
  std::string display_name;
  std::unique_ptr<delivery::Destination> instance;
  archive::ObjectStore* store = nullptr;
  std::string prefix;  // archive key prefix
  archive::ArchiveSelection selection;
  int64_t rate = 0;      // events/s; 0 = as fast as the destination takes them
  bool restart = false;  // discard an interrupted replay of another selection
  http::HttpClient* http = nullptr;
  delivery::DeadLetterStore* dead_letters = nullptr;
  MetricsRegistry* metrics = nullptr;  // required
  // The destination's functions (docs/functions.md): a replay runs today's functions on the
  // archived (raw) events. Null: none.
  std::unique_ptr<delivery::EventTransform> transform;
  std::function<void(const ReplayProgress&)> on_progress;  // ~5 times a second, calling thread
  const std::atomic<bool>* interrupt = nullptr;            // set → stop, resumable
};

// The directory of a destination's replay.
std::string ReplayDir(const std::string& data_dir, const std::string& destination);

// Runs (or resumes) a replay to completion. kAborted-like Unavailable("interrupted") when
// `interrupt` was set; the replay can then be resumed.
Result<ReplayProgress> RunReplay(ReplayOptions options);

// Rewrites the top-level `integrations` member of an event's JSON text (or adds it).
std::string WithIntegrations(std::string_view event_json, std::string_view destination);

// Sets the switchyard_replay_* gauges of `destination` (docs/metrics.md) from `progress`.
// RunReplay calls it as it reports progress, on its registry.
void PublishReplayProgress(MetricsRegistry* metrics, const std::string& destination,
                           const ReplayProgress& progress, bool running);
// The same gauges, in a server, for the replays that other processes (`switchyard replay`) run
// on its data_dir: read from <data_dir>/replay/<destination>.progress, which they rewrite five
// times a second. Declares the gauges even when no replay ran. Reads files: the server calls it
// once a second on its own thread (never on an I/O thread, never while /metrics renders).
void PublishReplayProgressFiles(MetricsRegistry* metrics, const std::string& data_dir);

}  // namespace sy::replay
