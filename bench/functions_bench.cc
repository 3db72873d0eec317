// User functions' cost per event on one core (docs/functions.md, docs/benchmarks.md): the
// destination stream's per-event path — routing, then the function chain — with no function,
// a trivial one and a realistic one (rename + scrub + compute), side by side in one run.
// Usage: functions_bench [events per case, default 200000] [rounds, default 3]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/metrics.h"
#include "config/config.h"
#include "delivery/routing.h"
#include "functions/registry.h"

using namespace sy;

namespace {

const char* kTrivial =
    "export default function (event) { event.properties.seen = true; return event; }";

const char* kRealistic = R"(
export function transformEvent(event, metadata) {
  // rename
  if (event.type === 'track') event.event = event.event.toLowerCase().replace(/\s+/g, '_');
  // scrub
  for (const bag of [event.properties, event.context?.traits]) {
    if (!bag) continue;
    for (const k of ['email', 'phone', 'ssn']) delete bag[k];
  }
  if (event.context) delete event.context.ip;
  // compute
  const items = event.properties?.products ?? [];
  event.properties.total = items.reduce((s, p) => s + p.price * p.quantity, 0);
  event.properties.items = items.length;
  event.properties.source = metadata(event).sourceName;
  return event;
})";

std::string Event(int i) {
  return R"({"type":"track","event":"Order Completed","userId":"user-)" + std::to_string(i % 1000) +
         R"(","messageId":"m-)" + std::to_string(i) +
         R"(","timestamp":"2026-12-03T12:00:00.000Z","receivedAt":"2026-12-03T12:00:00.010Z",)"
         R"("context":{"ip":"203.0.113.7","library":{"name":"analytics-node","version":"2.3.0"},)"
         R"("traits":{"email":"a@example.com","phone":"+15550100"}},)"
         R"("properties":{"orderId":"o-1","email":"a@example.com","currency":"USD","products":[)"
         R"({"sku":"a","price":9.99,"quantity":2},{"sku":"b","price":19.5,"quantity":1}]}})";
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 200'000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  const auto dir =
      std::filesystem::temp_directory_path() / ("sy_functions_bench_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "trivial.js") << kTrivial;
  std::ofstream(dir / "realistic.js") << kRealistic;

  config::Config cfg;
  cfg.functions = {{"trivial", (dir / "trivial.js").string(), "{}", 1},
                   {"realistic", (dir / "realistic.js").string(), "{}", 2}};
  config::DestinationConfig none, trivial, realistic;
  none.name = "none";
  trivial.name = "trivial";
  trivial.functions = {"trivial"};
  realistic.name = "realistic";
  realistic.functions = {"realistic"};
  cfg.destinations = {none, trivial, realistic};
  MetricsRegistry metrics;
  functions::FunctionRegistry::Options fo;
  fo.metrics = &metrics;
  functions::FunctionRegistry registry(fo);
  if (Status s = registry.Load(cfg); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }

  std::vector<log::LogEntry> entries;
  for (int i = 0; i < n; ++i) {
    log::LogEntry e;
    e.offset = Offset(i);
    e.source = "web";
    e.message_id = "m-" + std::to_string(i);
    e.payload = Event(i);
    entries.push_back(std::move(e));
  }
  std::printf("%-10s %12s %14s\n", "function", "events/s", "us/event");
  for (int round = 0; round < rounds; ++round) {
    for (const auto* d : {&none, &trivial, &realistic}) {
      delivery::EventRouter router(*d, "Webhooks");
      std::unique_ptr<delivery::EventTransform> chain;
      if (!d->functions.empty()) chain = registry.NewChain(d->name);
      const auto t0 = std::chrono::steady_clock::now();
      size_t out = 0;
      constexpr int kBatch = 100;  // the stream hands the chain what one read routed
      std::vector<delivery::RoutedEvent> batch;
      for (int i = 0; i < n; ++i) {
        delivery::RoutedEvent r;
        router.Route(entries[i], &r);
        batch.push_back(std::move(r));
        if (batch.size() == kBatch || i == n - 1) {
          if (chain) {
            auto results = chain->Transform(batch);
            for (const auto& res : results)
              out += res.kind == delivery::TransformResult::Kind::kEvents ? res.payloads.size() : 1;
          } else {
            out += batch.size();
          }
          batch.clear();
        }
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (out != static_cast<size_t>(n)) std::fprintf(stderr, "unexpected output count %zu\n", out);
      std::printf("%-10s %12.0f %14.2f\n", d->name.c_str(), n / s, s * 1e6 / n);
      if (chain) chain->ThreadDone();
    }
  }
  std::filesystem::remove_all(dir);
  return 0;
}
