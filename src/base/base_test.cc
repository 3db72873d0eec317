#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <sstream>

#include <thread>
#include "base/clock.h"

#include "base/base64.h"
#include "base/crc32c.h"
#include "base/hash.h"
#include "base/logging.h"
#include "base/metrics.h"
#include "base/status.h"
#include "base/time_format.h"

namespace sy {
namespace {

TEST(Crc32c, KnownVectors) {
  // RFC 3720 B.4 test vectors.
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c::Value(zeros), 0x8A9136AAu);
  std::string ones(32, '\xff');
  EXPECT_EQ(crc32c::Value(ones), 0x62A8AB43u);
  EXPECT_EQ(crc32c::Value("123456789"), 0xE3069283u);
  // Extend == Value of the concatenation.
  EXPECT_EQ(crc32c::Extend(crc32c::Value("12345"), "6789", 4), 0xE3069283u);
}

TEST(Base64, MatchesRfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
}

TEST(Time, FormatAndParseRoundTrip) {
  EXPECT_EQ(FormatIso8601(TimestampMs(0)), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIso8601(TimestampMs(1700000000123)), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(ParseIso8601("2023-11-14T22:13:20.123Z")->value(), 1700000000123);
  EXPECT_EQ(ParseIso8601("2023-11-14T23:13:20.123+01:00")->value(), 1700000000123);
  EXPECT_EQ(ParseIso8601("2023-11-14T22:13:20.123456Z")->value(), 1700000000123);
  EXPECT_EQ(ParseIso8601("2023-11-14T22:13:20Z")->value(), 1700000000000);
  EXPECT_EQ(ParseIso8601("2023-11-14")->value(), 1699920000000);
  EXPECT_EQ(FormatIso8601(TimestampMs(-1)), "1969-12-31T23:59:59.999Z");
}

TEST(Time, RepeatedFormattingIsStable) {
  std::string s;
  for (int64_t v : {1700000000123LL, 1700000000123LL, 0LL, 1700000000123LL, 0LL, 0LL}) {
    s.clear();
    AppendIso8601(TimestampMs(v), &s);
    EXPECT_EQ(s, v == 0 ? "1970-01-01T00:00:00.000Z" : "2023-11-14T22:13:20.123Z");
  }
  s = "prefix:";
  AppendIso8601(TimestampMs(0), &s);
  EXPECT_EQ(s, "prefix:1970-01-01T00:00:00.000Z");
}

TEST(Time, RejectsGarbage) {
  for (const char* s :
       {"", "yesterday", "2023-13-01T00:00:00Z", "2023-02-30", "2023-11-14T25:00:00Z",
        "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20Zjunk", "2023-1-4"}) {
    EXPECT_FALSE(ParseIso8601(s).has_value()) << s;
  }
}

TEST(Units, DurationsAndSizes) {
  EXPECT_EQ(ParseDurationMs("500ms"), 500);
  EXPECT_EQ(ParseDurationMs("4h"), 4 * 3600 * 1000);
  EXPECT_FALSE(ParseDurationMs("4").has_value());
  EXPECT_FALSE(ParseDurationMs("4 fortnights").has_value());
  EXPECT_EQ(ParseByteSize("64MB"), 64 << 20);
  EXPECT_EQ(ParseByteSize("512"), 512);
  EXPECT_FALSE(ParseByteSize("MB").has_value());
}

TEST(Hash, PairIsStableAndUnambiguous) {
  EXPECT_EQ(HashPair("web", "m1"), HashPair("web", "m1"));
  EXPECT_NE(HashPair("ab", "c"), HashPair("a", "bc"));
  EXPECT_NE(HashPair("web", "m1"), HashPair("backend", "m1"));
}

TEST(Metrics, RendersPrometheusText) {
  MetricsRegistry r;
  r.GetCounter("sy_events_total", "Events.", {{"source", "web"}})->Inc(3);
  r.GetHistogram("sy_latency_seconds", "Latency.", {0.1, 1}, {})->Observe(0.5);
  r.AddCallbackGauge("sy_lag", "Lag.", {{"consumer", "a\"b"}}, [] { return 7.0; });
  std::string text = r.RenderPrometheus();
  EXPECT_NE(text.find("# TYPE sy_events_total counter\nsy_events_total{source=\"web\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("sy_latency_seconds_bucket{le=\"0.1\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("sy_latency_seconds_bucket{le=\"1\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("sy_latency_seconds_bucket{le=\"+Inf\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("sy_latency_seconds_count 1\n"), std::string::npos);
  EXPECT_NE(text.find("sy_lag{consumer=\"a\\\"b\"} 7\n"), std::string::npos);
}

TEST(Metrics, FamiliesAreListedBeforeTheirFirstSeries) {
  MetricsRegistry r;
  r.Counters("sy_rows_total", "Rows.", {"table"});
  std::string text = r.RenderPrometheus();
  EXPECT_NE(text.find("# TYPE sy_rows_total counter\n"), std::string::npos);
  EXPECT_EQ(text.find("sy_rows_total{"), std::string::npos);
  // The dropped-series counter is declared by every registry.
  EXPECT_NE(text.find("# TYPE switchyard_metrics_series_dropped_total counter\n"),
            std::string::npos);
}

TEST(Metrics, FamilyLookupsReturnOneSeriesPerLabelSet) {
  MetricsRegistry r;
  CounterFamily* f = r.Counters("sy_requests_total", "Requests.", {"path", "status"});
  Counter* a = f->With({"/v1/track", "200"});
  EXPECT_EQ(f->With({"/v1/track", "200"}), a);
  EXPECT_EQ(f->WithCached({"/v1/track", "200"}), a);
  EXPECT_EQ(f->WithCached({"/v1/track", "200"}), a);
  EXPECT_NE(f->WithCached({"/v1/track", "400"}), a);
  // The name-and-labels helper reaches the same series.
  EXPECT_EQ(
      r.GetCounter("sy_requests_total", "Requests.", {{"path", "/v1/track"}, {"status", "200"}}),
      a);
  a->Inc(2);
  EXPECT_NE(r.RenderPrometheus().find("sy_requests_total{path=\"/v1/track\",status=\"200\"} 2\n"),
            std::string::npos);
  HistogramFamily* h = r.Histograms("sy_seconds", "Seconds.", {1}, {"destination"});
  h->With({"x"})->Observe(0.5);
  EXPECT_NE(r.RenderPrometheus().find("sy_seconds_bucket{destination=\"x\",le=\"1\"} 1\n"),
            std::string::npos);
}

// The cardinality cap (issue 18): 20,000 event names made a 1.6 MB scrape. Past the cap, new
// label sets share one overflow series and each such observation is counted, by family.
TEST(Metrics, LabelSetsPastTheCapGoToTheOverflowSeriesAndAreCounted) {
  MetricsRegistry r(MetricsOptions{.max_series_per_family = 10});
  CounterFamily* rows = r.Counters("sy_rows_total", "Rows.", {"destination", "table"});
  for (int i = 0; i < 25; ++i) {
    std::string table = "t" + std::to_string(i);
    rows->WithCached({"wh", table})->Inc(1);
    rows->WithCached({"wh", table})->Inc(1);  // a second observation of the same label set
  }
  // Known label sets keep their series after the cap is reached.
  rows->With({"wh", "t3"})->Inc(100);
  // Callback gauges and the name-and-labels helpers obey the same cap.
  for (int i = 0; i < 12; ++i)
    r.GetGauge("sy_lag", "Lag.", {{"cursor", "c" + std::to_string(i)}})->Set(1);

  std::string text = r.RenderPrometheus();
  size_t row_series = 0;
  for (size_t p = text.find("\nsy_rows_total{"); p != std::string::npos;
       p = text.find("\nsy_rows_total{", p + 1))
    ++row_series;
  EXPECT_EQ(row_series, 11u);  // 10 + the overflow series
  EXPECT_NE(text.find("sy_rows_total{destination=\"wh\",table=\"t3\"} 102\n"), std::string::npos);
  EXPECT_NE(text.find("sy_rows_total{destination=\"__overflow__\",table=\"__overflow__\"} 30\n"),
            std::string::npos);
  EXPECT_EQ(text.find("table=\"t10\""), std::string::npos);
  EXPECT_NE(text.find("switchyard_metrics_series_dropped_total{family=\"sy_rows_total\"} 30\n"),
            std::string::npos);
  EXPECT_NE(text.find("sy_lag{cursor=\"__overflow__\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("switchyard_metrics_series_dropped_total{family=\"sy_lag\"} 2\n"),
            std::string::npos);
}

TEST(Metrics, DefaultCapIsDocumentedValue) {
  EXPECT_EQ(MetricsRegistry().max_series_per_family(), 1000u);
}

TEST(Metrics, CachedLookupsAgreeAcrossThreadsAndRegistries) {
  std::vector<Counter*> seen(4);
  MetricsRegistry r;
  CounterFamily* f = r.Counters("sy_total", "T.", {"source"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i)
        f->WithCached({"web"})->Inc();
      seen[t] = f->WithCached({"web"});
    });
  }
  for (auto& t : threads)
    t.join();
  for (Counter* c : seen)
    EXPECT_EQ(c, f->With({"web"}));
  EXPECT_EQ(f->With({"web"})->Value(), 4000u);
  // A later registry's family with the same name never gets this thread's cached entries.
  Counter* first = f->WithCached({"web"});
  MetricsRegistry r2;
  Counter* second = r2.Counters("sy_total", "T.", {"source"})->WithCached({"web"});
  EXPECT_NE(first, second);
  EXPECT_EQ(second->Value(), 0u);
}

TEST(Result, CarriesValueOrStatus) {
  Result<int> ok = 5;
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 5);
  Result<int> bad = InvalidArgument("nope");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sy

namespace sy {
namespace {

TEST(LogRateLimiter, LetsAFewLinesThroughPerIntervalAndCountsTheRest) {
  FakeClock clock;
  LogRateLimiter limiter(3, std::chrono::seconds(10), &clock);
  uint64_t suppressed = 99;
  int allowed = 0;
  for (int i = 0; i < 1000; ++i)
    allowed += limiter.Allow(&suppressed);
  EXPECT_EQ(allowed, 3);
  EXPECT_EQ(suppressed, 0u);  // the three lines let through had nothing held back before them
  clock.Advance(std::chrono::seconds(9));
  EXPECT_FALSE(limiter.Allow(&suppressed));
  clock.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(limiter.Allow(&suppressed));
  EXPECT_EQ(suppressed, 998u);  // 997 in the first window + 1 just before it ended
  ASSERT_TRUE(limiter.Allow(&suppressed));
  EXPECT_EQ(suppressed, 0u);
}

TEST(LogRateLimiter, MacroBoundsTheLinesOfOneCallSite) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto logger = std::make_shared<spdlog::logger>("rate_limit_test", sink);
  logger->set_pattern("%v");
  for (int i = 0; i < 5000; ++i)
    SY_LOG_RATE_LIMITED(logger, warn, "accept failed error={}", "Too many open files");
  std::string text = out.str();
  size_t lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  EXPECT_EQ(lines, static_cast<size_t>(LogRateLimiter::kDefaultLines)) << text;
  EXPECT_NE(text.find("accept failed error=Too many open files\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace sy
