#include "admin/audit_log.h"

#include <boost/json.hpp>
#include <vector>

#include "base/file_lock.h"
#include "base/time_format.h"

namespace sy::admin {

namespace json = boost::json;

AuditLog::AuditLog(const DataDir& data_dir, Env* env, Clock* clock)
    : dir_(data_dir.Admin()),
      path_(data_dir.AuditLog()),
      lock_path_(data_dir.AdminLock()),
      env_(env),
      clock_(clock) {}

namespace {

// `text` as JSON when it parses (the object before/after), else as a string.
json::value Embedded(const std::string& text) {
  if (text.empty()) return nullptr;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return json::string(text);
  return v;
}

}  // namespace

Status AuditLog::Append(const AuditEntry& e) {
  std::lock_guard lock(mu_);
  SY_RETURN_IF_ERROR(env_->CreateDirIfMissing(dir_));
  SY_ASSIGN_OR_RETURN(FileLock file_lock, FileLock::Take(lock_path_));
  const bool created = !env_->FileExists(path_);
  SY_ASSIGN_OR_RETURN(auto file, env_->OpenWritable(path_, /*truncate=*/false));
  SY_ASSIGN_OR_RETURN(uint64_t size, FileSize(env_, path_));
  std::string prefix;
  if (size > 0) {
    // A crash may have left a torn last line: end it, so this entry starts a line of its own.
    SY_ASSIGN_OR_RETURN(auto reader, env_->OpenReadable(path_));
    char last = '\n';
    SY_ASSIGN_OR_RETURN(size_t n, reader->ReadAt(size - 1, 1, &last));
    if (n == 1 && last != '\n') prefix = "\n";
  }
  json::object o;
  o["id"] = size + prefix.size();
  o["time"] = FormatIso8601(clock_->Now());
  o["actor"] = e.actor;
  o["role"] = e.role;
  o["action"] = e.action;
  o["target"] = e.target;
  o["client"] = e.client;
  o["status"] = e.status;
  o["before"] = Embedded(e.before);
  o["after"] = Embedded(e.after);
  std::string line = prefix + json::serialize(o) + "\n";
  SY_RETURN_IF_ERROR(file->WriteAt(size, line));
  SY_RETURN_IF_ERROR(file->Sync());
  if (created) SY_RETURN_IF_ERROR(env_->SyncDir(dir_));
  return Status::Ok();
}

Result<std::string> AuditLog::Page(size_t limit, uint64_t before) {
  std::string text;
  if (env_->FileExists(path_)) {
    SY_ASSIGN_OR_RETURN(text, ReadWholeFile(env_, path_));
  }
  // Offsets of complete lines (a torn last line, without its newline, is not one).
  std::vector<std::pair<size_t, size_t>> lines;  // (offset, length)
  for (size_t start = 0; start < text.size();) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) break;
    if (nl > start) lines.emplace_back(start, nl - start);
    start = nl + 1;
  }
  std::string out = "{\"entries\":[";
  size_t shown = 0;
  uint64_t last_id = 0;
  bool more = false;
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (before != 0 && it->first >= before) continue;
    if (shown == limit) {
      more = true;
      break;
    }
    std::string_view line(text.data() + it->first, it->second);
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) continue;  // a line torn and then closed by a later append
    if (shown > 0) out += ',';
    out += line;
    last_id = it->first;
    ++shown;
  }
  out += "],\"next_before\":";
  out += more ? std::to_string(last_id) : "null";
  out += "}";
  return out;
}

}  // namespace sy::admin
