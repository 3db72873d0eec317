// plan_bench: ingest CPU per event with a tracking plan of 20 event schemas against no plan
// (issue 17's budget: at most 25 % more), through the Tracking API handler alone as
// ingest_handler_bench measures it (decode, parse, validate, enrich, judge, dedupe, serialize;
// no HTTP, no disk). The two configurations alternate round by round in one process, so both see
// the same machine; the median of the per-round ratios is printed. Also: events that break
// their schema (flagged, so the stored text is rewritten). PLAN_BENCH_ROUNDS (default 5) and
// PLAN_BENCH_REQUESTS (default 300 batches of 100) scale it.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/logging.h"
#include "base/metrics.h"
#include "event/raw_json.h"
#include "governance/tracking_plans.h"
#include "ingest/dedupe_index.h"
#include "ingest/source_table.h"
#include "ingest/tracking_api.h"
#include "tests/support/memory_event_log.h"

namespace {

std::string Event(uint64_t id, bool valid) {
  return std::string(
             R"({"type":"track","userId":"user-42","event":"Product Viewed","properties":{"product_id":"507f191e810c19729de860ea","sku":"G-32","category":"Games","name":"Monopoly: 3rd Edition","brand":"Hasbro","variant":"200 pieces","price":)") +
         (valid ? "18.99" : "\"18.99\"") +
         R"(,"quantity":1,"coupon":"MAYDEALS","position":3,"url":"https://www.example.com/product/path","image_url":"https://www.example.com/product/path.jpg","description":"a board game for the whole family a board game for the whole family a board game for the whole family a board game for the whole family"},"context":{"library":{"name":"analytics-node","version":"2.1.0"},"ip":"203.0.113.7","userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36","locale":"en-US","timezone":"Europe/Paris"},"timestamp":"2024-05-01T12:00:00.000Z","messageId":"m-)" +
         std::to_string(id) + "\"}";
}

// An e-commerce spec's schema: ten typed properties, four of them required.
constexpr const char* kSchema = R"({
  "type": "object",
  "required": ["properties"],
  "properties": {
    "properties": {
      "type": "object",
      "required": ["product_id", "name", "price", "quantity"],
      "properties": {
        "product_id": {"type": "string", "maxLength": 64},
        "sku": {"type": "string"},
        "category": {"type": "string"},
        "name": {"type": "string"},
        "brand": {"type": "string"},
        "variant": {"type": "string"},
        "price": {"type": "number", "minimum": 0},
        "quantity": {"type": "integer", "minimum": 1},
        "coupon": {"type": "string"},
        "position": {"type": "integer"}
      }
    }
  }
})";

int EnvInt(const char* name, int def) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::atoi(v) : def;
}

