#include "archive/archive_reader.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "archive/gzip.h"
#include "base/time_format.h"
#include "event/raw_json.h"

namespace sy::archive {
namespace {
constexpr int64_t kHourMs = 3'600'000;
// Receive times are not strictly monotonic in offset order (several I/O threads): a minute of
// slack on the lower bound of a file's time range.
constexpr int64_t kSlackMs = 60'000;
}  // namespace

Result<std::vector<ArchiveFile>> ListArchive(ObjectStore* store, const std::string& prefix,
                                             const ArchiveSelection& sel) {
  SY_ASSIGN_OR_RETURN(auto objects, store->List(prefix));
  std::map<std::string, std::vector<ArchiveFile>> by_source;
  for (auto& o : objects) {
    auto k = ParseKey(prefix, o.key);
    if (!k) continue;
    if (!sel.source.empty() && k->source != sel.source) continue;
    by_source[k->source].push_back({std::move(o.key), o.size, std::move(*k)});
  }
  std::vector<ArchiveFile> out;
  for (auto& [source, files] : by_source) {
    std::sort(files.begin(), files.end(),
              [](const ArchiveFile& a, const ArchiveFile& b) { return a.key.first < b.key.first; });
    for (size_t i = 0; i < files.size(); ++i) {
      int64_t lo = files[i].key.hour.value() - kSlackMs;
      bool has_next = i + 1 < files.size();
      int64_t hi = has_next ? files[i + 1].key.hour.value() + kHourMs : INT64_MAX;
      if (sel.to && lo >= sel.to->value()) continue;
      if (sel.from && hi <= sel.from->value()) continue;
      out.push_back(std::move(files[i]));
    }
  }
  return out;
}

std::optional<TimestampMs> ReceivedAtOf(std::string_view event_json) {
  // Enrichment writes receivedAt last or near the end; a small scan finds it without splitting
  // the whole object in the common case, and SplitObject settles any doubt.
  thread_local std::vector<event::RawMember> members;
  members.clear();
  if (!event::SplitObject(event_json, &members)) return std::nullopt;
  for (auto it = members.rbegin(); it != members.rend(); ++it) {
    if (it->key != "receivedAt") continue;
    std::string_view v;
    if (!event::PlainString(it->value, &v)) return std::nullopt;
    return ParseIso8601(v);
  }
  return std::nullopt;
}

bool InSelection(const ArchiveSelection& s, std::optional<TimestampMs> t) {
  if (!s.from && !s.to) return true;
  if (!t) return false;  // a time range selects only events whose time is known
  if (s.from && *t < *s.from) return false;
  if (s.to && *t >= *s.to) return false;
  return true;
}

Status ReadArchiveFile(ObjectStore* store, const std::string& object_key, std::string* text,
                       std::vector<std::string_view>* lines) {
  SY_ASSIGN_OR_RETURN(std::string gz, store->Get(object_key));
  auto raw = Gunzip(gz);
  if (!raw.ok()) return DataLoss(object_key + ": " + raw.status().message());
  *text = std::move(*raw);
  lines->clear();
  std::string_view rest(*text);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) return DataLoss(object_key + ": last line has no newline");
    if (nl > 0) lines->push_back(rest.substr(0, nl));
    rest.remove_prefix(nl + 1);
  }
  return Status::Ok();
}

Status ForEachArchiveLine(ObjectStore* store, const std::string& object_key,
                          const std::function<void(std::string_view)>& on_line) {
  SY_ASSIGN_OR_RETURN(std::string gz, store->Get(object_key));
  GunzipReader reader(gz);
  // Members end on line boundaries when this project wrote them; a line that spans members
  // (another writer's file) is carried over to the start of the buffer.
  std::string buffer;
  size_t used = 0;
  while (!reader.done()) {
    if (Status s = reader.NextMember(&buffer, &used); !s.ok()) {
      return DataLoss(object_key + ": " + s.message());
    }
    std::string_view rest(buffer.data(), used);
    for (size_t nl = rest.find('\n'); nl != std::string_view::npos; nl = rest.find('\n')) {
      if (nl > 0) on_line(rest.substr(0, nl));
      rest.remove_prefix(nl + 1);
    }
    if (!rest.empty()) std::memmove(buffer.data(), rest.data(), rest.size());
    used = rest.size();
  }
  if (used > 0) return DataLoss(object_key + ": last line has no newline");
  return Status::Ok();
}

}  // namespace sy::archive
