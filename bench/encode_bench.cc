// encode_bench: CPU cost of each vendor encoder alone — Destination::Encode over a realistic mixed
// batch (track with properties and context, identify with traits, page; 60/20/20), no HTTP, no
// log. Prints events/s on one core per destination type, for docs/benchmarks.md ("Destination
// encoders"). The batch is cut into chunks of the type's max_events_per_request as delivery
// does. Usage: encode_bench [seconds per type, default 1] [type ...]
//
// Adding a destination: one row in kSampleSettings below (settings that make it valid; the
// endpoint is never contacted). A type without a row is reported as skipped; an in-process one
// (kafka) has no encoder and says so. A two-step type's token step (bigquery) is answered once
// before timing, as a running stream has its token cached: the figure is the steady state.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "base/logging.h"
#include "config/config.h"
#include "delivery/destination.h"
#include "destinations/registry.h"

namespace {

std::string ReadFile(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Per destination type: settings (key, value) that make a valid instance.
const std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>>
    kSampleSettings = {
        {"amplitude", {{"api_key", "k"}}},
        // The test service account (its token_uri is never contacted: the bench answers the
        // token step itself).
        {"bigquery",
         {{"project_id", "bench"},
          {"dataset_id", "bench"},
          {"service_account_json",
           ReadFile(SY_SOURCE_DIR "/src/destinations/bigquery/testdata/service_account.json")}}},
        {"braze", {{"api_key", "k"}}},
        {"customerio", {{"site_id", "s"}, {"api_key", "k"}}},
        {"google-analytics-4", {{"measurement_id", "G-XXXX"}, {"api_secret", "s"}}},
        {"heap", {{"app_id", "12345"}}},
        // The mapped destination doing Amplitude's job (its testdata/amplitude.yaml, in short).
        {"http",
         {{"url", "https://api.example.com/2/httpapi"},
          {"batch", "true"},
          {"max_events", "2000"},
          {"api_key", "k"},
          {"batch_envelope", R"({"api_key":"{{ $api_key }}","events":"{{ events }}"})"},
          {"mappings",
           R"({"track":{"body":{"event_type":"{{ event }}","user_id":"{{ userId }}",)"
           R"("device_id":"{{ anonymousId }}",)"
           R"("time":"{{ default(to_unix_millis(timestamp), $received_at) }}",)"
           R"("insert_id":"{{ $message_id }}","event_properties":"{{ properties }}",)"
           R"("ip":"{{ context.ip }}","language":"{{ context.locale }}","library":"switchyard"}},)"
           R"("page":{"body":{"event_type":)"
           R"("{{ default(concat('Viewed ', name, ' Page'), 'Loaded a Page') }}",)"
           R"("user_id":"{{ userId }}","device_id":"{{ anonymousId }}",)"
           R"("time":"{{ default(to_unix_millis(timestamp), $received_at) }}",)"
           R"("insert_id":"{{ $message_id }}","event_properties":"{{ properties }}"}},)"
           R"("identify":{"body":{"event_type":"$identify",)"
           R"("user_properties":{"$set":"{{ traits }}"},"user_id":"{{ userId }}",)"
           R"("email_sha256":"{{ sha256(lowercase(trim(traits.email))) }}",)"
           R"("insert_id":"{{ $message_id }}"}}})"}}},
        {"hubspot", {{"access_token", "t"}}},
        {"iterable", {{"api_key", "k"}}},
        {"intercom", {{"access_token", "t"}}},
        {"kafka", {{"brokers", "127.0.0.1:9"}, {"topic", "events"}}},
        {"kinesis",
         {{"stream_name", "events"},
          {"region", "us-east-1"},
          {"access_key_id", "AKIDEXAMPLE"},
          {"secret_access_key", "secret"}}},
        {"klaviyo", {{"api_key", "pk"}}},
        {"mailchimp", {{"api_key", "k-us6"}, {"list_id", "L1"}}},
        {"meta-conversions", {{"pixel_id", "123"}, {"access_token", "t"}}},
        {"mixpanel", {{"api_secret", "s"}, {"project_token", "t"}}},
        {"pinterest", {{"ad_account_id", "123"}, {"access_token", "t"}}},
        {"posthog", {{"api_key", "phc_k"}}},
        {"segment", {{"write_key", "wk"}}},
        {"slack", {{"webhook_url", "https://hooks.slack.com/services/T/B/X"}}},
        {"tiktok", {{"pixel_code", "C1"}, {"access_token", "t"}}},
        {"webhook", {{"url", "https://hooks.example.com/in"}, {"batch", "true"}}},
};

const char* kContext =
    R"("context":{"library":{"name":"analytics.js","version":"2.11.1"},"ip":"203.0.113.7",)"
    R"("userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) )"
    R"(Chrome/120.0 Safari/537.36","locale":"en-US","page":{"url":"https://www.example.com/p",)"
    R"("referrer":"https://search.example.com/","title":"Pricing"},"os":{"name":"Linux"}},)"
    R"("timestamp":"2024-05-01T12:00:00.000Z","receivedAt":"2024-05-01T12:00:00.120Z")";

