#include "base/time_format.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstring>

namespace sy {

void FormatIso8601Uncached(TimestampMs t, std::string* out);

namespace {

// Howard Hinnant's days_from_civil / civil_from_days.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

bool IsLeap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

void AppendIso8601(TimestampMs t, std::string* out) {
  // An event carries several instants (receivedAt, sentAt, originalTimestamp, timestamp) and the
  // events of one batch mostly repeat them: each thread remembers the last few it formatted.
  struct Entry {
    int64_t ms = INT64_MIN;
    char text[32];
    size_t len = 0;
  };
  static constexpr size_t kEntries = 4;
  thread_local Entry cache[kEntries];
  thread_local size_t next = 0;
  for (const Entry& e : cache) {
    if (e.ms == t.value()) {
      out->append(e.text, e.len);
      return;
    }
  }
  const size_t start = out->size();
  FormatIso8601Uncached(t, out);
  Entry& e = cache[next++ % kEntries];
  e.len = std::min(out->size() - start, sizeof e.text);
  std::memcpy(e.text, out->data() + start, e.len);
  e.ms = e.len < sizeof e.text ? t.value() : INT64_MIN;
}

void FormatIso8601Uncached(TimestampMs t, std::string* out) {
  int64_t ms = t.value();
  int64_t days = ms >= 0 ? ms / 86'400'000 : -((-ms + 86'399'999) / 86'400'000);
  int64_t rem = ms - days * 86'400'000;
  // Hand-formatted into one buffer and appended once: this runs for most events on the ingest
  // path. The date part changes once a day, so each thread keeps the last one.
  thread_local int64_t cached_days = INT64_MIN;
  thread_local char date[32];
  thread_local size_t date_len = 0;
  auto put = [](char* p, int64_t v, int width) {
    for (int i = width - 1; i >= 0; --i) {
      p[i] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
  };
  if (days != cached_days) {
    int64_t y;
    unsigned m, d;
    CivilFromDays(days, &y, &m, &d);
    std::string year;
    if (y < 0 || y > 9999) {
      year = std::to_string(y);
    } else {
      year.resize(4);
      put(year.data(), y, 4);
    }
    date_len = 0;
    std::memcpy(date, year.data(), year.size());
    date_len = year.size();
    date[date_len] = '-';
    put(date + date_len + 1, m, 2);
    date[date_len + 3] = '-';
    put(date + date_len + 4, d, 2);
    date[date_len + 6] = 'T';
    date_len += 7;
    cached_days = days;
  }
  char buf[64];
  std::memcpy(buf, date, date_len);
  char* p = buf + date_len;
  put(p, rem / 3'600'000, 2);
  p[2] = ':';
  put(p + 3, rem / 60'000 % 60, 2);
  p[5] = ':';
  put(p + 6, rem / 1000 % 60, 2);
  p[8] = '.';
  put(p + 9, rem % 1000, 3);
  p[12] = 'Z';
  out->append(buf, date_len + 13);
}

std::string FormatIso8601(TimestampMs t) {
  std::string s;
  AppendIso8601(t, &s);
  return s;
}

std::optional<TimestampMs> ParseIso8601(std::string_view s) {
  int y, mo, d, h = 0, mi = 0, sec = 0;
  if (!Digits(s, 0, 4, &y) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, &mo) ||
      s[7] != '-' || !Digits(s, 8, 2, &d))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 ||
      static_cast<unsigned>(d) > DaysInMonth(y, static_cast<unsigned>(mo)))
    return std::nullopt;
  size_t p = 10;
  int64_t frac_ms = 0;
  int64_t offset_min = 0;
  if (p < s.size()) {
    if (s[p] != 'T' && s[p] != 't' && s[p] != ' ') return std::nullopt;
    ++p;
    if (!Digits(s, p, 2, &h) || p + 2 >= s.size() || s[p + 2] != ':' || !Digits(s, p + 3, 2, &mi))
      return std::nullopt;
    p += 5;
    if (p < s.size() && s[p] == ':') {
      if (!Digits(s, p + 1, 2, &sec)) return std::nullopt;
      p += 3;
    }
    if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
    if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
      ++p;
      int digits = 0;
      while (p < s.size() && std::isdigit(static_cast<unsigned char>(s[p]))) {
        if (digits < 3) frac_ms = frac_ms * 10 + (s[p] - '0');
        ++digits;
        ++p;
      }
      if (digits == 0) return std::nullopt;
      for (int i = digits; i < 3; ++i)
        frac_ms *= 10;
    }
    if (p < s.size()) {
      if (s[p] == 'Z' || s[p] == 'z') {
        ++p;
      } else if (s[p] == '+' || s[p] == '-') {
        int sign = s[p] == '-' ? -1 : 1;
        int oh, om = 0;
        if (!Digits(s, p + 1, 2, &oh)) return std::nullopt;
        p += 3;
        if (p < s.size() && s[p] == ':') ++p;
        if (p < s.size()) {
          if (!Digits(s, p, 2, &om)) return std::nullopt;
          p += 2;
        }
        if (oh > 23 || om > 59) return std::nullopt;
        offset_min = sign * (oh * 60 + om);
      } else {
        return std::nullopt;
      }
    }
    if (p != s.size()) return std::nullopt;
  }
  int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  int64_t ms = ((days * 24 + h) * 60 + mi) * 60'000 + sec * 1000LL + frac_ms - offset_min * 60'000;
  return TimestampMs(ms);
}

namespace {
std::optional<int64_t> ParseWithUnits(
    std::string_view s, std::initializer_list<std::pair<std::string_view, int64_t>> units,
    bool unit_optional) {
  size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
    ++i;
  if (i == 0) return std::nullopt;
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + i, n);
  if (ec != std::errc() || ptr != s.data() + i) return std::nullopt;
  std::string_view unit = s.substr(i);
  while (!unit.empty() && unit.front() == ' ')
    unit.remove_prefix(1);
  if (unit.empty()) return unit_optional ? std::optional<int64_t>(n) : std::nullopt;
  for (auto& [name, mult] : units) {
    if (unit == name) {
      if (n > INT64_MAX / mult) return std::nullopt;
      return n * mult;
    }
  }
  return std::nullopt;
}
}  // namespace

std::optional<int64_t> ParseDurationMs(std::string_view s) {
  return ParseWithUnits(
      s, {{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}}, false);
}

std::optional<int64_t> ParseByteSize(std::string_view s) {
  return ParseWithUnits(s,
                        {{"B", 1},
                         {"KB", 1024},
                         {"KiB", 1024},
                         {"MB", 1024 * 1024},
                         {"MiB", 1024 * 1024},
                         {"GB", 1024LL * 1024 * 1024},
                         {"GiB", 1024LL * 1024 * 1024},
                         {"TB", 1024LL * 1024 * 1024 * 1024}},
                        true);
}

}  // namespace sy