// The measurement; everything it opens (the dedupe index spills into `dir`) is closed when it
// returns, before main removes `dir`.
int Measure(const std::filesystem::path& dir) {
  // The plan: "Product Viewed" and 19 other events, each its own schema file.
  std::string yaml =
      "version: 1\ndata_dir: /tmp/x\nsources: [{name: web, write_key: wk}]\n"
      "tracking_plans:\n  - name: spec\n    sources: [web]\n    violations: flag\n"
      "    unplanned: flag\n    events:\n";
  for (int i = 0; i < 20; ++i) {
    const std::string event = i == 0 ? "Product Viewed" : "Event " + std::to_string(i);
    const std::string file = "s" + std::to_string(i) + ".json";
    std::ofstream(dir / file) << kSchema;
    yaml += "      " + event + ": {schema: " + file + "}\n";
  }
  auto cfg = sy::config::LoadConfigString(yaml, (dir / "switchyard.yaml").string());
  if (!cfg.ok()) return std::fprintf(stderr, "%s\n", cfg.status().ToString().c_str()), 1;
  auto plans = sy::governance::TrackingPlans::Compile(*cfg);
  if (!plans.ok()) return std::fprintf(stderr, "%s\n", plans.status().ToString().c_str()), 1;

  sy::FakeClock clock;
  sy::testing::MemoryEventLog log;
  sy::MetricsRegistry metrics;
  sy::config::IngestConfig options;
  options.dedupe_window_ms = 3'600'000;
  sy::ingest::SourceTable sources({{"web", sy::config::Sha256Hex("wk")}});
  auto dedupe =
      std::move(*sy::ingest::DedupeIndex::Open({(dir / "d").string(), 3'600'000, &clock}, &log));
  sy::ingest::TrackingApi api(options, &sources, &log, dedupe.get(), &clock, &metrics);
  namespace bhttp = sy::http::bhttp;
  uint64_t id = 0;
  const int requests = EnvInt("PLAN_BENCH_REQUESTS", 300);
  // CPU seconds per event of one configuration over `requests` batches of 100 fresh events.
  auto run = [&](bool with_plan, bool valid) {
    api.SetTrackingPlans(with_plan ? *plans : nullptr);
    std::vector<std::string> bodies;
    for (int r = 0; r < requests; ++r) {
      std::string b = R"({"batch":[)";
      for (int i = 0; i < 100; ++i)
        b += (i ? "," : "") + Event(id++, valid);
      b += R"(],"sentAt":"2024-05-01T12:00:01.000Z"})";
      bodies.push_back(std::move(b));
    }
    int ok = 0;
    const std::clock_t c0 = std::clock();
    for (auto& b : bodies) {
      sy::http::Request req{bhttp::verb::post, "/v1/batch", 11};
      req.set(bhttp::field::authorization, "Basic d2s6");
      req.body() = std::move(b);
      api.Handle(std::move(req), {"127.0.0.1"},
                 sy::http::Responder([&](sy::http::Response r) { ok += r.result_int() == 200; }));
      log.Clear();
    }
    const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
    if (ok != requests) std::fprintf(stderr, "only %d of %d answered 200\n", ok, requests);
    return cpu / (requests * 100.0);
  };
  // The judgement alone (no ingest around it), on the client's event text: what the plan adds.
  auto judge = [&](bool conforming) {
    const std::string event = Event(1, conforming);
    std::vector<sy::event::RawMember> members;  // as ingest has them from the enrichment
    sy::event::SplitObject(event, &members);
    const int n = requests * 100;
    size_t flagged = 0;
    const std::clock_t c0 = std::clock();
    for (int i = 0; i < n; ++i)
      flagged += (*plans)->Judge("web", event, members).violations.size();
    const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
    if ((flagged != 0) == conforming) std::fprintf(stderr, "unexpected judgement\n");
    return cpu / n;
  };
  // PLAN_BENCH_JUDGE_ONLY: the valid judgement alone, once, for a profiler.
  if (std::getenv("PLAN_BENCH_JUDGE_ONLY") != nullptr) {
    std::printf("judgement alone, valid %.2f us\n", judge(true) * 1e6);
    return 0;
  }
  run(false, true);  // warm-up: parser buffers, dedupe table
  const int rounds = EnvInt("PLAN_BENCH_ROUNDS", 5);
  std::vector<double> none, valid, invalid, r_valid, r_invalid;
  for (int round = 0; round < rounds; ++round) {
    none.push_back(run(false, true));
    valid.push_back(run(true, true));
    invalid.push_back(run(true, false));
    r_valid.push_back(valid.back() / none.back());
    r_invalid.push_back(invalid.back() / none.back());
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double judge_valid = judge(true), judge_invalid = judge(false);
  std::printf("ingest CPU per event (batches of 100 x ~900 B, median of %d rounds)\n", rounds);
  std::printf("  no plan                  %7.2f us\n", median(none) * 1e6);
  std::printf("  plan of 20, valid        %7.2f us   x%.2f\n", median(valid) * 1e6,
              median(r_valid));
  std::printf("  plan of 20, flagged      %7.2f us   x%.2f\n", median(invalid) * 1e6,
              median(r_invalid));
  std::printf("  judgement alone, valid    %7.2f us\n", judge_valid * 1e6);
  std::printf("  judgement alone, flagged  %7.2f us\n", judge_invalid * 1e6);
  return 0;
}

}  // namespace

int main() {
  sy::SetLogLevel("warn");
  const auto dir = std::filesystem::temp_directory_path() / "sy_plan_bench";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const int status = Measure(dir);
  std::filesystem::remove_all(dir);
  return status;
}