std::string Payload(size_t i) {
  const std::string user = "user-" + std::to_string(i % 97);
  const std::string id = "m-" + std::to_string(i);
  switch (i % 5) {
    case 3:
      return R"({"type":"identify","userId":")" + user + R"(","anonymousId":"anon-)" +
             std::to_string(i % 89) +
             R"(","traits":{"email":"someone@example.com","firstName":"Ada","lastName":"Lovelace",)"
             R"("plan":"pro","company":{"name":"Acme","employees":120},"createdAt":"2023-01-01"},)" +
             kContext + R"(,"messageId":")" + id + R"("})";
    case 4:
      return R"({"type":"page","anonymousId":"anon-)" + std::to_string(i % 89) +
             R"(","name":"Pricing","properties":{"path":"/pricing","url":"https://www.example.com/pricing",)"
             R"("title":"Pricing"},)" +
             kContext + R"(,"messageId":")" + id + R"("})";
    default:
      return R"({"type":"track","userId":")" + user +
             R"(","event":"Product Viewed","properties":{"product_id":"507f191e810c19729de860ea",)"
             R"("sku":"G-32","category":"Games","name":"Monopoly: 3rd Edition","brand":"Hasbro",)"
             R"("price":18.99,"quantity":1,"coupon":"MAYDEALS","position":3,)"
             R"("url":"https://www.example.com/product/path"},)" +
             kContext + R"(,"messageId":")" + id + R"("})";
  }
}

}  // namespace

int main(int argc, char** argv) {
  sy::SetLogLevel("warn");
  const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  std::vector<std::string> only(argv + std::min(argc, 2), argv + argc);
  std::vector<sy::delivery::RoutedEvent> events;
  for (size_t i = 0; i < 2000; ++i)
    events.push_back({sy::Offset(i), "web", "m-" + std::to_string(i),
                      sy::TimestampMs(1'714'564'800'000), Payload(i)});
  std::printf("%-20s %14s %10s\n", "destination", "events/s/core", "requests");
  for (const auto& b : sy::destinations::AllBuiltinDestinations()) {
    if (b.test_double) continue;
    const auto& type = b.type;
    if (!only.empty() && std::find(only.begin(), only.end(), type.type) == only.end()) continue;
    const std::vector<std::pair<std::string, std::string>>* sample = nullptr;
    for (const auto& [name, s] : kSampleSettings)
      if (name == type.type) sample = &s;
    if (!sample) {
      std::printf("%-20s %14s\n", type.type.c_str(), "skipped (no sample settings)");
      continue;
    }
    std::vector<sy::config::RawSetting> raw;
    for (const auto& [k, v] : *sample) {
      sy::config::RawSetting r;
      r.key = k;
      r.line = 1;
      r.scalar = v;
      raw.push_back(std::move(r));
    }
    auto made = type.create(raw, {"bench.yaml", "settings", 1});
    if (!made.ok()) {
      std::printf("%-20s %s\n", type.type.c_str(), made.status().ToString().c_str());
      continue;
    }
    auto& d = **made;
    if (d.DeliverInProcess(std::span(events).subspan(0, 0)).has_value()) {
      std::printf("%-20s %14s\n", type.type.c_str(), "in-process: no encoder");
      continue;
    }
    // Answer a token step once (a cached token afterwards, as in a running stream).
    for (const auto& r : d.Encode(std::span(events).subspan(0, 1)).requests) {
      if (r.step != "token") continue;
      sy::delivery::HttpResponse token;
      token.status = 200;
      token.body = R"({"access_token":"ya29.bench","expires_in":3599,"token_type":"Bearer"})";
      d.FollowUp(r, token);
    }
    const size_t chunk = std::max<size_t>(1, d.limits().max_events_per_request);
    const std::span<const sy::delivery::RoutedEvent> all(events);
    size_t encoded = 0, requests = 0, bytes = 0;
    const auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    while (elapsed < seconds) {
      for (size_t at = 0; at < all.size(); at += chunk) {
        auto enc = d.Encode(all.subspan(at, std::min(chunk, all.size() - at)));
        requests += enc.requests.size();
        for (const auto& r : enc.requests)
          bytes += r.body.size();
      }
      encoded += all.size();
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    std::printf("%-20s %14.0f %10zu\n", type.type.c_str(), encoded / elapsed,
                requests * all.size() / encoded);
    if (bytes == 0) std::printf("  (no bytes encoded: %s)\n", type.type.c_str());
  }
  return 0;
}
