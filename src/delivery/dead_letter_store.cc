#include "delivery/dead_letter_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <optional>

#include "base/coding.h"
#include "base/crc32c.h"
#include "base/file_lock.h"
#include "event/raw_json.h"
#include "event/user_ids.h"

namespace sy::delivery {
namespace json = boost::json;
namespace {

constexpr uint32_t kMagic = 0x4C445953;  // "SYDL" little-endian
constexpr size_t kHeaderBytes = 12;
constexpr uint32_t kMaxRecordBytes = 64u << 20;

std::string FramePayload(std::string_view payload) {
  std::string out;
  out.reserve(kHeaderBytes + payload.size());
  PutFixed32(&out, kMagic);
  PutFixed32(&out, static_cast<uint32_t>(payload.size()));
  PutFixed32(&out, crc32c::Value(payload));
  out += payload;
  return out;
}

std::string Frame(const DeadLetter& d) {
  return FramePayload(DeadLetterToJson(d));
}

// Nesting the reader accepts in a payload: deeper than any event ingest stores (its
// depth limit is far below), so the JSON parser's default of 32 never turns a stored event
// into an unreadable record.
constexpr unsigned kMaxPayloadDepth = 1024;

json::parse_options PayloadParseOptions() {
  json::parse_options o;
  o.max_depth = kMaxPayloadDepth;
  return o;
}

// `text` without the JSON whitespace around it.
std::string_view TrimJsonSpace(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n";
  size_t b = text.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  size_t e = text.find_last_not_of(kSpace);
  return text.substr(b, e - b + 1);
}

// True when `text` is one JSON object that can be embedded in a payload as it is.
bool IsEmbeddableObject(std::string_view text) {
  if (text.empty() || text.front() != '{') return false;
  json::parse_options o = PayloadParseOptions();
  o.max_depth = kMaxPayloadDepth - 1;  // the payload object adds one level
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, {}, o);
  return !ec && v.is_object();
}

// The raw text of the payload's last "event" member (the one a JSON parser keeps), from the
// payload text a validating parser accepted.
std::optional<std::string_view> RawEventText(std::string_view payload) {
  std::vector<event::RawMember> members;
  if (!event::SplitObject(payload, &members)) return std::nullopt;
  std::string storage;
  std::vector<std::string_view> keys;
  event::DecodedKeys(members, &storage, &keys);
  for (size_t i = keys.size(); i-- > 0;) {
    if (keys[i] == "event") return members[i].value;
  }
  return std::nullopt;
}

// The length of the payload of the intact record at `pos` (magic, length and CRC agree), or
// nullopt when the bytes there are not one.
std::optional<uint32_t> IntactRecordAt(std::string_view bytes, size_t pos) {
  if (pos + kHeaderBytes > bytes.size()) return std::nullopt;
  const char* p = bytes.data() + pos;
  const uint32_t len = DecodeFixed32(p + 4);
  if (DecodeFixed32(p) != kMagic || len > kMaxRecordBytes ||
      len > bytes.size() - pos - kHeaderBytes ||
      crc32c::Value(std::string_view(p + kHeaderBytes, len)) != DecodeFixed32(p + 8)) {
    return std::nullopt;
  }
  return len;
}

}  // namespace

std::string DeadLetterToJson(const DeadLetter& d) {
  json::object o;
  o["destination"] = d.destination;
  o["offset"] = d.offset.value();
  o["source"] = d.source;
  o["messageId"] = d.message_id;
  o["receivedAt"] = d.received_at.value();
  o["deadLetteredAt"] = d.dead_lettered_at.value();
  o["reason"] = d.reason;
  o["attempts"] = d.attempts;
  json::object last;
  last["status"] = d.last_status;
  last["body"] = d.last_response;
  o["lastResponse"] = std::move(last);
  if (d.before_functions) o["beforeFunctions"] = true;
  std::string out = json::serialize(o);
  // The event goes in last, as its bytes: re-serializing it would rewrite the client's numbers
  // (9.99 → 9.99E0, a 23-digit integer → a double), and the dead letter and its redrive must
  // carry what the log stored.
  out.pop_back();  // the closing brace
  out += ",\"event\":";
  const std::string_view event = TrimJsonSpace(d.event);
  if (IsEmbeddableObject(event)) {
    out += event;
  } else {
    out += json::serialize(json::value(json::string_view(d.event)));
  }
  out += '}';
  return out;
}

