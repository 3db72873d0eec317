#include "archive/archive_key.h"

#include <charconv>
#include <cstdio>
#include <ctime>

#include "base/hash.h"

namespace sy::archive {
namespace {

constexpr int64_t kHourMs = 3'600'000;

bool ParseU64(std::string_view s, size_t digits, uint64_t* out) {
  if (s.size() != digits) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::string SpreadHash(std::string_view source, Offset first) {
  Hash128 h = HashPair(source, std::to_string(first.value()));
  char buf[3];
  std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned>(h.lo & 0xff));
  return buf;
}

std::string FormatKey(std::string_view prefix, std::string_view source, Offset first, Offset last,
                      TimestampMs first_received_at) {
  int64_t ms = first_received_at.value();
  time_t secs = static_cast<time_t>((ms >= 0 ? ms : ms - 999) / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char tail[96];
  std::snprintf(tail, sizeof tail, "/%04d-%02d-%02d/%02d/%020llu-%020llu.ndjson.gz",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                static_cast<unsigned long long>(first.value()),
                static_cast<unsigned long long>(last.value()));
  std::string key(prefix);
  key += SpreadHash(source, first);
  key += '/';
  key += source;
  key += tail;
  return key;
}

std::optional<ArchiveKey> ParseKey(std::string_view prefix, std::string_view key) {
  if (!key.starts_with(prefix)) return std::nullopt;
  key.remove_prefix(prefix.size());
  // <hh>/<source>/<date>/<HH>/<first>-<last>.ndjson.gz
  std::string_view parts[5];
  for (int i = 0; i < 5; ++i) {
    size_t slash = i < 4 ? key.find('/') : key.size();
    if (slash == std::string_view::npos) return std::nullopt;
    parts[i] = key.substr(0, slash);
    if (i < 4) key.remove_prefix(slash + 1);
  }
  if (key.find('/') != std::string_view::npos) return std::nullopt;
  std::string_view hash = parts[0], source = parts[1], date = parts[2], hour = parts[3],
                   name = parts[4];
  if (source.empty() || date.size() != 10 || date[4] != '-' || date[7] != '-') return std::nullopt;
  constexpr std::string_view kSuffix = ".ndjson.gz";
  if (!name.ends_with(kSuffix) || name.size() != 41 + kSuffix.size() || name[20] != '-')
    return std::nullopt;
  uint64_t y, mo, d, h, first, last;
  if (!ParseU64(date.substr(0, 4), 4, &y) || !ParseU64(date.substr(5, 2), 2, &mo) ||
      !ParseU64(date.substr(8, 2), 2, &d) || !ParseU64(hour, 2, &h) ||
      !ParseU64(name.substr(0, 20), 20, &first) || !ParseU64(name.substr(21, 20), 20, &last))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || last < first) return std::nullopt;
  ArchiveKey k;
  k.source = std::string(source);
  k.first = Offset(first);
  k.last = Offset(last);
  if (hash != SpreadHash(k.source, k.first)) return std::nullopt;
  struct tm tm {};
  tm.tm_year = static_cast<int>(y) - 1900;
  tm.tm_mon = static_cast<int>(mo) - 1;
  tm.tm_mday = static_cast<int>(d);
  tm.tm_hour = static_cast<int>(h);
  k.hour = TimestampMs(static_cast<int64_t>(timegm(&tm)) * 1000);
  if (k.hour.value() % kHourMs != 0) return std::nullopt;
  return k;
}

}  // namespace sy::archive
