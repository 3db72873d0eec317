// Tests of the mapped HTTP destination (type `http`): vendors configured purely as mappings
// (Amplitude, Mixpanel, PostHog) reproduce their folder destinations' golden requests (issue 15);
// config-time checks name the key; templates, functions, auth, batching limits and every error
// class.
#include "destinations/http_mapped/http_mapped.h"

#include <gtest/gtest.h>
#include <openssl/hmac.h>

#include <boost/json.hpp>

#include "base/base64.h"
#include "config/config.h"
#include "delivery/testing.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;
using K = delivery::Outcome::Kind;

// The `settings:` block `yaml` (a YAML mapping, unindented) as config reads it, with the line
// numbers of a file whose settings start at line 12.
std::vector<config::RawSetting> Settings(const std::string& yaml) {
  std::string doc =
      "version: 1\ndata_dir: d\nsources: [{name: web, write_key: k}]\n\n\n\n\n"
      "destinations:\n  - name: h\n    type: http\n    settings:\n";
  size_t start = 0;
  while (start < yaml.size()) {
    size_t end = yaml.find('\n', start);
    if (end == std::string::npos) end = yaml.size();
    doc += "      " + yaml.substr(start, end - start) + "\n";
    start = end + 1;
  }
  auto parsed = config::ParseConfigString(doc, "f.yaml");
  EXPECT_EQ(parsed.errors, "") << doc;
  if (parsed.config.destinations.empty()) return {};
  return parsed.config.destinations[0].settings;
}

Result<std::unique_ptr<delivery::Destination>> Create(const std::string& yaml) {
  return HttpMappedType().create(Settings(yaml), {"f.yaml", "destinations[0].settings", 9});
}

std::unique_ptr<delivery::Destination> Make(const std::string& yaml) {
  auto made = Create(yaml);
  EXPECT_TRUE(made.ok()) << made.status().ToString();
  return made.ok() ? std::move(*made) : nullptr;
}

std::string ErrorOf(const std::string& yaml) {
  auto made = Create(yaml);
  EXPECT_FALSE(made.ok()) << yaml;
  return made.ok() ? "" : made.status().message();
}

delivery::RoutedEvent Ev(uint64_t offset, std::string payload,
                         int64_t received_at = 1'700'000'000'000) {
  return {Offset(offset), "web", "mid-" + std::to_string(offset), TimestampMs(received_at),
          std::move(payload)};
}

// A golden file's requests, without its unmappable and skipped lines (their reasons name the
// vendor).
std::string RequestsOf(const std::string& golden) {
  std::string out;
  size_t start = 0;
  while (start < golden.size()) {
    size_t end = golden.find('\n', start);
    if (end == std::string::npos) end = golden.size() - 1;
    std::string_view line(golden.data() + start, end - start);
    if (!line.starts_with("unmappable: ") && !line.starts_with("skipped: "))
      out.append(golden, start, end - start + 1);
    start = end + 1;
  }
  return out;
}

std::string Vendor(const std::string& name) {
  return delivery::testing::ReadFile(std::string(SY_TESTDATA) + "/" + name + ".yaml");
}

TEST(HttpMapped, AmplitudeAsAMappingMatchesTheAmplitudeGolden) {
  // The events of amplitude_test's HttpV2PayloadGolden.
  std::vector<delivery::RoutedEvent> events = {
      {Offset(0), "web", "mid-0", TimestampMs(1),
       R"({"type":"track","event":"Song Played","userId":"u1","anonymousId":"a1",)"
       R"("timestamp":"2024-01-02T03:04:05.678Z","properties":{"genre":"jazz"},)"
       R"("context":{"ip":"1.2.3.4","locale":"en-US","os":{"name":"iOS"},"device":{"model":"iPhone9,1"},)"
       R"("app":{"version":"2.1"}}})"},
      {Offset(1), "web", "mid-1", TimestampMs(1'700'000'000'000),
       R"({"type":"identify","userId":"u1","traits":{"plan":"pro"}})"},
      {Offset(2), "web", "mid-2", TimestampMs(1), R"({"type":"group","groupId":"g"})"},
  };
  auto d = Make(Vendor("amplitude"));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->limits().max_events_per_request, 2000u);
  auto b = d->Encode(events);
  std::string golden = delivery::testing::ReadFile(std::string(SY_DESTINATIONS_DIR) +
                                                   "/amplitude/testdata/httpapi.golden");
  ASSERT_FALSE(golden.empty());
  EXPECT_EQ(RequestsOf(delivery::testing::RenderRequests(b)), RequestsOf(golden));
  // group has no mapping: skipped (counted as filtered), as amplitude leaves it out.
  EXPECT_TRUE(b.unmappable.empty());
  ASSERT_EQ(b.skipped.size(), 1u);
  EXPECT_EQ(b.skipped[0].first, 2u);
  EXPECT_EQ(b.skipped[0].second, "http: no mapping for type 'group'");
}

