#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "governance/tracking_plans.h"

namespace sy::governance {
namespace {

namespace json = boost::json;

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("sy_governance_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
    return (path_ / name).string();
  }
  std::string path() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

constexpr const char* kOrderSchema = R"({
  "type": "object",
  "properties": {
    "properties": {
      "type": "object",
      "required": ["order_id", "total"],
      "properties": {"total": {"type": "number", "minimum": 0}, "order_id": {"type": "string"}}
    }
  }
})";

// A config with plan `shop` over source `web`, its Order Completed schema in `dir`.
std::string PlanYaml(const std::string& extra = "", const std::string& schema = "order.json") {
  return "version: 1\ndata_dir: /tmp/x\nsources:\n  - {name: web, write_key: k1}\n"
         "  - {name: other, write_key: k2}\n"
         "tracking_plans:\n  - name: shop\n    sources: [web]\n    events:\n"
         "      Order Completed: {schema: " +
         schema + "}\n" + extra;
}

Result<std::shared_ptr<const TrackingPlans>> CompileIn(const TempDir& dir,
                                                       const std::string& yaml) {
  auto cfg = config::LoadConfigString(yaml, dir.path() + "/switchyard.yaml");
  if (!cfg.ok()) return cfg.status();
  return TrackingPlans::Compile(*cfg);
}

