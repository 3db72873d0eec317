// The compiled checker against valijson: generated schemas × generated events (fixed seed), each
// checked by both, the violations (path, rule, message, in order) compared; plus the cases the
// checker leaves to valijson and the keywords it does not compile.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "event/raw_json.h"
#include "governance/tracking_plans.h"

namespace sy::governance {
namespace {

using Engine = EventSchema::Engine;

std::string Describe(const std::vector<Violation>& vs) {
  std::string s;
  for (const auto& v : vs)
    s += "  [" + v.path + "] " + v.rule + ": " + v.message + "\n";
  return s.empty() ? "  (valid)\n" : s;
}

// Generates draft-07 schemas from the keywords the checker compiles, and events that hit their
// edges (escaped keys and strings, non-ASCII text, integers at the int64 edge, -0, exponents,
// nested objects and arrays).
class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  std::string Schema() {
    defs_ = 0;
    std::string defs;
    const int n = Pick(3);  // 0..2 definitions; each may refer to earlier ones only
    std::string body;
    for (int i = 0; i < n; ++i) {
      if (i > 0) defs += ",";
      defs += "\"d" + std::to_string(i) + "\":" + Node(2);
      defs_ = i + 1;
    }
    body = Node(0, /*root=*/true);
    if (n == 0) return body;
    // Root is an object with at least one keyword; add definitions next to them.
    return body.substr(0, body.size() - 1) + (body.size() > 2 ? "," : "") + "\"definitions\":{" +
           defs + "}}";
  }

  std::string Event() {
    std::string e = R"({"type":"track","event":"E")";
    const int n = Pick(5);
    for (int i = 0; i < n; ++i)
      e += "," + Key() + ":" + Value(0);
    if (Pick(12) == 0) e += "," + Key() + ":" + Value(0);  // maybe a duplicate
    return e + "}";
  }

 private:
  int Pick(int n) { return static_cast<int>(rng_() % static_cast<uint32_t>(n)); }
  bool Chance(int percent) { return Pick(100) < percent; }

  // Names schemas use (decoded).
  std::string Name() {
    static const char* kNames[] = {"a", "b", "c", "properties", "x y", "\xc3\xa9", "event"};
    return kNames[Pick(7)];
  }
  static std::string Quote(const std::string& s) {
    std::string q = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') q += '\\';
      q += c;
    }
    return q + "\"";
  }
  // A member key as an event sends it: sometimes escaped.
  std::string Key() {
    const int k = Pick(9);
    if (k == 7) return R"("\u0061")";  // "a"
    if (k == 8) return R"("\u00e9")";  // "é"
    return Quote(Name());
  }
  std::string SchemaNumber() {
    static const char* kNumbers[] = {"0", "1", "2.5", "-1", "3", "100", "7", "-0.5"};
    return kNumbers[Pick(8)];
  }
  std::string SchemaScalar() {
    switch (Pick(6)) {
      case 0:
        return "null";
      case 1:
        return Chance(50) ? "true" : "false";
      case 2:
      case 3:
        return SchemaNumber();
      default: {
        static const char* kStrings[] = {
            "", "a", "b", "h\xc3\xa9llo", "abc", "a\"b", "\xe6\x97\xa5\xe6\x9c\xac"};
        return Quote(kStrings[Pick(7)]);
      }
    }
  }
  std::string TypeName() {
    static const char* kTypes[] = {"object", "array",   "string", "integer",
                                   "number", "boolean", "null"};
    return std::string("\"") + kTypes[Pick(7)] + "\"";
  }