TEST(HttpMapped, MixpanelAsAMappingMatchesTheMixpanelGolden) {
  // The events of mixpanel_test's TrackPageAndIdentifyGolden.
  std::vector<delivery::RoutedEvent> events = {
      Ev(0,
         R"({"type":"track","event":"Order Completed","userId":"u1","anonymousId":"a1",)"
         R"("timestamp":"2024-01-02T03:04:05.678Z","properties":{"revenue":9.5},)"
         R"("context":{"ip":"1.2.3.4","page":{"url":"https://x.example/p","referrer":"https://r.example"},)"
         R"("os":{"name":"iOS"}}})"),
      Ev(1, R"({"type":"identify","userId":"u1","traits":{"email":"a@example.com"}})"),
      Ev(2,
         R"({"type":"page","name":"Pricing","anonymousId":"a2","timestamp":"2024-01-02T03:04:05Z"})"),
      Ev(3, R"({"type":"alias","userId":"u1","previousId":"a1"})"),
  };
  auto d = Make(Vendor("mixpanel"));
  ASSERT_TRUE(d);
  auto b = d->Encode(events);
  std::string golden = delivery::testing::ReadFile(std::string(SY_DESTINATIONS_DIR) +
                                                   "/mixpanel/testdata/import_and_engage.golden");
  ASSERT_FALSE(golden.empty());
  EXPECT_EQ(RequestsOf(delivery::testing::RenderRequests(b)), RequestsOf(golden));
  ASSERT_EQ(b.skipped.size(), 1u);
  EXPECT_EQ(b.skipped[0].first, 3u);
}

TEST(HttpMapped, PosthogAsAMappingMatchesThePosthogGoldens) {
  // The calls of posthog_test's OneGoldenPerCall that the mapping covers.
  const std::string context =
      R"("context":{"ip":"1.2.3.4","page":{"url":"https://x.example/pricing"}},)"
      R"("timestamp":"2024-01-02T03:04:05.678Z")";
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"track", R"({"type":"track","event":"Order Completed","userId":"u1","anonymousId":"a1",)"
                R"("properties":{"revenue":9.5},)" +
                    context + "}"},
      {"page", R"({"type":"page","name":"Pricing","anonymousId":"a2",)" + context + "}"},
      {"screen", R"({"type":"screen","name":"Home","userId":"u1","properties":{"tab":1}})"},
      {"identify", R"({"type":"identify","userId":"u1","anonymousId":"a1",)"
                   R"("traits":{"email":"a@example.com","plan":"pro"}})"},
  };
  auto d = Make(Vendor("posthog"));
  ASSERT_TRUE(d);
  for (const auto& [name, payload] : calls) {
    auto b = d->Encode(std::vector<delivery::RoutedEvent>{
        delivery::testing::Event(0, payload, "0b4c5e7a-0d3e-4d7b-9c55-1a2b3c4d5e6f")});
    std::string golden = delivery::testing::ReadFile(std::string(SY_DESTINATIONS_DIR) +
                                                     "/posthog/testdata/" + name + ".golden");
    ASSERT_FALSE(golden.empty()) << name;
    EXPECT_EQ(RequestsOf(delivery::testing::RenderRequests(b)), RequestsOf(golden)) << name;
  }
}