TEST(TrackingPlans, RefusesSchemasThatDoNotCompileNamingFileAndProblem) {
  TempDir dir;
  struct Case {
    std::string text;
    std::string problem;
  };
  const std::vector<Case> cases = {
      {"{not json", "not JSON"},
      {R"({"type": 5})", "not a valid JSON Schema"},
      {R"([1, 2])", "must be a JSON object"},
      {std::string(100, '[') + std::string(100, ']'), "nested deeper than 64"},
      {R"({"properties": {"sku": {"type": "string", "pattern": "^[A-Z]+$"}}})", "'pattern'"},
      {R"({"patternProperties": {"^x": {}}})", "'patternProperties'"},
      {R"({"properties": {"at": {"format": "date-time"}}})", "'format: date-time'"},
      {R"({"properties": {"tags": {"type": "array", "uniqueItems": true}}})", "'uniqueItems'"},
      {R"({"$ref": "#"})", "$ref '#' is not supported"},
      {R"({"$ref": "http://example.com/s.json"})", "is not supported"},
      {R"({"definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"items": {"$ref": "#/definitions/a"}}},
           "$ref": "#/definitions/a"})",
       "$ref cycle"},
  };
  for (const auto& c : cases) {
    dir.Write("order.json", c.text);
    auto plans = CompileIn(dir, PlanYaml());
    ASSERT_FALSE(plans.ok()) << c.text;
    const std::string& msg = plans.status().message();
    EXPECT_NE(msg.find("tracking_plans[0].events.Order Completed.schema"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find(dir.path() + "/order.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.problem), std::string::npos) << c.text << " → " << msg;
  }
  // A property *named* pattern is not the keyword; local refs into definitions are fine.
  dir.Write("order.json",
            R"({"definitions": {"money": {"type": "number"}},
                "properties": {"pattern": {"type": "string"}, "total": {"$ref": "#/definitions/money"}}})");
  EXPECT_TRUE(CompileIn(dir, PlanYaml()).ok());
}

TEST(TrackingPlans, RefusesHugeAndMissingSchemaFiles) {
  TempDir dir;
  // One byte over the cap, otherwise a valid schema.
  std::string huge = R"({"description": ")";
  huge += std::string(kMaxSchemaFileBytes + 1 - huge.size() - 2, 'x');
  huge += "\"}";
  ASSERT_EQ(huge.size(), kMaxSchemaFileBytes + 1);
  dir.Write("order.json", huge);
  auto plans = CompileIn(dir, PlanYaml());
  ASSERT_FALSE(plans.ok());
  EXPECT_NE(plans.status().message().find("the limit is 1048576"), std::string::npos)
      << plans.status().message();
  huge.resize(kMaxSchemaFileBytes - 2);
  huge += "\"}";
  dir.Write("order.json", huge);
  EXPECT_TRUE(CompileIn(dir, PlanYaml()).ok());

  auto missing = CompileIn(dir, PlanYaml("", "nowhere.json"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nowhere.json: cannot read"), std::string::npos)
      << missing.status().message();
}

TEST(TrackingPlans, ConfigChecksNamesSourcesAndActions) {
  TempDir dir;
  dir.Write("order.json", kOrderSchema);
  auto unknown = config::LoadConfigString(
      "version: 1\ndata_dir: /tmp/x\nsources: [{name: web, write_key: k}]\n"
      "tracking_plans:\n  - {name: a, sources: [nope], unplanned: maybe}\n"
      "  - {name: b, sources: [web]}\n  - {name: c, sources: [web], bogus: 1}\n",
      "f.yaml");
  ASSERT_FALSE(unknown.ok());
  const std::string& m = unknown.status().message();
  EXPECT_NE(m.find("unknown source 'nope'"), std::string::npos) << m;
  EXPECT_NE(m.find("unplanned: expected one of: allow, flag, block"), std::string::npos) << m;
  EXPECT_NE(m.find("already in another plan"), std::string::npos) << m;
  EXPECT_NE(m.find("tracking_plans[2].bogus: unknown key"), std::string::npos) << m;
}

std::shared_ptr<const TrackingPlans> MustCompile(const TempDir& dir, const std::string& extra) {
  dir.Write("order.json", kOrderSchema);
  dir.Write("identify.json",
            R"({"properties": {"traits": {"required": ["email"]}}, "required": ["userId"]})");
  auto plans = CompileIn(dir, PlanYaml(extra));
  EXPECT_TRUE(plans.ok()) << plans.status().ToString();
  return plans.ok() ? *plans : nullptr;
}

TEST(TrackingPlans, JudgesEventsAgainstTheirSchema) {
  TempDir dir;
  auto plans = MustCompile(dir, "    identify: {schema: identify.json}\n    violations: block\n");
  ASSERT_TRUE(plans);
  auto ok = plans->Judge(
      "web",
      R"({"type":"track","event":"Order Completed","properties":{"order_id":"o1","total":9.99}})");
  EXPECT_EQ(ok.action, config::PlanAction::kAllow);
  EXPECT_TRUE(ok.violations.empty());
  EXPECT_EQ(ok.plan, "shop");
  EXPECT_EQ(ok.event_label, "Order Completed");

  auto bad = plans->Judge(
      "web", R"({"type":"track","event":"Order Completed","properties":{"total":"lots"}})");
  EXPECT_EQ(bad.action, config::PlanAction::kBlock);
  ASSERT_EQ(bad.violations.size(), 2u) << ViolationsJson(bad.violations);
  std::set<std::pair<std::string, std::string>> got;
  for (const auto& v : bad.violations)
    got.insert({v.path, v.rule});
  EXPECT_TRUE(got.contains({"properties.order_id", "required"})) << ViolationsJson(bad.violations);
  EXPECT_TRUE(got.contains({"properties.total", "type"})) << ViolationsJson(bad.violations);

  auto identify = plans->Judge("web", R"({"type":"identify","anonymousId":"a","traits":{}})");
  EXPECT_EQ(identify.action, config::PlanAction::kBlock);
  EXPECT_EQ(identify.event_label, "identify");
  EXPECT_EQ(identify.violations.size(), 2u) << ViolationsJson(identify.violations);

  // A type without a schema, and a source without a plan, are not judged.
  EXPECT_TRUE(plans->Judge("web", R"({"type":"page","name":"x"})").violations.empty());
  auto other = plans->Judge("other", R"({"type":"track","event":"Whatever"})");
  EXPECT_TRUE(other.plan.empty());
  EXPECT_EQ(other.action, config::PlanAction::kAllow);
}

TEST(TrackingPlans, UnplannedEventsFollowTheUnplannedAction) {
  TempDir dir;
  const std::string ev = R"({"type":"track","event":"Mystery \"Event\"","properties":{}})";
  EXPECT_EQ(MustCompile(dir, "")->Judge("web", ev).action, config::PlanAction::kAllow);
  EXPECT_EQ(MustCompile(dir, "")->Judge("web", ev).event_label, "__unplanned__");
  auto flagged = MustCompile(dir, "    unplanned: flag\n")->Judge("web", ev);
  EXPECT_EQ(flagged.action, config::PlanAction::kFlag);
  ASSERT_EQ(flagged.violations.size(), 1u);
  EXPECT_EQ(flagged.violations[0].rule, "unplanned");
  EXPECT_EQ(flagged.violations[0].path, "event");
  EXPECT_NE(flagged.violations[0].message.find("Mystery \"Event\""), std::string::npos);
  auto blocked = MustCompile(dir, "    unplanned: block\n")->Judge("web", ev);
  EXPECT_EQ(blocked.action, config::PlanAction::kBlock);
  // A hostile event name is cut in the message; the label stays bounded.
  auto long_name =
      MustCompile(dir, "    unplanned: flag\n")
          ->Judge("web", R"({"type":"track","event":")" + std::string(10000, 'x') + R"("})");
  EXPECT_LT(long_name.violations[0].message.size(), 300u);
  EXPECT_EQ(long_name.event_label, "__unplanned__");
}

