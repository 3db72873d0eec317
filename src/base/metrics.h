// Metrics: a small registry of labelled metric families, rendered in the Prometheus text
// exposition format (version 0.0.4). docs/metrics.md lists every metric the server serves.
//
// Model: a family has a name, a help text, a kind (counter, gauge, histogram) and fixed label
// names; each distinct set of label values is one series. Components declare their families
// when they start (so /metrics lists a family before its first observation) and look up series
// with `With` — or `WithCached` on hot paths.
//
// Cardinality: label values may come from clients (event names become warehouse tables), so a
// family holds at most `max_series_per_family` series (default kDefaultMaxSeriesPerFamily).
// A lookup of a new label set past that cap returns the family's overflow series, whose every
// label value is kOverflowLabelValue, and counts one in
// `switchyard_metrics_series_dropped_total{family="<name>"}`: the observation stays visible,
// only its labels are lost. Memory and scrape size stay bounded whatever clients send.
//
// Thread safety: every method is thread-safe. Family and series pointers stay valid for the
// registry's lifetime. `With` takes the registry's mutex; `WithCached` answers from a small
// per-thread cache without a lock when the same label set was used recently on this thread.
// Series updates (Inc, Set, Observe) are lock-free atomics.
//
// Who holds the registry: the server owns one (app::App) and hands it to every component,
// which require it (never null). Tools that serve no /metrics pass a local one.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sy {

// Label name → value pairs of one series, for the name-and-labels helpers (GetCounter…).
using Labels = std::vector<std::pair<std::string, std::string>>;

// Why 1,000: a family's series are each ~100–300 bytes of registry memory and one line of every
// scrape; 1,000 series keep a family under ~100 KB of scrape text, and no family of a sane
// deployment comes near it (its labels are sources, destinations, cursors, reasons, paths,
// and warehouse tables — the one client-driven label).
inline constexpr size_t kDefaultMaxSeriesPerFamily = 1000;
// Every label value of a family's overflow series.
inline constexpr std::string_view kOverflowLabelValue = "__overflow__";

class Counter {
 public:
  void Inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void Set(double v) { v_.store(v, std::memory_order_relaxed); }
  void Add(double d) {
    double cur = v_.load(std::memory_order_relaxed);
    while (!v_.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
    }
  }
  double Value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  // Snapshot: cumulative bucket counts (one per bound, then +Inf), sum, count.
  std::vector<uint64_t> CumulativeCounts() const;
  double Sum() const { return sum_.load(std::memory_order_relaxed); }
  uint64_t Count() const { return count_.load(std::memory_order_relaxed); }
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// Latency buckets in seconds: 100 µs … 10 s.
std::vector<double> LatencyBuckets();

class MetricsRegistry;

// The kind-independent part of a family: its label names, its series (at most the cap, plus the
// overflow series) and the lookups.
class MetricFamily {
 public:
  enum class Kind { kCounter, kGauge, kHistogram };

  const std::string& name() const { return name_; }
  Kind kind() const { return kind_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

 protected:
  friend class MetricsRegistry;
  struct Series {
    std::vector<std::string> values;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
    std::function<double()> callback;  // a gauge computed at scrape time
  };

  MetricFamily(MetricsRegistry* registry, std::string name, std::string help, Kind kind,
               std::vector<std::string> label_names, std::vector<double> bounds, bool capped);

  // The series for `values` (one per label name), created if new; past the cap, the overflow
  // series (and *overflow = true). Caller holds registry_->mu_.
  Series* FindOrAddLocked(std::span<const std::string_view> values, bool* overflow);
  // Locks, then FindOrAddLocked; returns the series' metric of this family's kind.
  void* Find(std::span<const std::string_view> values);
  // Find through the calling thread's cache of recent lookups (overflow results are not cached,
  // so each of them is counted).
  void* FindCached(std::span<const std::string_view> values);
  void* MetricOf(Series* s);

  MetricsRegistry* const registry_;
  const std::string name_;
  const std::string help_;
  const Kind kind_;
  const std::vector<std::string> label_names_;
  const std::vector<double> bounds_;  // histograms
  const bool capped_;
  const uint64_t id_;  // unique per process: keys the per-thread cache (addresses get reused)
  std::map<std::string, Series> series_;  // keyed by the rendered label set
  std::unique_ptr<Series> overflow_;
  Counter* dropped_ = nullptr;  // this family's series of switchyard_metrics_series_dropped_total
};

// A family whose series are T (Counter, Gauge or Histogram).
template <class T>
class Family final : public MetricFamily {
 public:
  // The series with these label values, one per label name in declaration order (checked).
  T* With(std::initializer_list<std::string_view> values) {
    return static_cast<T*>(Find({values.begin(), values.size()}));
  }
  T* With(std::span<const std::string_view> values) { return static_cast<T*>(Find(values)); }
  // Same result; answers repeated lookups of this thread from a per-thread cache without taking
  // the registry's lock. For per-request paths.
  T* WithCached(std::initializer_list<std::string_view> values) {
    return static_cast<T*>(FindCached({values.begin(), values.size()}));
  }

 private:
  friend class MetricsRegistry;
  template <class... A>
  explicit Family(A&&... a) : MetricFamily(std::forward<A>(a)...) {}
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

struct MetricsOptions {
  size_t max_series_per_family = kDefaultMaxSeriesPerFamily;
};

class MetricsRegistry {
 public:
  explicit MetricsRegistry(MetricsOptions options = {});
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Declares (or returns the already declared) family. Declaring a name again with another
  // kind or other label names is a programming error (checked).
  CounterFamily* Counters(std::string_view name, std::string_view help,
                          std::vector<std::string> label_names = {});
  GaugeFamily* Gauges(std::string_view name, std::string_view help,
                      std::vector<std::string> label_names = {});
  HistogramFamily* Histograms(std::string_view name, std::string_view help,
                              std::vector<double> bounds,
                              std::vector<std::string> label_names = {});

  // One series by name and labels: declares the family from the labels' names, then With().
  Counter* GetCounter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge* GetGauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram* GetHistogram(std::string_view name, std::string_view help,
                          const std::vector<double>& bounds, const Labels& labels = {});
  // A gauge computed at scrape time (lag, queue depth), replacing the series' value or callback.
  // `fn` must be thread-safe and cheap: it runs while /metrics renders, on an I/O thread, under
  // the registry's lock (no disk, no locks that may wait on I/O).
  void AddCallbackGauge(std::string_view name, std::string_view help, const Labels& labels,
                        std::function<double()> fn);

  size_t max_series_per_family() const { return options_.max_series_per_family; }

  std::string RenderPrometheus() const;

 private:
  friend class MetricFamily;
  MetricFamily* Declare(std::string_view name, std::string_view help, MetricFamily::Kind kind,
                        std::vector<std::string> label_names, std::vector<double> bounds,
                        bool capped);
  // The series of `labels` in the family `name`, declared from the labels' names if new.
  MetricFamily::Series* SeriesFor(std::string_view name, std::string_view help,
                                  MetricFamily::Kind kind, const Labels& labels,
                                  const std::vector<double>& bounds);
  Counter* DroppedCounterLocked(const std::string& family);

  const MetricsOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<MetricFamily>, std::less<>> families_;
  MetricFamily* dropped_ = nullptr;  // switchyard_metrics_series_dropped_total{family}
};

}  // namespace sy