TEST(HttpMapped, ErrorsNameTheKeyAtConfigTime) {
  std::string base = "url: https://api.example.com/v1\nmappings:\n  track:\n    body:\n";
  EXPECT_NE(ErrorOf(base + "      email: '{{ sha265(context.traits.email) }}'\n")
                .find("f.yaml:16: destinations[0].settings.mappings.track.body.email: unknown "
                      "function 'sha265'"),
            std::string::npos)
      << ErrorOf(base + "      email: '{{ sha265(context.traits.email) }}'\n");
  EXPECT_NE(ErrorOf(base + "      total: '{{ propertes.total }}'\n")
                .find("mappings.track.body.total: unknown field 'propertes'"),
            std::string::npos);
  EXPECT_NE(ErrorOf(base + "      a: 1\n      items:\n        - 1\n        - '{{ trim() }}'\n")
                .find("f.yaml:19: destinations[0].settings.mappings.track.body.items[1]: trim"),
            std::string::npos);
  EXPECT_NE(ErrorOf(base + "      items: [1, '{{ trim() }}']\n")
                .find("mappings.track.body.items[1]: trim takes 1 argument, not 0"),
            std::string::npos);
  EXPECT_NE(ErrorOf(base + "      a: '{{ $secret }}'\n").find("unknown name '$secret'"),
            std::string::npos);
  EXPECT_NE(ErrorOf(base + "      a: '{{ event'\n").find("'{{' without '}}'"), std::string::npos);
  EXPECT_NE(ErrorOf(base + "      a: '{{ default(event, ) }}'\n").find("unexpected ')'"),
            std::string::npos);
  EXPECT_NE(ErrorOf(base + "      '...': [1]\n").find("body....: a spread"), std::string::npos);
  EXPECT_NE(ErrorOf(base + "      a: '{{ events }}'\n").find("only in batch_envelope"),
            std::string::npos);
  EXPECT_NE(ErrorOf("url: https://api.example.com\nmappings: {trak: {body: {a: 1}}}\n")
                .find("mappings.trak: unknown event type"),
            std::string::npos);
  EXPECT_NE(ErrorOf("url: https://api.example.com\nmappings: {track: {bdy: {a: 1}}}\n")
                .find("mappings.track.bdy: unknown key"),
            std::string::npos);
  EXPECT_NE(ErrorOf("url: https://api.example.com\nmappings: {track: {url: x}}\n")
                .find("mappings.track.body: required key is missing"),
            std::string::npos);
  EXPECT_NE(ErrorOf("url: 'https://{{ userId }}.example.com/x'\nmappings: {track: {body: {}}}\n")
                .find("f.yaml:12: destinations[0].settings.url: templates are allowed in the path"),
            std::string::npos);
  EXPECT_NE(ErrorOf("url: https://a.example\nheaders: {X-User: '{{ userId }}'}\n"
                    "mappings: {track: {body: {}}}\n")
                .find("headers.X-User: may use only $api_key"),
            std::string::npos);
  EXPECT_NE(ErrorOf("url: https://a.example\nbatch: true\nbatch_envelope: {batch: []}\n"
                    "mappings: {track: {body: {}}}\n")
                .find("batch_envelope: must hold '{{ events }}' exactly once"),
            std::string::npos);
  EXPECT_NE(ErrorOf("url: https://a.example\nbatch_envelope: {batch: '{{ events }}'}\n"
                    "mappings: {track: {body: {}}}\n")
                .find("batch_envelope: only used with batch: true"),
            std::string::npos);
  EXPECT_NE(ErrorOf("url: https://a.example\nauth: bearer\nmappings: {track: {body: {}}}\n")
                .find("token: required with auth: bearer"),
            std::string::npos);
  EXPECT_NE(
      ErrorOf("url: https://a.example\nretry_statuses: ['200']\nmappings: {track: {body: {}}}\n")
          .find("retry_statuses: '200' is not an HTTP status"),
      std::string::npos);
  // A nested value where the table wants a mapping of scalars is named too.
  EXPECT_NE(ErrorOf("url: https://a.example\nheaders: {A: {b: c}}\nmappings: {track: {body: {}}}\n")
                .find("settings.headers: expected a mapping of scalars"),
            std::string::npos);
  // Every problem at once.
  std::string many = ErrorOf(base + "      a: '{{ nope() }}'\n      b: '{{ nope2 }}'\n");
  EXPECT_NE(many.find("body.a: unknown function"), std::string::npos) << many;
  EXPECT_NE(many.find("body.b: unknown field"), std::string::npos) << many;
}

