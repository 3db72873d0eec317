#include "delivery/dead_letter_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/crc32c.h"

namespace sy::delivery {
namespace json = boost::json;
namespace {

constexpr uint32_t kMagic = 0x4C445953;  // "SYDL" little-endian
constexpr size_t kHeaderBytes = 12;
constexpr uint32_t kMaxRecordBytes = 64u << 20;

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Holds an exclusive flock on a lock file for its lifetime.
class FileLock {
 public:
  static Result<FileLock> Acquire(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return IoError("cannot open " + path + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX) != 0) {
      ::close(fd);
      return IoError("cannot lock " + path + ": " + std::strerror(errno));
    }
    return FileLock(fd);
  }
  FileLock(FileLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

Status WriteAllAndSync(int fd, const std::string& bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError("write " + path + ": " + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(fd) != 0) return IoError("fdatasync " + path + ": " + std::strerror(errno));
  return Status::Ok();
}

std::string Frame(const DeadLetter& d) {
  std::string payload = DeadLetterToJson(d);
  std::string out;
  out.reserve(kHeaderBytes + payload.size());
  PutU32(&out, kMagic);
  PutU32(&out, static_cast<uint32_t>(payload.size()));
  PutU32(&out, crc32c::Value(payload));
  out += payload;
  return out;
}

void SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
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
  boost::system::error_code ec;
  json::value ev = json::parse(d.event, ec);
  if (ec) {
    o["event"] = d.event;
  } else {
    o["event"] = std::move(ev);
  }
  return json::serialize(o);
}

Result<DeadLetter> DeadLetterFromJson(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
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
  if (auto* last = o.if_contains("lastResponse"); last && last->is_object()) {
    if (auto* s = last->as_object().if_contains("status"); s && s->is_int64())
      d.last_status = static_cast<int>(s->get_int64());
    if (auto* b = last->as_object().if_contains("body"); b && b->is_string())
      d.last_response = std::string(b->get_string());
  }
  if (auto* e = o.if_contains("event")) {
    d.event = e->is_string() ? std::string(e->get_string()) : json::serialize(*e);
  }
  return d;
}

std::string DeadLetterStore::FilePath(std::string_view destination) const {
  return dir_ + "/" + std::string(destination) + ".dlq";
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
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return IoError("cannot create " + dir_ + ": " + ec.message());
  SY_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(dir_ + "/" + destination + ".lock"));
  std::string path = FilePath(destination);
  bool existed = std::filesystem::exists(path);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot open " + path + ": " + std::strerror(errno));
  Status s = WriteAllAndSync(fd, bytes, path);
  ::close(fd);
  if (s.ok() && !existed) SyncDir(dir_);
  return s;
}

Result<std::vector<DeadLetter>> DeadLetterStore::List(std::string_view destination,
                                                      uint64_t* skipped_bytes) const {
  if (skipped_bytes) *skipped_bytes = 0;
  std::vector<DeadLetter> out;
  std::ifstream in(FilePath(destination), std::ios::binary);
  if (!in) return out;
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  size_t pos = 0;
  while (pos + kHeaderBytes <= bytes.size()) {
    const char* p = bytes.data() + pos;
    uint32_t len = GetU32(p + 4);
    if (GetU32(p) != kMagic || len > kMaxRecordBytes || pos + kHeaderBytes + len > bytes.size())
      break;
    std::string_view payload(p + kHeaderBytes, len);
    if (crc32c::Value(payload) != GetU32(p + 8)) break;
    auto letter = DeadLetterFromJson(payload);
    if (!letter.ok()) break;
    out.push_back(std::move(*letter));
    pos += kHeaderBytes + len;
  }
  if (skipped_bytes) *skipped_bytes = bytes.size() - pos;
  return out;
}

std::vector<std::string> DeadLetterStore::Destinations() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    if (e.path().extension() == ".dlq") out.push_back(e.path().stem().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status DeadLetterStore::Rewrite(
    std::string_view destination,
    const std::function<std::vector<DeadLetter>(std::vector<DeadLetter>)>& resend) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  SY_ASSIGN_OR_RETURN(FileLock lock,
                      FileLock::Acquire(dir_ + "/" + std::string(destination) + ".lock"));
  SY_ASSIGN_OR_RETURN(auto letters, List(destination));
  if (letters.empty()) return Status::Ok();
  std::vector<DeadLetter> keep = resend(std::move(letters));
  std::string bytes;
  for (const auto& d : keep)
    bytes += Frame(d);
  std::string path = FilePath(destination);
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot open " + tmp + ": " + std::strerror(errno));
  Status s = WriteAllAndSync(fd, bytes, tmp);
  ::close(fd);
  SY_RETURN_IF_ERROR(s);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return IoError("rename " + tmp + ": " + std::strerror(errno));
  }
  SyncDir(dir_);
  return Status::Ok();
}

}  // namespace sy::delivery
