// Privacy deletion in the archive (issue 17, docs/privacy-copies.md): every archive file that
// holds an event of the named users is replaced by the same file without those events; a file
// that held nothing else is deleted. Called by the privacy deletion run, never by the archiver.
//
// How a file is rewritten: it is read (download, one gzip member at a time), each line matched
// by its top-level userId/anonymousId (event/user_ids.h, privacy/user_set.h); the other lines
// are kept byte for byte and in order, compressed again as ~1 MiB members (as the archiver
// writes them), and the result is put under the SAME key, which the store replaces atomically
// (ObjectStore::Put: local rename, S3 PUT). The key stays because it names the file's offset
// range, and the offsets of the lines kept are not in the file (a file holds one source; the
// offsets between belong to other sources), so no truthful narrower key exists; a key's
// <first>-<last> is therefore a range that holds the file's events, not necessarily the offsets
// of its first and last lines (docs/formats/archive.md). Replacing in place has no step between
// "new written" and "old removed": a crash leaves the old file or the new one, never both
// (which replay would read twice) and never neither. A file whose every event is the users' is
// deleted (ObjectStore::Delete); a crash before that leaves the old file, which the next run
// deletes. The archiver's state file holds offsets only, which a deletion does not change.
//
// Cost: every file under the prefix is downloaded and decompressed once (linear in the archive
// size); only files holding the users' events are written. No file is skipped: a user's events
// may be in any hour of any source, and the archive keeps no index of ids.
//
// Idempotent (a second run reads every file and writes none) and resumable (a run killed at any
// point and run again converges). Other users' events are never removed. A file that cannot be
// read (corrupt gzip, over the size bound) is left as it is and reported: the run goes on with
// the other files and returns kDataLoss naming it, so the request does not pass as done.
//
// Must not run while a replay of the same archive is importing (the replay would read a file
// that changes under it) or while the archiver's first upload after a crash may rebuild a file
// from log records that still hold the users' events (see docs/privacy-copies.md).
// Threads: one call at a time per archive; the store may be shared.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "archive/object_store.h"
#include "base/status.h"
#include "privacy/user_set.h"

namespace sy::archive {

struct ArchiveEraseProgress {
  uint64_t files_scanned = 0;     // archive files read
  uint64_t bytes_scanned = 0;     // their compressed bytes
  uint64_t files_rewritten = 0;   // replaced without the users' events
  uint64_t files_deleted = 0;     // held only the users' events
  uint64_t events_removed = 0;    // the users' events removed
  uint64_t files_unreadable = 0;  // left as they are; the call then returns kDataLoss
  // One line for a request's record ("events_removed=3 files_rewritten=2 …").
  std::string Summary() const;
};

struct ArchiveEraseOptions {
  std::string prefix;  // archive.prefix
  int gzip_level = 1;  // of the rewritten members (the archiver's default)
  // Called after each file was handled (rewritten, deleted or left), with its key: progress
  // reports, and tests that stop a run at a given file.
  std::function<void(const std::string& key)> after_file = nullptr;
};

// Removes the events of `users` from every archive file under options.prefix. `progress` (may
// be null) accumulates.
Status EraseUsersFromArchive(ObjectStore* store, const privacy::UserSet& users,
                             const ArchiveEraseOptions& options, ArchiveEraseProgress* progress);

}  // namespace sy::archive