TEST(HttpMapped, FunctionsPathsAndLiterals) {
  auto d = Make(
      "url: https://api.example.com/users/{{ userId }}/events?src={{ $source }}\n"
      "mappings:\n"
      "  track:\n"
      "    body:\n"
      "      email: '{{ sha256(lowercase(trim(context.traits.email))) }}'\n"
      "      phone: '{{ sha256(digits(context.traits.phone)) }}'\n"
      "      md5: '{{ md5(userId) }}'\n"
      "      upper: '{{ uppercase(event) }}'\n"
      "      seconds: '{{ to_unix_seconds(timestamp) }}'\n"
      "      millis: '{{ to_unix_millis(timestamp) }}'\n"
      "      iso: '{{ to_iso8601(timestamp) }}'\n"
      "      received: '{{ to_iso8601($received_at) }}'\n"
      "      currency: \"{{ default(properties.currency, 'USD') }}\"\n"
      "      total: '{{ properties.total }}'\n"
      "      first_sku: '{{ properties.products.0.sku }}'\n"
      "      label: 'order {{ properties.order_id }} of {{ properties.total }}'\n"
      "      missing: '{{ properties.nope }}'\n"
      "      half: 'x {{ properties.nope }}'\n"
      "      literal_number: 7\n"
      "      literal_text: plain\n"
      "      quoted_number: '7'\n"
      "      nested: {list: ['{{ event }}', '{{ properties.nope }}', 2], on: true}\n"
      "      id: '{{ $message_id }}'\n");
  ASSERT_TRUE(d);
  auto b = d->Encode(std::vector<delivery::RoutedEvent>{
      Ev(0,
         R"({"type":"track","event":"Order Completed","userId":"u 1/é",)"
         R"("timestamp":"2024-01-02T03:04:05.678+01:00",)"
         R"("properties":{"total":12.5,"order_id":42,"products":[{"sku":"A-1"}]},)"
         R"("context":{"traits":{"email":"  Ann@Example.COM ","phone":"+1 (555) 010-9999"}}})",
         1'700'000'000'123)});
  ASSERT_EQ(b.requests.size(), 1u);
  EXPECT_EQ(b.requests[0].method, "POST");
  EXPECT_EQ(b.requests[0].url, "https://api.example.com/users/u%201%2F%C3%A9/events?src=web");
  json::object body = json::parse(b.requests[0].body).as_object();
  // sha256("ann@example.com"), sha256("15550109999"), md5("u 1/é") as OpenSSL computes them.
  auto hex = [](const EVP_MD* md, std::string_view s) {
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(s.data(), s.size(), buf, &len, md, nullptr);
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
      out.push_back("0123456789abcdef"[buf[i] >> 4]);
      out.push_back("0123456789abcdef"[buf[i] & 15]);
    }
    return out;
  };
  EXPECT_EQ(body["email"], json::value(hex(EVP_sha256(), "ann@example.com").c_str()));
  EXPECT_EQ(body["phone"], json::value(hex(EVP_sha256(), "15550109999").c_str()));
  EXPECT_EQ(body["md5"], json::value(hex(EVP_md5(), "u 1/é").c_str()));
  body.erase("email");
  body.erase("phone");
  body.erase("md5");
  EXPECT_EQ(json::value(body), json::parse(R"({"upper":"ORDER COMPLETED",
    "seconds":1704161045,"millis":1704161045678,"iso":"2024-01-02T02:04:05.678Z",
    "received":"2023-11-14T22:13:20.123Z","currency":"USD","total":12.5,"first_sku":"A-1",
    "label":"order 42 of 12.5","literal_number":7,"literal_text":"plain","quoted_number":"7",
    "nested":{"list":["Order Completed",2],"on":true},"id":"mid-0"})"));
}