  std::string Node(int depth, bool root = false) {
    if (!root && depth >= 3) return Chance(80) ? R"({"type":)" + TypeName() + "}" : "true";
    if (!root && Chance(4)) return Chance(50) ? "true" : "false";
    if (!root && defs_ > 0 && Chance(10))
      // Keywords beside a $ref are ignored (valijson follows the reference alone).
      return R"({"$ref":"#/definitions/d)" + std::to_string(Pick(defs_)) + "\"" +
             (Chance(30) ? R"(,"type":"null","required":["a"])" : "") + "}";
    std::vector<std::string> kw;
    if (root || Chance(60)) {
      if (Chance(80)) {
        kw.push_back("\"type\":" + (root ? std::string("\"object\"") : TypeName()));
      } else {
        kw.push_back("\"type\":[" + TypeName() + "," + TypeName() + "]");
      }
    }
    if (Chance(root ? 70 : 35)) {
      std::string p = "\"properties\":{";
      const int n = 1 + Pick(3);
      std::vector<std::string> used;
      for (int i = 0; i < n; ++i) {
        std::string name = Name();
        if (std::find(used.begin(), used.end(), name) != used.end()) continue;
        used.push_back(name);
        if (!p.ends_with("{")) p += ",";
        p += Quote(name) + ":" + Node(depth + 1);
      }
      kw.push_back(p + "}");
    }
    if (Chance(25)) {
      std::string r = "\"required\":[";
      const int n = 1 + Pick(3);
      for (int i = 0; i < n; ++i)
        r += (i ? "," : "") + Quote(Name());
      kw.push_back(r + "]");
    }
    if (Chance(15)) {
      kw.push_back(Chance(50) ? R"("additionalProperties":false)"
                              : "\"additionalProperties\":" + Node(depth + 1));
    }
    if (Chance(12)) {
      std::string e = "\"enum\":[";
      const int n = 1 + Pick(4);
      for (int i = 0; i < n; ++i)
        e += (i ? "," : "") + SchemaScalar();
      kw.push_back(e + "]");
    }
    if (Chance(6)) kw.push_back("\"const\":" + SchemaScalar());
    if (Chance(12)) kw.push_back("\"minimum\":" + SchemaNumber());
    if (Chance(12)) kw.push_back("\"maximum\":" + SchemaNumber());
    if (Chance(6)) kw.push_back("\"exclusiveMinimum\":" + SchemaNumber());
    if (Chance(6)) kw.push_back("\"exclusiveMaximum\":" + SchemaNumber());
    if (Chance(12)) kw.push_back("\"minLength\":" + std::to_string(Pick(4)));
    if (Chance(12)) kw.push_back("\"maxLength\":" + std::to_string(Pick(6)));
    if (Chance(8)) kw.push_back("\"minItems\":" + std::to_string(Pick(3)));
    if (Chance(8)) kw.push_back("\"maxItems\":" + std::to_string(Pick(4)));
    if (Chance(15)) kw.push_back("\"items\":" + Node(depth + 1));
    for (const char* combinator : {"allOf", "anyOf", "oneOf"}) {
      if (!Chance(7)) continue;
      std::string c = std::string("\"") + combinator + "\":[";
      const int n = 1 + Pick(3);
      for (int i = 0; i < n; ++i)
        c += (i ? "," : "") + Node(depth + 1);
      kw.push_back(c + "]");
    }
    if (Chance(5)) kw.push_back(R"("description":"annotation","x-vendor":{"minLength":100})");
    std::shuffle(kw.begin(), kw.end(), rng_);
    std::string s = "{";
    for (size_t i = 0; i < kw.size(); ++i)
      s += (i ? "," : "") + kw[i];
    return s + "}";
  }

  std::string Value(int depth) {
    const int k = Pick(depth >= 3 ? 6 : 9);
    switch (k) {
      case 0:
        return "null";
      case 1:
        return Chance(50) ? "true" : "false";
      case 2:
      case 3: {
        static const char* kNumbers[] = {"0",
                                         "-0",
                                         "1",
                                         "-1",
                                         "7",
                                         "2.5",
                                         "-3.25",
                                         "1e2",
                                         "1E-2",
                                         "100",
                                         "3",
                                         "1.0",
                                         "-0.0",
                                         "0.5",
                                         "9223372036854775807",
                                         "-9223372036854775808",
                                         "9223372036854775808",
                                         "18446744073709551616",
                                         "2.50"};
        return kNumbers[Pick(19)];
      }
      case 4:
      case 5: {
        static const char* kStrings[] = {
            R"("")",           R"("a")",        R"("b")",           "\"h\xc3\xa9llo\"",
            R"("h\u00e9llo")", R"("abc")",      R"("a\"b")",        "\"\xe6\x97\xa5\xe6\x9c\xac\"",
            R"("abcdefgh")",   R"("x\u0000y")", R"("\ud83d\ude00")"};
        return kStrings[Pick(11)];
      }
      case 6: {
        std::string a = "[";
        const int n = Pick(4);
        for (int i = 0; i < n; ++i)
          a += (i ? "," : "") + Value(depth + 1);
        return a + "]";
      }
      default: {
        std::string o = "{";
        const int n = Pick(4);
        for (int i = 0; i < n; ++i)
          o += (i ? "," : "") + Key() + ":" + Value(depth + 1);
        return o + "}";
      }
    }
  }

  std::mt19937 rng_;
  int defs_ = 0;
};

