// ingest_handler_bench: CPU cost of the Tracking API handler alone (decode, parse, validate,
// enrich, dedupe, serialize), without HTTP or disk: the log is an in-memory double. Prints
// events/s on one core for a /v1/batch of 100 ~900-byte events and for single /v1/track calls.
// A component benchmark to find where ingest time goes; bench/ingest_bench.sh measures the
// whole server against nginx.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "base/clock.h"
#include "base/logging.h"
#include "base/metrics.h"
#include "ingest/dedupe_index.h"
#include "ingest/source_table.h"
#include "ingest/tracking_api.h"
#include "observe/live_feed.h"
#include "tests/support/memory_event_log.h"

namespace {

std::string Event(uint64_t id) {
  return R"({"type":"track","userId":"user-42","event":"Product Viewed","properties":{"product_id":"507f191e810c19729de860ea","sku":"G-32","category":"Games","name":"Monopoly: 3rd Edition","brand":"Hasbro","variant":"200 pieces","price":18.99,"quantity":1,"coupon":"MAYDEALS","position":3,"url":"https://www.example.com/product/path","image_url":"https://www.example.com/product/path.jpg","description":"a board game for the whole family a board game for the whole family a board game for the whole family a board game for the whole family"},"context":{"library":{"name":"analytics-node","version":"2.1.0"},"ip":"203.0.113.7","userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36","locale":"en-US","timezone":"Europe/Paris"},"timestamp":"2024-05-01T12:00:00.000Z","messageId":"m-)" +
         std::to_string(id) + "\"}";
}

}  // namespace

int main() {
  sy::SetLogLevel("warn");
  auto dir = std::filesystem::temp_directory_path() / "sy_ingest_handler_bench";
  std::filesystem::remove_all(dir);
  sy::FakeClock clock;
  sy::testing::MemoryEventLog log;
  sy::MetricsRegistry metrics;
  sy::config::IngestConfig options;
  options.dedupe_window_ms = 3'600'000;
  sy::ingest::SourceTable sources({{"web", sy::config::Sha256Hex("wk")}});
  auto dedupe = std::move(*sy::ingest::DedupeIndex::Open({dir.string(), 3'600'000, &clock}, &log));
  sy::ingest::TrackingApi api(options, &sources, &log, dedupe.get(), &clock, &metrics);
  sy::observe::LiveFeed live;  // as the server wires it: nobody watching
  api.set_live_feed(&live);
  namespace bhttp = sy::http::bhttp;
  uint64_t id = 0;
  auto run = [&](const char* name, const char* path, int per_request, int requests) {
    std::vector<std::string> bodies;
    for (int r = 0; r < requests; ++r) {
      std::string b;
      if (per_request == 1) {
        b = Event(id++);
      } else {
        b = R"({"batch":[)";
        for (int i = 0; i < per_request; ++i)
          b += (i ? "," : "") + Event(id++);
        b += R"(],"sentAt":"2024-05-01T12:00:01.000Z"})";
      }
      bodies.push_back(std::move(b));
    }
    size_t bytes = 0;
    for (const auto& b : bodies)
      bytes += b.size();
    auto t0 = std::chrono::steady_clock::now();
    int ok = 0;
    for (auto& b : bodies) {
      sy::http::Request req{bhttp::verb::post, path, 11};
      req.set(bhttp::field::authorization, "Basic d2s6");
      req.body() = std::move(b);
      api.Handle(std::move(req), {"127.0.0.1"},
                 sy::http::Responder([&](sy::http::Response r) { ok += r.result_int() == 200; }));
      log.Clear();
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-22s %10.0f events/s/core  %8.1f MB/s  (%d/%d answered 200)\n", name,
                requests * per_request / s, static_cast<double>(bytes) / s / 1e6, ok, requests);
  };
  run("batch 100 x ~900 B", "/v1/batch", 100, 2000);
  run("single /v1/track", "/v1/track", 1, 100000);
  std::filesystem::remove_all(dir);
  return 0;
}
