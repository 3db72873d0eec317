// Reading the archive back: listing files by source and time (for `switchyard archive ls` and
// replay) and splitting a file into its events. Thread-compatible; the store is shared.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "archive/archive_key.h"
#include "archive/object_store.h"
#include "base/status.h"
#include "base/types.h"

namespace sy::archive {

struct ArchiveFile {
  std::string object_key;
  uint64_t size = 0;  // compressed bytes
  ArchiveKey key;
};

struct ArchiveSelection {
  std::string source;               // "" = every source
  std::optional<TimestampMs> from;  // receivedAt >= from
  std::optional<TimestampMs> to;    // receivedAt < to
};

// The files that may hold events of the selection, per source in offset order, sources in name
// order. A file's events were received between its key's hour and the next file's (of the same
// source) key hour + 1 h, so files are selected by those bounds; events are then filtered
// exactly by InSelection. Objects under `prefix` that are not archive keys are ignored.
Result<std::vector<ArchiveFile>> ListArchive(ObjectStore* store, const std::string& prefix,
                                             const ArchiveSelection& selection);

// The receivedAt of a stored event's JSON text, if present and valid.
std::optional<TimestampMs> ReceivedAtOf(std::string_view event_json);
bool InSelection(const ArchiveSelection& s, std::optional<TimestampMs> received_at);

// Downloads and decompresses one file; `lines` receives views into `*text` (one event each).
Status ReadArchiveFile(ObjectStore* store, const std::string& object_key, std::string* text,
                       std::vector<std::string_view>* lines);

// Downloads one file and calls `on_line` with each of its events (a line without its newline),
// in order; a view is valid only during the call. Decompresses a member at a time into one
// reused buffer, so the decompressed file is never whole in memory (replay's reader).
Status ForEachArchiveLine(ObjectStore* store, const std::string& object_key,
                          const std::function<void(std::string_view)>& on_line);

}  // namespace sy::archive
