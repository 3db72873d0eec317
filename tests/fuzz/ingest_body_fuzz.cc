// Fuzz target: untrusted request bytes → Tracking API → events. The first input byte picks the
// path and the Content-Encoding; the rest is the body. Invariants checked on every input:
// the handler answers exactly once, with a JSON body, and every stored record is a JSON object
// that carries messageId, receivedAt and type (nothing half-validated is ever stored), and no
// number outside the range of a double.
#include <boost/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "base/clock.h"
#include "base/metrics.h"
#include "ingest/dedupe_index.h"
#include "ingest/source_table.h"
#include "ingest/tracking_api.h"
#include "tests/support/memory_event_log.h"

namespace {

struct Harness {
  Harness()
      : dir(std::filesystem::temp_directory_path() / ("sy_fuzz_" + std::to_string(::getpid()))),
        sources({{"web", sy::config::Sha256Hex("wk")}}) {
    std::filesystem::create_directories(dir);
    dedupe = std::move(*sy::ingest::DedupeIndex::Open({dir.string(), 3'600'000, &clock}, &log));
    api = std::make_unique<sy::ingest::TrackingApi>(options, &sources, &log, dedupe.get(), &clock,
                                                    &metrics);
  }
  ~Harness() { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
  sy::FakeClock clock;
  sy::testing::MemoryEventLog log;
  sy::MetricsRegistry metrics;
  sy::config::IngestConfig options;
  sy::ingest::SourceTable sources;
  std::unique_ptr<sy::ingest::DedupeIndex> dedupe;
  std::unique_ptr<sy::ingest::TrackingApi> api;
};

// True if every number in `v` is finite (a stored 1e400 would read back as infinity).
// No stored number may read as ±infinity (ingest refuses numbers beyond a double's range). NaN
// is allowed: Boost.JSON reads a zero with a huge exponent (`0e400`, a valid zero that ingest
// stores as sent) as NaN; the encoders set it back to 0 (delivery::RestoreZerosReadAsNaN).
bool AllFinite(const boost::json::value& v) {
  if (v.is_double()) return !std::isinf(v.get_double());
  if (v.is_array()) {
    for (const auto& e : v.get_array())
      if (!AllFinite(e)) return false;
  }
  if (v.is_object()) {
    for (const auto& kv : v.get_object())
      if (!AllFinite(kv.value())) return false;
  }
  return true;
}

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness* h = new Harness();
  if (size == 0) return 0;
  static const char* kPaths[] = {"/v1/track", "/v1/batch", "/v1/identify", "/v1/b",
                                 "/v1/p",     "/v1/alias", "/v1/g",        "/v1/import"};
  uint8_t sel = data[0];
  namespace bhttp = sy::http::bhttp;
  sy::http::Request req{bhttp::verb::post, kPaths[sel & 7], 11};
  if (sel & 8) req.set(bhttp::field::content_encoding, "gzip");
  if (sel & 16) req.set(bhttp::field::authorization, "Basic d2s6");  // "wk:"
  req.body().assign(reinterpret_cast<const char*>(data + 1), size - 1);
  h->log.Clear();
  const size_t before = 0;
  int answers = 0;
  std::optional<sy::http::Response> res;
  h->api->Handle(std::move(req), {"127.0.0.1"}, sy::http::Responder([&](sy::http::Response r) {
                   ++answers;
                   res = std::move(r);
                 }));
  Check(answers == 1, "exactly one answer");
  boost::system::error_code ec;
  auto body = boost::json::parse(res->body(), ec);
  Check(!ec && body.is_object(), "response body is a JSON object");
  auto entries = h->log.Entries();
  for (size_t i = before; i < entries.size(); ++i) {
    auto v = boost::json::parse(entries[i].payload, ec);
    Check(!ec && v.is_object(), "stored event is a JSON object");
    auto& o = v.get_object();
    Check(o.contains("messageId") && o.contains("receivedAt") && o.contains("type"),
          "stored event is enriched");
    Check(!o.contains("writeKey"), "write key never stored");
    Check(AllFinite(v), "every stored number is within the range of a double");
  }
  if (res->result_int() != 200) Check(entries.size() == before, "non-200 stores nothing");
  h->clock.Advance(std::chrono::milliseconds(1));
  return 0;
}
