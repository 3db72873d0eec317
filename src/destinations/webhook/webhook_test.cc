// Golden tests of the webhook encoder: request URL, headers, signature and body bytes for a
// single and a batched configuration (testdata/*.golden), and its settings table.
#include "destinations/webhook/webhook.h"

#include <gtest/gtest.h>

#include "delivery/testing.h"

namespace sy::destinations {
namespace {

using delivery::testing::Map;
using delivery::testing::Scalar;

std::string Golden(const std::string& name) {
  return std::string(SY_TESTDATA) + "/" + name;
}

std::unique_ptr<delivery::Destination> Make(std::vector<config::RawSetting> raw) {
  return delivery::testing::MustCreate(WebhookType(), raw);
}

std::vector<delivery::RoutedEvent> Events() {
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
  auto d = Make({Scalar("url", "http://127.0.0.1:9000/hook"),
                 Map("headers", {{"X-Team", "growth"}}), Scalar("secret", "s3cr3t")});
  EXPECT_EQ(d->limits().max_events_per_request, 1u);
  auto events = Events();
  delivery::testing::ExpectGolden(delivery::testing::RenderRequests(d->Encode(events)),
                                  Golden("single.golden"));
  auto b = d->Encode(events);
  EXPECT_EQ(b.requests[0].headers.back().second,
            "sha256=" + HmacSha256Hex("s3cr3t", b.requests[0].body));
}

TEST(Webhook, BatchedJsonArrayGolden) {
  auto d = Make({Scalar("url", "https://hooks.example.com/in"), Scalar("batch", "true"),
                 Scalar("max_events", "2")});
  EXPECT_EQ(d->limits().max_events_per_request, 2u);
  delivery::testing::ExpectGolden(delivery::testing::RenderRequests(d->Encode(Events())),
                                  Golden("batched.golden"));
}

TEST(Webhook, SettingsAreValidated) {
  auto t = WebhookType();
  auto missing = t.create({}, {"f.yaml", "d.settings", 4});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("f.yaml:4: d.settings.url: required key is missing"),
            std::string::npos);
  auto unknown =
      t.create({Scalar("url", "http://x.example/a"), Scalar("sekret", "x", 6)}, {"f.yaml", "d", 1});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("f.yaml:6: d.sekret: unknown key"), std::string::npos);
  auto range = t.create({Scalar("url", "http://x.example/a"), Scalar("max_events", "0", 7)},
                        {"f.yaml", "d", 1});
  ASSERT_FALSE(range.ok());
  EXPECT_NE(range.status().message().find("f.yaml:7: d.max_events: out of range [1, 10000]"),
            std::string::npos)
      << range.status().message();
  auto header =
      t.create({Scalar("url", "http://x.example/a"), Map("headers", {{"X-Bad\r\nInjected", "1"}})},
               {"f.yaml", "d", 3});
  ASSERT_FALSE(header.ok());
  EXPECT_NE(header.status().message().find("f.yaml:3: d: headers: invalid header"),
            std::string::npos);
}

}  // namespace
}  // namespace sy::destinations