Result<DeadLetter> DeadLetterFromJson(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, {}, PayloadParseOptions());
  if (ec || !v.is_object()) return DataLoss("dead letter is not a JSON object");
  const json::object& o = v.as_object();
  DeadLetter d;
  auto str = [&](const char* k) -> std::string {
    auto* x = o.if_contains(k);
    return x && x->is_string() ? std::string(x->get_string()) : "";
  };
  auto num = [&](const char* k) -> int64_t {
    auto* x = o.if_contains(k);
    if (!x) return 0;
    if (x->is_int64()) return x->get_int64();
    if (x->is_uint64()) return static_cast<int64_t>(x->get_uint64());
    return 0;
  };
  d.destination = str("destination");
  d.offset = Offset(static_cast<uint64_t>(num("offset")));
  d.source = str("source");
  d.message_id = str("messageId");
  d.received_at = TimestampMs(num("receivedAt"));
  d.dead_lettered_at = TimestampMs(num("deadLetteredAt"));
  d.reason = str("reason");
  d.attempts = static_cast<int>(num("attempts"));
  if (auto* b = o.if_contains("beforeFunctions"); b && b->is_bool())
    d.before_functions = b->get_bool();
  if (auto* last = o.if_contains("lastResponse"); last && last->is_object()) {
    if (auto* s = last->as_object().if_contains("status"); s && s->is_int64())
      d.last_status = static_cast<int>(s->get_int64());
    if (auto* b = last->as_object().if_contains("body"); b && b->is_string())
      d.last_response = std::string(b->get_string());
  }
  // The event from the payload's text, not from the parsed value: the parser turns numbers into
  // doubles, and the stored bytes are what the log had.
  if (auto raw = RawEventText(text)) {
    if (event::KindOf(*raw) == event::RawKind::kString) {
      event::UnescapeJsonString(raw->substr(1, raw->size() - 2), &d.event);
    } else {
      d.event = std::string(*raw);
    }
  }
  return d;
}

std::string DeadLetterStore::FilePath(std::string_view destination) const {
  return dir_ + "/" + std::string(destination) + ".dlq";
}

Status DeadLetterStore::EnsureDir() {
  if (dir_durable_.load(std::memory_order_acquire)) return Status::Ok();
  SY_RETURN_IF_ERROR(CreateDirDurably(env_, dir_));
  dir_durable_.store(true, std::memory_order_release);
  return Status::Ok();
}

Status DeadLetterStore::Append(const DeadLetter& letter) {
  return AppendAll({letter});
}

Status DeadLetterStore::AppendAll(const std::vector<DeadLetter>& letters) {
  if (letters.empty()) return Status::Ok();
  const std::string& destination = letters.front().destination;
  std::string bytes;
  for (const auto& d : letters) {
    if (d.destination != destination) return InvalidArgument("AppendAll: mixed destinations");
    bytes += Frame(d);
  }
  SY_RETURN_IF_ERROR(EnsureDir());
  SY_ASSIGN_OR_RETURN(FileLock lock, FileLock::Take(dir_ + "/" + destination + ".lock"));
  return AppendLocked(FilePath(destination), bytes);
}

Status DeadLetterStore::AppendLocked(const std::string& path, const std::string& bytes) {
  uint64_t size = 0;
  if (env_->FileExists(path)) {
    SY_ASSIGN_OR_RETURN(size, FileSize(env_, path));
  }
  SY_ASSIGN_OR_RETURN(auto file, env_->OpenWritable(path, /*truncate=*/false));
  Status s = file->WriteAt(size, bytes);
  if (s.ok()) s = file->Sync();
  // An empty file is one whose directory entry may not be durable yet (created now, or by an
  // append whose directory fsync failed): sync the directory until an append succeeds.
  if (s.ok() && size == 0) s = env_->SyncDir(dir_);
  if (!s.ok()) {
    // Cut the failed records off so the next append does not follow torn bytes (readers would
    // resynchronise anyway); the caller keeps the letters and retries.
    file->Truncate(size).IgnoreError();
    return s;
  }
  return Status::Ok();
}

Result<DeadLetterScan> DeadLetterStore::Scan(std::string_view destination) const {
  DeadLetterScan scan;
  const std::string path = FilePath(destination);
  if (!env_->FileExists(path)) return scan;
  SY_ASSIGN_OR_RETURN(const std::string bytes, ReadWholeFile(env_, path));
  // A record is intact when its magic, length and CRC agree. Anything else is skipped one byte at
  // a time until the next intact record: a torn tail, or damage in the middle, never hides the
  // records after it.
  size_t pos = 0;
  while (pos < bytes.size()) {
    const std::optional<uint32_t> intact = IntactRecordAt(bytes, pos);
    if (!intact) {
      ++scan.corrupt_bytes;
      ++pos;
      continue;
    }
    const uint32_t len = *intact;
    std::string_view payload(bytes.data() + pos + kHeaderBytes, len);
    auto letter = DeadLetterFromJson(payload);
    if (letter.ok()) {
      scan.letters.push_back(std::move(*letter));
    } else {
      scan.unreadable.emplace_back(payload);
    }
    pos += kHeaderBytes + len;
  }
  return scan;
}

Result<std::vector<DeadLetter>> DeadLetterStore::List(std::string_view destination,
                                                      uint64_t* skipped_bytes) const {
  if (skipped_bytes) *skipped_bytes = 0;
  SY_ASSIGN_OR_RETURN(DeadLetterScan scan, Scan(destination));
  if (skipped_bytes) {
    *skipped_bytes = scan.corrupt_bytes;
    for (const auto& u : scan.unreadable)
      *skipped_bytes += kHeaderBytes + u.size();
  }
  return std::move(scan.letters);
}

