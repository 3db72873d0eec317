#include "archive/archive_eraser.h"

#include "archive/archive_reader.h"
#include "archive/gzip.h"
#include "base/logging.h"
#include "event/user_ids.h"

namespace sy::archive {
namespace {

std::shared_ptr<spdlog::logger> Logger() {
  static auto l = ModuleLogger("archive");
  return l;
}

// Uncompressed bytes per gzip member of a rewritten file: the archiver's member size.
constexpr size_t kMemberBytes = 1 << 20;

}  // namespace

std::string ArchiveEraseProgress::Summary() const {
  return "events_removed=" + std::to_string(events_removed) +
         " files_rewritten=" + std::to_string(files_rewritten) +
         " files_deleted=" + std::to_string(files_deleted) +
         " files_scanned=" + std::to_string(files_scanned) +
         " bytes_scanned=" + std::to_string(bytes_scanned) +
         " files_unreadable=" + std::to_string(files_unreadable);
}

Status EraseUsersFromArchive(ObjectStore* store, const privacy::UserSet& users,
                             const ArchiveEraseOptions& options, ArchiveEraseProgress* progress) {
  ArchiveEraseProgress local;
  ArchiveEraseProgress& p = progress ? *progress : local;
  if (users.empty()) return Status::Ok();
  SY_ASSIGN_OR_RETURN(std::vector<ArchiveFile> files,
                      ListArchive(store, options.prefix, ArchiveSelection{}));
  std::string unreadable;  // keys of the files left as they were, for the error
  event::EventUserIds ids;
  for (const ArchiveFile& file : files) {
    uint64_t removed = 0;
    uint64_t kept = 0;
    std::string raw;  // kept lines not yet compressed (< one member)
    std::string gz;   // the kept lines' complete members
    Status read = ForEachArchiveLine(store, file.object_key, [&](std::string_view line) {
      // A line that is not a JSON object has no ids: kept, as replay would read it.
      if (event::ReadEventUserIds(line, &ids) && users.Contains(ids.user_id, ids.anonymous_id)) {
        ++removed;
        return;
      }
      ++kept;
      raw.append(line);
      raw += '\n';
      if (raw.size() >= kMemberBytes) {
        AppendGzipMember(raw, options.gzip_level, &gz);
        raw.clear();
      }
    });
    ++p.files_scanned;
    p.bytes_scanned += file.size;
    if (!read.ok()) {
      if (read.code() != StatusCode::kDataLoss) return read;  // the store failing: retry later
      Logger()->error("archive file unreadable, left as it is by the deletion key={} error={}",
                      file.object_key, read.message());
      ++p.files_unreadable;
      unreadable += (unreadable.empty() ? "" : ", ") + file.object_key;
    } else if (removed > 0 && kept == 0) {
      SY_RETURN_IF_ERROR(store->Delete(file.object_key));
      ++p.files_deleted;
      p.events_removed += removed;
    } else if (removed > 0) {
      if (!raw.empty()) AppendGzipMember(raw, options.gzip_level, &gz);
      SY_RETURN_IF_ERROR(store->Put(file.object_key, gz));
      ++p.files_rewritten;
      p.events_removed += removed;
    }
    if (options.after_file) options.after_file(file.object_key);
  }
  if (!unreadable.empty()) {
    return DataLoss("archive files that could not be read, so may still hold the users' events: " +
                    unreadable);
  }
  return Status::Ok();
}

}  // namespace sy::archive
