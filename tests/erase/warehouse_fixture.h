// The warehouse content the deletion tests erase from, the same for SQLite (unit test) and
// PostgreSQL (tests/erase/erase_real_servers.cc): four people, each with identify (→ users),
// track (→ tracks + order_completed), page, screen, group and alias rows, discards (a type
// conflict in an event table, one in users), violations, and an event the database "refused"
// (a whole-event discard). Every row's id says whose it is: messageIds start with the person
// ("p1-…"), so a check needs no knowledge of the tables.
//
//   p1: userId "u1", anonymousId "a1"      (erased by userId)
//   p2: userId "u2", anonymousId "a2"      (kept)
//   p3: anonymousId "a3" only               (erased by anonymousId)
//   p4: userId 42, a JSON number            (erased by userId "42")
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "privacy/user_set.h"
#include "warehouse/loader.h"
#include "warehouse/schema.h"

namespace sy::warehouse::erase_fixture {

inline constexpr const char* kLoadTime = "2024-05-02T00:00:00.000Z";

// The erase request of every test: p1, p3 and p4.
inline privacy::UserSet Request() {
  return privacy::UserSet({"u1", "42"}, {"a3"});
}
inline bool IsErased(std::string_view person) {
  return person == "p1" || person == "p3" || person == "p4";
}

struct Person {
  std::string tag;  // p1…
  std::string ids;  // the JSON members naming them
};

inline std::vector<Person> People() {
  return {{"p1", R"("userId":"u1","anonymousId":"a1")"},
          {"p2", R"("userId":"u2","anonymousId":"a2")"},
          {"p3", R"("anonymousId":"a3")"},
          {"p4", R"("userId":42)"}};
}

inline std::string Event(const Person& p, const std::string& kind, const std::string& body) {
  return "{\"type\":\"" + kind + "\",\"messageId\":\"" + p.tag + "-" + kind + "\"," + p.ids +
         ",\"receivedAt\":\"2024-05-01T10:00:00.000Z\"," + body + "}";
}

// Every person's events, as stored JSON.
inline std::vector<std::string> Events(const Person& p) {
  const bool first = p.tag == "p1";  // p1 sets the column types; the others conflict somewhere
  std::vector<std::string> out = {
      Event(p, "identify",
            std::string(R"("traits":{"email":")") + p.tag + R"(@example.com","age":)" +
                (first ? "30" : "\"thirty\"") + "}"),
      Event(p, "track",
            std::string(R"("event":"Order Completed","properties":{"revenue":)") +
                (first ? "9.5" : "\"lots\"") + R"(,"orderId":")" + p.tag + "-o\"}"),
      Event(p, "page", R"("name":"Home","properties":{"path":"/"})"),
      Event(p, "screen", R"("name":"Main")"),
      Event(p, "group", R"("groupId":"g-1","traits":{"plan":"pro"})"),
  };
  if (p.tag == "p1" || p.tag == "p2")
    out.push_back(Event(p, "alias", std::string(R"("previousId":"a)") + p.tag.substr(1) + "\""));
  return out;
}

// Loads every person's events (and violations, and a refused whole event each) into `source`.
inline void Load(Loader* loader, const std::string& source) {
  EventMapper mapper;
  MappedEvent mapped;
  for (const Person& p : People()) {
    for (const std::string& e : Events(p))
      ASSERT_TRUE(mapper.Map(e, kLoadTime, &mapped).ok()) << e;
    ASSERT_TRUE(AppendViolationRows(p.tag + "-track", "plan",
                                    R"([{"path":"/properties/revenue","rule":"type",)"
                                    R"("message":"must be a number"}])",
                                    "2024-05-01T10:00:00.000Z", kLoadTime, &mapped)
                    .ok());
    mapped.discards.push_back({"", "", Event(p, "track", R"("event":"Refused")"),
                               "the database refused the event: test", p.tag + "-refused",
                               "2024-05-01T10:00:00.000Z"});
  }
  auto stats = loader->Load(source, mapped.rows, mapped.discards, kLoadTime);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
}

// What a backend gives the checks: its tables, and one column of a table as text (NULL → "").
struct Probe {
  std::function<std::vector<std::string>()> tables;
  std::function<std::vector<std::string>(const std::string& table, const std::string& column)>
      column;
  std::function<bool(const std::string& table, const std::string& column)> has_column;
};

// Whose a row is, from the columns that name it: "p1"… or "" (nobody's, never expected).
inline std::string OwnerOf(const std::string& value) {
  for (const char* tag : {"p1", "p2", "p3", "p4"}) {
    if (value.rfind(std::string(tag) + "-", 0) == 0) return tag;
  }
  if (value == "u1") return "p1";
  if (value == "u2") return "p2";
  if (value == "42") return "p4";
  return "";
}

// Rows per (table, owner), read through the columns that identify rows: id (users: the
// userId), row_id (discards), event_id (violations).
inline std::map<std::string, std::map<std::string, int>> RowsByOwner(const Probe& probe) {
  std::map<std::string, std::map<std::string, int>> out;
  for (const std::string& table : probe.tables()) {
    const std::string key = table == "discards"     ? "row_id"
                            : table == "violations" ? "event_id"
                                                    : "id";
    for (const std::string& v : probe.column(table, key))
      out[table][OwnerOf(v)]++;
  }
  return out;
}

// No row of an erased person anywhere (ids, user columns, refused events' JSON); every row of
// p2 as before (`before`: RowsByOwner before the erase).
inline void ExpectErasedAndRestKept(
    const Probe& probe, const std::map<std::string, std::map<std::string, int>>& before) {
  auto after = RowsByOwner(probe);
  for (const auto& [table, owners] : before) {
    for (const auto& [owner, n] : owners) {
      const int now = after.count(table) && after[table].count(owner) ? after[table][owner] : 0;
      if (IsErased(owner)) {
        EXPECT_EQ(now, 0) << table << " still has rows of " << owner;
      } else {
        EXPECT_EQ(now, n) << table << ": rows of " << owner << " changed";
      }
    }
  }
  for (const std::string& table : probe.tables()) {
    for (const char* column : {"user_id", "anonymous_id", "previous_id"}) {
      if (!probe.has_column(table, column)) continue;
      for (const std::string& v : probe.column(table, column))
        EXPECT_TRUE(v != "u1" && v != "42" && v != "a3") << table << "." << column << " = " << v;
    }
    if (table == "discards") {
      for (const std::string& v : probe.column(table, "column_value")) {
        for (const char* tag : {"p1-", "p3-", "p4-"})
          EXPECT_EQ(v.find(std::string("\"messageId\":\"") + tag), std::string::npos) << v;
      }
    }
  }
}

// Sanity of the fixture itself: every table the erase must reach has rows of every person it
// names, so a deleter that misses a table fails the checks above.
inline void ExpectFixtureCoversEveryTable(
    const std::map<std::string, std::map<std::string, int>>& before) {
  for (const char* table : {"tracks", "order_completed", "identifies", "users", "pages", "screens",
                            "groups", "aliases", "discards", "violations"}) {
    ASSERT_TRUE(before.count(table)) << table;
  }
  EXPECT_GT(before.at("users").at("p1"), 0);
  EXPECT_GT(before.at("users").at("p4"), 0);
  EXPECT_GT(before.at("aliases").at("p1"), 0);
  for (const char* p : {"p1", "p2", "p3", "p4"}) {
    EXPECT_GT(before.at("tracks").at(p), 0) << p;
    EXPECT_GT(before.at("violations").at(p), 0) << p;
    EXPECT_GT(before.at("discards").at(p), 0) << p;
  }
}

}  // namespace sy::warehouse::erase_fixture