TEST(HttpMapped, AnEventWithoutTheUrlsValuesIsUnmappableAndAnUnmappedTypeSkipped) {
  auto d = Make(
      "url: https://api.example.com/users/{{ userId }}\n"
      "method: PUT\n"
      "mappings: {identify: {body: {traits: '{{ traits }}'}}}\n");
  ASSERT_TRUE(d);
  auto b = d->Encode(std::vector<delivery::RoutedEvent>{
      Ev(0, R"({"type":"identify","anonymousId":"a"})"), Ev(1, R"({"type":"track"})"),
      Ev(2, R"(not json)"), Ev(3, R"({"type":"identify","userId":"u2","traits":{"a":1}})")});
  ASSERT_EQ(b.unmappable.size(), 2u);
  EXPECT_EQ(b.unmappable[0], (std::pair<size_t, std::string>{
                                 0, "http: the url reads a value this event does not have"}));
  EXPECT_EQ(b.unmappable[1], (std::pair<size_t, std::string>{2, "http: not a JSON object"}));
  ASSERT_EQ(b.skipped.size(), 1u);  // track has no mapping
  EXPECT_EQ(b.skipped[0].first, 1u);
  ASSERT_EQ(b.requests.size(), 1u);
  EXPECT_EQ(b.requests[0].method, "PUT");
  EXPECT_EQ(b.requests[0].url, "https://api.example.com/users/u2");
  EXPECT_EQ(b.requests[0].body, R"({"traits":{"a":1}})");
  EXPECT_EQ(b.requests[0].events, (std::vector<size_t>{3}));
}

TEST(HttpMapped, AuthHeadersAndSecrets) {
  std::string mappings = "mappings: {track: {body: {e: '{{ event }}'}}}\n";
  auto ev = std::vector<delivery::RoutedEvent>{Ev(0, R"({"type":"track","event":"E"})")};
  auto header = [](const delivery::HttpRequest& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
      if (k == name) return v;
    return std::string("<none>");
  };
  auto basic = Make("url: https://a.example/x\nauth: basic\nusername: u\npassword: p\n" + mappings);
  ASSERT_TRUE(basic);
  auto r = basic->Encode(ev).requests.at(0);
  EXPECT_EQ(header(r, "Authorization"), "Basic dTpw");
  EXPECT_EQ(header(r, "Content-Type"), "application/json");

  auto bearer = Make(
      "url: https://a.example/x\nauth: bearer\ntoken: t0k\n"
      "headers: {X-Api-Key: 'key {{ $api_key }}', Content-Type: text/plain}\n"
      "api_key: s3cret\n" +
      mappings);
  ASSERT_TRUE(bearer);
  r = bearer->Encode(ev).requests.at(0);
  EXPECT_EQ(header(r, "Authorization"), "Bearer t0k");
  EXPECT_EQ(header(r, "X-Api-Key"), "key s3cret");
  EXPECT_EQ(header(r, "Content-Type"), "text/plain");
  EXPECT_EQ(r.headers.size(), 3u);

  for (std::string encoding : {"hex", "base64"}) {
    auto hmac = Make(
        "url: https://a.example/x\nauth: hmac\nhmac_secret: k\nhmac_header: X-Sig\n"
        "hmac_prefix: sha256=\nhmac_encoding: " +
        encoding + "\n" + mappings);
    ASSERT_TRUE(hmac);
    r = hmac->Encode(ev).requests.at(0);
    EXPECT_EQ(r.body, R"({"e":"E"})");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    HMAC(EVP_sha256(), "k", 1, reinterpret_cast<const unsigned char*>(r.body.data()), r.body.size(),
         md, &len);
    std::string raw(reinterpret_cast<const char*>(md), len), want;
    if (encoding == "hex") {
      for (unsigned char c : raw) {
        want.push_back("0123456789abcdef"[c >> 4]);
        want.push_back("0123456789abcdef"[c & 15]);
      }
    } else {
      want = Base64Encode(raw);
    }
    EXPECT_EQ(header(r, "X-Sig"), "sha256=" + want) << encoding;
  }
  // Secrets are secret rows of the table (never shown by the admin API or the docs).
  for (const auto& s : HttpMappedType().settings) {
    bool secret =
        s.name == "api_key" || s.name == "password" || s.name == "token" || s.name == "hmac_secret";
    EXPECT_EQ(s.type == delivery::SettingType::kSecret, secret) << s.name;
  }
}

