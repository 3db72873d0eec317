// The archive the deletion tests erase from, the same for the local store (unit test) and S3
// (tests/erase/erase_real_servers.cc): two sources, files mixing the users' events with others'
// (the users' events first, last, in the middle, and in a file of several gzip members), a file
// holding only the users' events (deleted by the erase), a file holding none (never written),
// and an object under the prefix that is not an archive file (never touched).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "archive/archive_key.h"
#include "archive/archive_reader.h"
#include "archive/gzip.h"
#include "archive/object_store.h"
#include "privacy/user_set.h"

namespace sy::archive::erase_fixture {

inline constexpr int64_t kT0 = 1'764'165'600'000;  // 2025-11-26T14:00:00Z
inline constexpr const char* kForeignKey = "notes/readme.txt";

inline privacy::UserSet Request() {
  return privacy::UserSet({"u1", "42"}, {"a3"});
}

// One stored event line of `ids` (JSON members).
inline std::string Line(const std::string& source, int n, const std::string& ids) {
  return R"({"type":"track","event":"E","messageId":")" + source + "-" + std::to_string(n) + "\"," +
         ids + R"(,"receivedAt":"2025-11-26T14:00:00.000Z"})";
}

struct File {
  std::string key;
  std::vector<std::string> lines;  // as written
  std::vector<std::string> kept;   // what must remain after the erase (none: the key is gone)
};

// The files, written to `store` under `prefix`. `members` lines per gzip member.
inline std::vector<File> Write(ObjectStore* store, const std::string& prefix) {
  const std::string kUser = R"("userId":"u1","anonymousId":"x")";
  const std::string kUserEscaped = R"("userId":"\u0075\u0031")";
  const std::string kNumber = R"("userId":42)";
  const std::string kAnonymous = R"("anonymousId":"a3")";
  const std::string kOther = R"("userId":"u2","anonymousId":"a2")";
  const std::string kNested = R"("userId":"u9","properties":{"userId":"u1"})";
  const std::string kOtherSpace = R"("anonymousId":"u1")";  // a userId of the request, as anon
  std::vector<File> files;
  int n = 0;
  auto file = [&](const std::string& source, uint64_t first, std::vector<std::string> ids,
                  size_t per_member) {
    File f;
    f.key = FormatKey(prefix, source, Offset(first), Offset(first + 100), TimestampMs(kT0));
    std::string gz, raw;
    size_t in_member = 0;
    for (const auto& id : ids) {
      f.lines.push_back(Line(source, ++n, id));
      const bool users = id == kUser || id == kUserEscaped || id == kNumber || id == kAnonymous;
      if (!users) f.kept.push_back(f.lines.back());
      raw += f.lines.back() + "\n";
      if (++in_member == per_member) {
        AppendGzipMember(raw, 1, &gz);
        raw.clear();
        in_member = 0;
      }
    }
    if (!raw.empty()) AppendGzipMember(raw, 1, &gz);
    EXPECT_TRUE(store->Put(f.key, gz).ok());
    files.push_back(std::move(f));
  };
  file("web", 1000, {kUser, kOther, kNested, kOther, kUser}, 2);     // first and last
  file("web", 2000, {kOther, kAnonymous, kOtherSpace}, 10);          // middle
  file("web", 3000, {kUser, kNumber, kUserEscaped, kAnonymous}, 1);  // only theirs: deleted
  file("web", 4000, {kOther, kNested, kOtherSpace}, 2);              // none of theirs
  file("app", 1500, {kOther, "\"noIds\":true", kNumber}, 10);
  std::string big;  // many members, the users' events spread through
  std::vector<std::string> ids;
  for (int i = 0; i < 300; ++i)
    ids.push_back(i % 7 == 0 ? kUser : kOther);
  file("app", 5000, ids, 16);
  EXPECT_TRUE(store->Put(prefix + kForeignKey, "not an archive file").ok());
  return files;
}

// Every line of `key`, decompressed.
inline std::vector<std::string> Lines(ObjectStore* store, const std::string& key) {
  std::vector<std::string> out;
  Status s = ForEachArchiveLine(store, key, [&](std::string_view line) { out.emplace_back(line); });
  EXPECT_TRUE(s.ok()) << key << ": " << s.ToString();
  return out;
}

// The store holds exactly the kept lines, in order, under the original keys; the files left
// with nothing are gone; nothing else was added or removed.
inline void ExpectErased(ObjectStore* store, const std::string& prefix,
                         const std::vector<File>& files) {
  auto listed = store->List(prefix);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  std::map<std::string, uint64_t> present;
  for (const auto& o : *listed)
    present[o.key] = o.size;
  std::map<std::string, uint64_t> expected_keys;
  for (const File& f : files) {
    if (f.kept.empty()) {
      EXPECT_FALSE(present.count(f.key)) << f.key << " should be deleted";
      continue;
    }
    ASSERT_TRUE(present.count(f.key)) << f.key << " is missing";
    EXPECT_EQ(Lines(store, f.key), f.kept) << f.key;
    expected_keys[f.key] = 0;
  }
  EXPECT_TRUE(present.count(prefix + kForeignKey));
  EXPECT_EQ(present.size(), expected_keys.size() + 1);
  // Replay's view: every archive file, every line — none of the users'.
  auto all = ListArchive(store, prefix, ArchiveSelection{});
  ASSERT_TRUE(all.ok());
  size_t lines = 0, kept = 0;
  for (const auto& f : *all)
    lines += Lines(store, f.object_key).size();
  for (const File& f : files)
    kept += f.kept.size();
  EXPECT_EQ(lines, kept);
}

}  // namespace sy::archive::erase_fixture