TEST(TrackingPlans, ViolationsPerEventAreCapped) {
  TempDir dir;
  std::string schema = R"({"properties": {"properties": {"properties": {)";
  std::string props;
  for (int i = 0; i < 100; ++i) {
    schema += (i ? "," : "") + std::string("\"p") + std::to_string(i) + "\":{\"type\":\"string\"}";
    props += (i ? "," : "") + std::string("\"p") + std::to_string(i) + "\":1";
  }
  schema += "}}}}";
  dir.Write("order.json", schema);
  auto plans = CompileIn(dir, PlanYaml());
  ASSERT_TRUE(plans.ok()) << plans.status().ToString();
  auto v = (*plans)->Judge(
      "web", R"({"type":"track","event":"Order Completed","properties":{)" + props + "}}");
  ASSERT_EQ(v.violations.size(), kMaxViolationsPerEvent);
  EXPECT_NE(v.violations.back().message.find("(and 80 more)"), std::string::npos)
      << v.violations.back().message;
}

TEST(WithContextViolations, AddsTheMemberKeepingEveryOtherByte) {
  const std::string vj = R"([{"path":"a","rule":"type","message":"m"}])";
  EXPECT_EQ(WithContextViolations(R"({"context":{"ip":"1.2.3.4"},"price":9.99})", vj),
            R"({"context":{"ip":"1.2.3.4","violations":)" + vj + R"(},"price":9.99})");
  EXPECT_EQ(WithContextViolations(R"({"context":{},"n":1e400})", vj),
            R"({"context":{"violations":)" + vj + R"(},"n":1e400})");
  EXPECT_EQ(WithContextViolations(R"({"n":1.50})", vj),
            R"({"n":1.50,"context":{"violations":)" + vj + "}}");
  EXPECT_EQ(WithContextViolations(R"({"context":"x"})", vj),
            R"({"context":"x","context":{"violations":)" + vj + "}}");
  // The result parses, and the violations are where a reader looks for them.
  auto doc = json::parse(WithContextViolations(R"({"context":{"a":[1,{"b":2}]}})", vj));
  EXPECT_EQ(doc.at("context").at("violations").at(0).at("rule"), "type");
}

}  // namespace
}  // namespace sy::governance