TEST(HttpMapped, BatchingHonoursEventAndByteLimitsAndGroupsByUrl) {
  auto d = Make(
      "url: https://a.example/t/{{ properties.team }}\n"
      "batch: true\nmax_events: 3\nmax_bytes: 1024\n"
      "batch_envelope: {api_key: '{{ $api_key }}', batch: '{{ events }}'}\n"
      "api_key: K\n"
      "mappings: {track: {body: {p: '{{ properties.pad }}'}}}\n");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->limits().max_events_per_request, 3u);
  EXPECT_EQ(d->limits().max_bytes_per_request, 1024u);
  auto ev = [](uint64_t i, const char* team, size_t pad) {
    return Ev(i, std::string(R"({"type":"track","properties":{"team":")") + team + R"(","pad":")" +
                     std::string(pad, 'x') + R"("}})");
  };
  // a: 5 events of 10 bytes → 3 + 2 by count; b: 3 events of 400 bytes → 2 + 1 by bytes. A
  // group becomes a request when the next event would overflow it, the rest at the end.
  std::vector<delivery::RoutedEvent> events = {ev(0, "a", 10),  ev(1, "b", 400), ev(2, "a", 10),
                                               ev(3, "b", 400), ev(4, "a", 10),  ev(5, "b", 400),
                                               ev(6, "a", 10),  ev(7, "a", 10)};
  auto b = d->Encode(events);
  EXPECT_TRUE(b.unmappable.empty());
  std::vector<std::pair<std::string, std::vector<size_t>>> got;
  for (const auto& r : b.requests) {
    got.emplace_back(r.url, r.events);
    EXPECT_LE(r.body.size(), 1024u);
    auto body = json::parse(r.body).as_object();
    EXPECT_EQ(body["api_key"], "K");
    EXPECT_EQ(body["batch"].as_array().size(), r.events.size());
  }
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::vector<size_t>>>{
                     {"https://a.example/t/b", {1, 3}},     // full at event 5
                     {"https://a.example/t/a", {0, 2, 4}},  // full at event 6
                     {"https://a.example/t/a", {6, 7}},
                     {"https://a.example/t/b", {5}}}));
  // One event larger than max_bytes still goes, alone.
  auto big = d->Encode(std::vector<delivery::RoutedEvent>{ev(0, "a", 2000), ev(1, "a", 5)});
  ASSERT_EQ(big.requests.size(), 2u);
  EXPECT_EQ(big.requests[0].events, (std::vector<size_t>{0}));

  // Without batching: one request per event, the body the mapping's object.
  auto single = Make("url: https://a.example/x\nmappings: {track: {body: {e: '{{ event }}'}}}\n");
  ASSERT_TRUE(single);
  EXPECT_EQ(single->limits().max_events_per_request, 1u);
  auto s = single->Encode(std::vector<delivery::RoutedEvent>{
      Ev(0, R"({"type":"track","event":"A"})"), Ev(1, R"({"type":"track","event":"B"})")});
  ASSERT_EQ(s.requests.size(), 2u);
  EXPECT_EQ(s.requests[1].body, R"({"e":"B"})");
  // Batching without an envelope: a bare JSON array.
  auto bare = Make(
      "url: https://a.example/x\nbatch: true\n"
      "mappings: {track: {body: {e: '{{ event }}'}}}\n");
  ASSERT_TRUE(bare);
  auto a = bare->Encode(std::vector<delivery::RoutedEvent>{
      Ev(0, R"({"type":"track","event":"A"})"), Ev(1, R"({"type":"track","event":"B"})")});
  ASSERT_EQ(a.requests.size(), 1u);
  EXPECT_EQ(a.requests[0].body, R"([{"e":"A"},{"e":"B"}])");
}