std::vector<std::string> DeadLetterStore::Destinations() const {
  std::vector<std::string> out;
  auto names = env_->ListDir(dir_);
  if (!names.ok()) return out;
  for (const auto& name : *names) {
    if (name.size() > 4 && name.ends_with(".dlq")) out.push_back(name.substr(0, name.size() - 4));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status DeadLetterStore::Rewrite(
    std::string_view destination,
    const std::function<std::vector<DeadLetter>(std::vector<DeadLetter>)>& resend) {
  SY_RETURN_IF_ERROR(EnsureDir());
  SY_ASSIGN_OR_RETURN(FileLock lock,
                      FileLock::Take(dir_ + "/" + std::string(destination) + ".lock"));
  SY_ASSIGN_OR_RETURN(DeadLetterScan scan, Scan(destination));
  if (scan.letters.empty()) return Status::Ok();  // nothing to resend: the file stays as it is
  std::vector<DeadLetter> keep = resend(std::move(scan.letters));
  std::string bytes;
  for (const auto& payload : scan.unreadable)
    bytes += FramePayload(payload);
  for (const auto& d : keep)
    bytes += Frame(d);
  return WriteFileAtomically(env_, FilePath(destination), bytes);
}

std::string DeadLetterEraseProgress::Summary() const {
  return "letters_removed=" + std::to_string(letters_removed) +
         " files_rewritten=" + std::to_string(files_rewritten) +
         " files_scanned=" + std::to_string(files_scanned) +
         " corrupt_bytes_dropped=" + std::to_string(corrupt_bytes_dropped) +
         " stale_temp_files_removed=" + std::to_string(stale_temp_files_removed);
}

Status DeadLetterStore::EraseUsers(std::string_view destination, const privacy::UserSet& users,
                                   DeadLetterEraseProgress* progress) {
  DeadLetterEraseProgress local;
  DeadLetterEraseProgress& p = progress ? *progress : local;
  const std::string path = FilePath(destination);
  const std::string temp = path + ".tmp";  // WriteFileAtomically's
  if (!env_->FileExists(path) && !env_->FileExists(temp)) return Status::Ok();
  SY_ASSIGN_OR_RETURN(FileLock lock,
                      FileLock::Take(dir_ + "/" + std::string(destination) + ".lock"));
  if (env_->FileExists(temp)) {
    SY_RETURN_IF_ERROR(env_->RemoveFile(temp));
    SY_RETURN_IF_ERROR(env_->SyncDir(dir_));
    ++p.stale_temp_files_removed;
  }
  if (users.empty() || !env_->FileExists(path)) return Status::Ok();
  SY_ASSIGN_OR_RETURN(const std::string bytes, ReadWholeFile(env_, path));
  ++p.files_scanned;
  std::string kept;
  kept.reserve(bytes.size());
  uint64_t removed = 0;
  uint64_t corrupt = 0;
  event::EventUserIds ids;
  size_t pos = 0;
  while (pos < bytes.size()) {
    const std::optional<uint32_t> intact = IntactRecordAt(bytes, pos);
    if (!intact) {
      ++corrupt;
      ++pos;
      continue;
    }
    const std::string_view record(bytes.data() + pos, kHeaderBytes + *intact);
    pos += record.size();
    auto letter = DeadLetterFromJson(record.substr(kHeaderBytes));
    // An event kept as a JSON string (it was not an embeddable object) is read as the text it
    // holds: it may still be an object with ids.
    if (letter.ok() && event::ReadEventUserIds(TrimJsonSpace(letter->event), &ids) &&
        users.Contains(ids.user_id, ids.anonymous_id)) {
      ++removed;
      continue;
    }
    kept += record;
  }
  if (removed == 0) return Status::Ok();  // nothing of theirs: the file stays as it is
  SY_RETURN_IF_ERROR(WriteFileAtomically(env_, path, kept));
  ++p.files_rewritten;
  p.letters_removed += removed;
  p.corrupt_bytes_dropped += corrupt;
  return Status::Ok();
}

Status DeadLetterStore::EraseUsersEverywhere(const privacy::UserSet& users,
                                             DeadLetterEraseProgress* progress) {
  std::vector<std::string> destinations = Destinations();
  // A destination whose only trace is a stale temp file (its .dlq renamed away by hand).
  if (auto names = env_->ListDir(dir_); names.ok()) {
    for (const auto& name : *names) {
      if (name.size() > 8 && name.ends_with(".dlq.tmp")) {
        std::string d = name.substr(0, name.size() - 8);
        if (std::find(destinations.begin(), destinations.end(), d) == destinations.end())
          destinations.push_back(std::move(d));
      }
    }
  }
  for (const auto& d : destinations)
    SY_RETURN_IF_ERROR(EraseUsers(d, users, progress));
  return Status::Ok();
}

}  // namespace sy::delivery