TEST(CompiledSchema, ReportsWhatValijsonReportsOnGeneratedSchemasAndEvents) {
  // COMPILED_SCHEMA_CASES scales it (the default run: 300 schemas x 12 events).
  const char* env = std::getenv("COMPILED_SCHEMA_CASES");
  const int schemas = env != nullptr ? std::atoi(env) : 300;
  Generator gen(20261203);
  int compared = 0, invalid = 0, undecided = 0, refused = 0;
  std::vector<event::RawMember> members;
  for (int s = 0; s < schemas; ++s) {
    const std::string schema_text = gen.Schema();
    std::unique_ptr<EventSchema> schema;
    if (std::string problem = EventSchema::FromText(schema_text, &schema); !problem.empty()) {
      ++refused;  // valijson refused it (the checker never sees those)
      continue;
    }
    ASSERT_EQ(schema->not_compiled(), "") << schema_text;
    for (int e = 0; e < 12; ++e) {
      const std::string event = gen.Event();
      ASSERT_TRUE(event::SplitObject(event, &members));
      const auto reference = schema->Check(event, members, Engine::kValijson);
      const auto compiled = schema->Check(event, members, Engine::kCompiled);
      const auto automatic = schema->Check(event, members, Engine::kAuto);
      ASSERT_TRUE(reference.has_value());
      ASSERT_TRUE(automatic.has_value());
      ASSERT_EQ(Describe(*automatic), Describe(*reference)) << schema_text << "\n" << event;
      if (!compiled) {
        ++undecided;
        continue;
      }
      ++compared;
      invalid += !reference->empty();
      ASSERT_EQ(Describe(*compiled), Describe(*reference)) << schema_text << "\n" << event;
    }
  }
  std::printf("compared %d (invalid %d), left to valijson %d, schemas refused %d\n", compared,
              invalid, undecided, refused);
  // The corpus must exercise both outcomes and mostly be decided by the checker.
  EXPECT_GT(compared, schemas * 12 * 8 / 10);
  EXPECT_GT(invalid, compared / 4);
  EXPECT_LT(invalid, compared * 9 / 10);
  EXPECT_GT(undecided, 0);
  EXPECT_LT(refused, schemas / 10);
}

TEST(CompiledSchema, LeavesToValijsonWhatItCannotMatchExactly) {
  std::unique_ptr<EventSchema> schema;
  ASSERT_EQ(EventSchema::FromText(R"({"properties":{"properties":{"properties":{
      "n":{"type":"number","maximum":5},"s":{"type":"string","maxLength":3}}}}})",
                                  &schema),
            "");
  ASSERT_EQ(schema->not_compiled(), "");
  std::vector<event::RawMember> members;
  auto compiled = [&](const std::string& event) {
    EXPECT_TRUE(event::SplitObject(event, &members));
    return schema->Check(event, members, Engine::kCompiled);
  };
  EXPECT_TRUE(compiled(R"({"properties":{"n":1,"s":"abc"}})").has_value());
  // A duplicate checked key, an integer above int64, U+0000 in a checked string.
  EXPECT_FALSE(compiled(R"({"properties":{"n":1,"n":9}})").has_value());
  EXPECT_FALSE(compiled(R"({"properties":{"n":9223372036854775808}})").has_value());
  EXPECT_FALSE(compiled(R"({"properties":{"s":"a\u0000"}})").has_value());
  // Unchecked members may hold any of them.
  EXPECT_TRUE(
      compiled(R"({"properties":{"x":1,"x":"a\u0000","y":9223372036854775808}})").has_value());
  // What the automatic engine answers for those is valijson's.
  const std::string dup = R"({"properties":{"n":9,"n":1}})";
  ASSERT_TRUE(event::SplitObject(dup, &members));
  EXPECT_EQ(Describe(*schema->Check(dup, members)),
            Describe(*schema->Check(dup, members, Engine::kValijson)));
}

TEST(CompiledSchema, NamesTheKeywordThatKeepsASchemaOnValijson) {
  struct Case {
    const char* schema;
    const char* keyword;
  };
  const Case cases[] = {
      {R"({"properties":{"a":{"multipleOf":2}}})", "multipleOf"},
      {R"({"not":{"type":"string"}})", "not"},
      {R"({"if":{"type":"string"},"then":{"maxLength":2}})", "if"},
      {R"({"minProperties":1})", "minProperties"},
      {R"({"items":[{"type":"string"}]})", "items as an array of schemas"},
      {R"({"enum":[{"a":1}]})", "enum of objects, arrays or large integers"},
      {R"({"dependencies":{"a":["b"]}})", "dependencies"},
      {R"({"propertyNames":{"maxLength":3}})", "propertyNames"},
  };
  for (const auto& c : cases) {
    std::unique_ptr<EventSchema> schema;
    ASSERT_EQ(EventSchema::FromText(c.schema, &schema), "") << c.schema;
    EXPECT_EQ(schema->not_compiled(), c.keyword) << c.schema;
    // Still checked, by valijson.
    std::vector<event::RawMember> members;
    const std::string event = R"({"a":3})";
    ASSERT_TRUE(event::SplitObject(event, &members));
    EXPECT_FALSE(schema->Check(event, members, Engine::kCompiled).has_value());
    EXPECT_TRUE(schema->Check(event, members).has_value());
  }
}

