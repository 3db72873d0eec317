// Golden tests of the webhook encoder: request URL, headers, signature and body bytes for a
// single and a batched configuration (testdata/*.golden), and its settings table.
#include "destinations/webhook/webhook.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace sy::destinations {
namespace {

std::string ReadGolden(const std::string& name) {
  std::ifstream in(std::string(SY_WEBHOOK_TESTDATA) + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Renders requests in a stable text form that the golden files hold.
std::string Render(const delivery::EncodedBatch& b) {
  std::string out;
  for (const auto& r : b.requests) {
    out += r.method + " " + r.url + "\n";
    for (const auto& [k, v] : r.headers)
      out += k + ": " + v + "\n";
    out += "events:";
    for (size_t i : r.events)
      out += " " + std::to_string(i);
    out += "\n" + r.body + "\n\n";
  }
  return out;
}

config::RawSetting Raw(std::string key, std::string v) {
  config::RawSetting r;
  r.key = std::move(key);
  r.scalar = std::move(v);
  return r;
}

std::unique_ptr<delivery::Destination> Make(std::vector<config::RawSetting> raw) {
  auto t = WebhookType();
  auto s = delivery::ParseSettings(t.settings, raw, "f.yaml", "settings", 1);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  auto d = t.create(*s);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return std::move(*d);
}

std::vector<delivery::StoredEvent> Events() {
  return {
      {Offset(0), "web", "m-1", TimestampMs(1),
       R"({"type":"track","event":"Signed Up","userId":"u1","messageId":"m-1"})"},
      {Offset(1), "web", "m-2", TimestampMs(2),
       R"({"type":"identify","userId":"u1","traits":{"plan":"pro"},"messageId":"m-2"})"},
      {Offset(2), "web", "m-3", TimestampMs(3),
       R"({"type":"page","name":"Home","anonymousId":"a1","messageId":"m-3"})"},
  };
}

TEST(Webhook, HmacMatchesRfc4231Vector) {
  EXPECT_EQ(HmacSha256Hex(std::string(20, '\x0b'), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(Webhook, SingleEventRequestsGolden) {
  config::RawSetting headers;
  headers.key = "headers";
  headers.kind = config::RawSetting::Kind::kMap;
  headers.map = {{"X-Team", "growth"}};
  auto d = Make({Raw("url", "http://127.0.0.1:9000/hook"), headers, Raw("secret", "s3cr3t")});
  EXPECT_EQ(d->limits().max_events_per_request, 1u);
  auto events = Events();
  EXPECT_EQ(Render(d->Encode(events)), ReadGolden("single.golden"));
  auto b = d->Encode(events);
  EXPECT_EQ(b.requests[0].headers.back().second,
            "sha256=" + HmacSha256Hex("s3cr3t", b.requests[0].body));
}

TEST(Webhook, BatchedJsonArrayGolden) {
  auto d = Make(
      {Raw("url", "https://hooks.example.com/in"), Raw("batch", "true"), Raw("max_events", "2")});
  EXPECT_EQ(d->limits().max_events_per_request, 2u);
  EXPECT_EQ(Render(d->Encode(Events())), ReadGolden("batched.golden"));
}

TEST(Webhook, SettingsAreValidated) {
  auto t = WebhookType();
  auto missing = delivery::ParseSettings(t.settings, {}, "f.yaml", "d.settings", 4);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("f.yaml:4: d.settings.url: required key is missing"),
            std::string::npos);
  auto unknown = delivery::ParseSettings(
      t.settings, {Raw("url", "http://x.example/a"), Raw("sekret", "x")}, "f.yaml", "d", 1);
  EXPECT_FALSE(unknown.ok());
  config::RawSetting bad;
  bad.key = "headers";
  bad.kind = config::RawSetting::Kind::kMap;
  bad.map = {{"X-Bad\r\nInjected", "1"}};
  auto s =
      delivery::ParseSettings(t.settings, {Raw("url", "http://x.example/a"), bad}, "f", "d", 1);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(t.create(*s).ok());
}

}  // namespace
}  // namespace sy::destinations