TEST(HttpMapped, ClassifiesEveryErrorClass) {
  auto d = Make(
      "url: https://a.example/x\nretry_statuses: ['409']\nreject_statuses: ['503']\n"
      "mappings: {track: {body: {}}}\n");
  ASSERT_TRUE(d);
  delivery::HttpRequest req;
  req.events = {0, 1};
  auto classify = [&](int status, std::string body = "", delivery::HeaderList headers = {}) {
    delivery::HttpResponse res;
    res.status = status;
    res.body = std::move(body);
    res.headers = std::move(headers);
    res.error = status ? "" : "Connection refused";
    auto out = d->Classify(req, res);
    EXPECT_EQ(out.size(), 2u);
    return out.at(1);
  };
  EXPECT_EQ(classify(200).kind, K::kDelivered);
  EXPECT_EQ(classify(204).kind, K::kDelivered);
  auto auth = classify(401, R"({"error":"invalid api key"})");
  EXPECT_EQ(auth.kind, K::kRetry);
  EXPECT_TRUE(auth.auth_failure);
  EXPECT_EQ(auth.reason, R"(http 401: {"error":"invalid api key"})");
  EXPECT_TRUE(classify(403).auth_failure);
  auto limited = classify(429, "slow down", {{"Retry-After", "7"}});
  EXPECT_EQ(limited.kind, K::kRetry);
  EXPECT_FALSE(limited.auth_failure);
  EXPECT_EQ(limited.retry_after_ms, 7000);
  EXPECT_EQ(classify(500).kind, K::kRetry);
  EXPECT_EQ(classify(408).kind, K::kRetry);
  EXPECT_EQ(classify(0).kind, K::kRetry);
  EXPECT_EQ(classify(409).kind, K::kRetry);     // retry_statuses
  EXPECT_EQ(classify(503).kind, K::kRejected);  // reject_statuses
  auto bad = classify(400, std::string(300, 'e') + "\n");
  EXPECT_EQ(bad.kind, K::kRejected);
  EXPECT_EQ(bad.reason, "http 400: " + std::string(200, 'e') + "…");
  // The excerpt ends on a UTF-8 boundary and shows control characters as spaces.
  auto utf8 = classify(422, std::string(199, 'a') + "é\x01zzz");
  EXPECT_EQ(utf8.reason, "http 422: " + std::string(199, 'a') + "…");
  EXPECT_EQ(classify(404, "no\r\nroute").reason, "http 404: no  route");
}

TEST(HttpMapped, JsonTextIsAcceptedForTheConsole) {
  // The admin API writes settings as JSON; a mapping given as JSON text works the same.
  auto made = HttpMappedType().create(
      {delivery::testing::Scalar("url", "https://a.example/x"),
       delivery::testing::Scalar("mappings", R"({"track":{"body":{"e":"{{ event }}"}}})")},
      {"f.yaml", "settings", 1});
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  auto b =
      (*made)->Encode(std::vector<delivery::RoutedEvent>{Ev(0, R"({"type":"track","event":"A"})")});
  ASSERT_EQ(b.requests.size(), 1u);
  EXPECT_EQ(b.requests[0].body, R"({"e":"A"})");
  auto scalar = HttpMappedType().create({delivery::testing::Scalar("url", "https://a.example/x"),
                                         delivery::testing::Scalar("mappings", "track", 4)},
                                        {"f.yaml", "settings", 1});
  ASSERT_FALSE(scalar.ok());
  EXPECT_NE(
      scalar.status().message().find("f.yaml:4: settings.mappings: expected a mapping or a list"),
      std::string::npos)
      << scalar.status().message();
}

}  // namespace
}  // namespace sy::destinations