TEST(CompiledSchema, CountsLengthsInCodePointsAndComparesDecodedStrings) {
  std::unique_ptr<EventSchema> schema;
  ASSERT_EQ(
      EventSchema::FromText(
          R"({"properties":{"s":{"maxLength":5,"minLength":5},"e":{"enum":["héllo"]}}})", &schema),
      "");
  std::vector<event::RawMember> members;
  auto check = [&](const std::string& event) {
    EXPECT_TRUE(event::SplitObject(event, &members));
    auto v = schema->Check(event, members, Engine::kCompiled);
    EXPECT_TRUE(v.has_value());
    return v ? Describe(*v) : std::string();
  };
  EXPECT_EQ(check(R"({"s":"héllo","e":"h\u00e9llo"})"), "  (valid)\n");
  EXPECT_EQ(check(R"({"s":"h\u00e9llo!","e":"hello"})"),
            "  [e] enum: Failed to match against any enum values.\n"
            "  [s] maxLength: String should be no more than 5 characters in length.\n");
}

// A chain of definitions deeper than the program may nest is left to valijson (which checks it).
TEST(CompiledSchema, AProgramNestedTooDeepThroughRefsIsLeftToValijson) {
  auto chain = [](int n) {
    std::string defs;
    for (int i = 0; i < n; ++i) {
      if (i > 0) defs += ",";
      defs += "\"d" + std::to_string(i) + "\":";
      defs += i + 1 < n ? R"({"properties":{"a":{"$ref":"#/definitions/d)" + std::to_string(i + 1) +
                              "\"}}}"
                        : R"({"type":"integer"})";
    }
    return R"({"properties":{"a":{"$ref":"#/definitions/d0"}},"definitions":{)" + defs + "}}";
  };
  std::unique_ptr<EventSchema> shallow, deep;
  ASSERT_EQ(EventSchema::FromText(chain(60), &shallow), "");
  EXPECT_EQ(shallow->not_compiled(), "");
  ASSERT_EQ(EventSchema::FromText(chain(70), &deep), "");
  EXPECT_EQ(deep->not_compiled(), "nesting deeper than 128");
  // N levels of "a", then a string where an integer belongs (deeper than Boost.JSON's default
  // limit of 32, which once made valijson's side judge such an event valid unseen).
  auto nested = [](int n) {
    std::string e = "{";
    for (int i = 0; i < n; ++i)
      e += R"("a":{)";
    e.resize(e.size() - 1);
    e += R"("x")";
    for (int i = 0; i < n; ++i)
      e += "}";
    return e;
  };
  std::vector<event::RawMember> members;
  const std::string shallow_event = nested(60);
  ASSERT_TRUE(event::SplitObject(shallow_event, &members));
  const auto compiled = shallow->Check(shallow_event, members, Engine::kCompiled);
  ASSERT_TRUE(compiled.has_value());
  ASSERT_EQ(compiled->size(), 1u);
  EXPECT_EQ(Describe(*compiled),
            Describe(*shallow->Check(shallow_event, members, Engine::kValijson)));
  const std::string event = nested(70);
  ASSERT_TRUE(event::SplitObject(event, &members));
  const auto v = deep->Check(event, members);
  ASSERT_TRUE(v.has_value());
  ASSERT_EQ(v->size(), 1u) << Describe(*v);
  EXPECT_EQ((*v)[0].rule, "type");
  EXPECT_EQ((*v)[0].path.size(), 70u * 2 - 1);  // "a.a.…a"
}

// valijson reports nothing at all for a `false` root; the judgement still names a violation.
TEST(CompiledSchema, AFalseSchemaRefusesEveryEventWithOneViolation) {
  std::unique_ptr<EventSchema> schema;
  ASSERT_EQ(EventSchema::FromText("false", &schema), "");
  std::vector<event::RawMember> members;
  const std::string event = R"({"a":1})";
  ASSERT_TRUE(event::SplitObject(event, &members));
  for (auto engine : {Engine::kCompiled, Engine::kValijson}) {
    const auto v = schema->Check(event, members, engine);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(Describe(*v), "  [] schema: the schema allows no value here\n");
  }
}

}  // namespace
}  // namespace sy::governance
