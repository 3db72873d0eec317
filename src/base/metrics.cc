#include "base/metrics.h"

#include <fmt/format.h>

#include <array>

#include "base/status.h"

namespace sy {
namespace {

constexpr std::string_view kDroppedFamily = "switchyard_metrics_series_dropped_total";

void AppendEscaped(std::string_view v, std::string* out) {
  for (char c : v) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '"') {
      out->append("\\\"");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

template <class Values>
std::string RenderLabels(const std::vector<std::string>& names, const Values& values,
                         std::string_view extra_key = {}, std::string_view extra_value = {}) {
  if (names.empty() && extra_key.empty()) return {};
  std::string s = "{";
  bool first = true;
  for (size_t i = 0; i < names.size(); ++i) {
    if (!first) s += ',';
    first = false;
    s += names[i];
    s += "=\"";
    AppendEscaped(values[i], &s);
    s += '"';
  }
  if (!extra_key.empty()) {
    if (!first) s += ',';
    s += extra_key;
    s += "=\"";
    s += extra_value;
    s += '"';
  }
  s += '}';
  return s;
}

std::string FormatDouble(double v) {
  if (v == static_cast<double>(static_cast<int64_t>(v)) && v < 1e15 && v > -1e15)
    return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

std::atomic<uint64_t> g_next_family_id{1};

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i)
    buckets_[i] = 0;
}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i])
    ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  double cur = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

// ---------------------------------------------------------------------------------------------
// Families

MetricFamily::MetricFamily(MetricsRegistry* registry, std::string name, std::string help, Kind kind,
                           std::vector<std::string> label_names, std::vector<double> bounds,
                           bool capped)
    : registry_(registry),
      name_(std::move(name)),
      help_(std::move(help)),
      kind_(kind),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)),
      capped_(capped),
      id_(g_next_family_id.fetch_add(1, std::memory_order_relaxed)) {}

MetricFamily::Series* MetricFamily::FindOrAddLocked(std::span<const std::string_view> values,
                                                    bool* overflow) {
  SY_CHECK(values.size() == label_names_.size());
  *overflow = false;
  std::string key = RenderLabels(label_names_, values);
  auto it = series_.find(key);
  if (it != series_.end()) return &it->second;
  Series* s = nullptr;
  if (capped_ && series_.size() >= registry_->options_.max_series_per_family) {
    *overflow = true;
    if (!overflow_) {
      overflow_ = std::make_unique<Series>();
      overflow_->values.assign(label_names_.size(), std::string(kOverflowLabelValue));
    }
    if (!dropped_) dropped_ = registry_->DroppedCounterLocked(name_);
    dropped_->Inc();
    s = overflow_.get();
  } else {
    s = &series_[std::move(key)];
    s->values.assign(values.begin(), values.end());
  }
  switch (kind_) {
    case Kind::kCounter:
      if (!s->counter) s->counter = std::make_unique<Counter>();
      break;
    case Kind::kGauge:
      if (!s->gauge && !s->callback) s->gauge = std::make_unique<Gauge>();
      break;
    case Kind::kHistogram:
      if (!s->histogram) s->histogram = std::make_unique<Histogram>(bounds_);
      break;
  }
  return s;
}

void* MetricFamily::MetricOf(Series* s) {
  switch (kind_) {
    case Kind::kCounter:
      return s->counter.get();
    case Kind::kGauge:
      // A callback series has no settable gauge: hand out a detached one rather than null.
      if (!s->gauge) s->gauge = std::make_unique<Gauge>();
      return s->gauge.get();
    case Kind::kHistogram:
      return s->histogram.get();
  }
  return nullptr;
}

void* MetricFamily::Find(std::span<const std::string_view> values) {
  std::lock_guard lock(registry_->mu_);
  bool overflow = false;
  return MetricOf(FindOrAddLocked(values, &overflow));
}

void* MetricFamily::FindCached(std::span<const std::string_view> values) {
  // Small and scanned linearly: a thread touches few label sets per family at a time (an I/O
  // thread: a path × status or two, its sources). Entries of destroyed families never match
  // again, since family ids are never reused.
  struct Entry {
    uint64_t family = 0;
    size_t hash = 0;
    std::vector<std::string> values;
    void* metric = nullptr;
  };
  constexpr size_t kEntries = 16;
  thread_local std::array<Entry, kEntries> cache;
  thread_local size_t next = 0;
  size_t h = id_;
  for (std::string_view v : values)
    h = h * 1099511628211ull ^ std::hash<std::string_view>{}(v);
  for (const Entry& e : cache) {
    if (e.family != id_ || e.hash != h || e.values.size() != values.size()) continue;
    bool same = true;
    for (size_t i = 0; same && i < values.size(); ++i)
      same = e.values[i] == values[i];
    if (same) return e.metric;
  }
  bool overflow = false;
  void* metric = nullptr;
  {
    std::lock_guard lock(registry_->mu_);
    metric = MetricOf(FindOrAddLocked(values, &overflow));
  }
  if (!overflow) {
    Entry& e = cache[next++ % kEntries];
    e.family = id_;
    e.hash = h;
    e.values.assign(values.begin(), values.end());
    e.metric = metric;
  }
  return metric;
}

// ---------------------------------------------------------------------------------------------
// Registry

MetricsRegistry::MetricsRegistry(MetricsOptions options) : options_(options) {
  // Its label is a family name: bounded by the code's vocabulary, so not capped.
  dropped_ = Declare(kDroppedFamily,
                     "Observations whose label set was new past the family's series cap "
                     "(max_series_per_family); they were recorded in the family's __overflow__ "
                     "series instead.",
                     MetricFamily::Kind::kCounter, {"family"}, {}, /*capped=*/false);
}

MetricsRegistry::~MetricsRegistry() = default;

MetricFamily* MetricsRegistry::Declare(std::string_view name, std::string_view help,
                                       MetricFamily::Kind kind,
                                       std::vector<std::string> label_names,
                                       std::vector<double> bounds, bool capped) {
  auto it = families_.find(name);
  if (it != families_.end()) {
    SY_CHECK(it->second->kind_ == kind);
    SY_CHECK(it->second->label_names_ == label_names);
    return it->second.get();
  }
  std::unique_ptr<MetricFamily> f;
  switch (kind) {
    case MetricFamily::Kind::kCounter:
      f.reset(new CounterFamily(this, std::string(name), std::string(help), kind,
                                std::move(label_names), std::move(bounds), capped));
      break;
    case MetricFamily::Kind::kGauge:
      f.reset(new GaugeFamily(this, std::string(name), std::string(help), kind,
                              std::move(label_names), std::move(bounds), capped));
      break;
    case MetricFamily::Kind::kHistogram:
      f.reset(new HistogramFamily(this, std::string(name), std::string(help), kind,
                                  std::move(label_names), std::move(bounds), capped));
      break;
  }
  MetricFamily* raw = f.get();
  families_.emplace(std::string(name), std::move(f));
  return raw;
}

CounterFamily* MetricsRegistry::Counters(std::string_view name, std::string_view help,
                                         std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  return static_cast<CounterFamily*>(
      Declare(name, help, MetricFamily::Kind::kCounter, std::move(label_names), {}, true));
}

GaugeFamily* MetricsRegistry::Gauges(std::string_view name, std::string_view help,
                                     std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  return static_cast<GaugeFamily*>(
      Declare(name, help, MetricFamily::Kind::kGauge, std::move(label_names), {}, true));
}

HistogramFamily* MetricsRegistry::Histograms(std::string_view name, std::string_view help,
                                             std::vector<double> bounds,
                                             std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  return static_cast<HistogramFamily*>(Declare(name, help, MetricFamily::Kind::kHistogram,
                                               std::move(label_names), std::move(bounds), true));
}

MetricFamily::Series* MetricsRegistry::SeriesFor(std::string_view name, std::string_view help,
                                                 MetricFamily::Kind kind, const Labels& labels,
                                                 const std::vector<double>& bounds) {
  std::vector<std::string> names;
  std::vector<std::string_view> values;
  for (const auto& [k, v] : labels) {
    names.push_back(k);
    values.push_back(v);
  }
  MetricFamily* f = Declare(name, help, kind, std::move(names), bounds, true);
  bool overflow = false;
  return f->FindOrAddLocked(values, &overflow);
}

Counter* MetricsRegistry::GetCounter(std::string_view name, std::string_view help,
                                     const Labels& labels) {
  std::lock_guard lock(mu_);
  return SeriesFor(name, help, MetricFamily::Kind::kCounter, labels, {})->counter.get();
}

Gauge* MetricsRegistry::GetGauge(std::string_view name, std::string_view help,
                                 const Labels& labels) {
  std::lock_guard lock(mu_);
  MetricFamily::Series* s = SeriesFor(name, help, MetricFamily::Kind::kGauge, labels, {});
  if (!s->gauge) s->gauge = std::make_unique<Gauge>();  // detached when a callback serves it
  return s->gauge.get();
}

Histogram* MetricsRegistry::GetHistogram(std::string_view name, std::string_view help,
                                         const std::vector<double>& bounds, const Labels& labels) {
  std::lock_guard lock(mu_);
  return SeriesFor(name, help, MetricFamily::Kind::kHistogram, labels, bounds)->histogram.get();
}

void MetricsRegistry::AddCallbackGauge(std::string_view name, std::string_view help,
                                       const Labels& labels, std::function<double()> fn) {
  std::lock_guard lock(mu_);
  MetricFamily::Series* s = SeriesFor(name, help, MetricFamily::Kind::kGauge, labels, {});
  s->gauge.reset();
  s->callback = std::move(fn);
}

Counter* MetricsRegistry::DroppedCounterLocked(const std::string& family) {
  std::string_view value = family;
  bool overflow = false;
  return dropped_->FindOrAddLocked({&value, 1}, &overflow)->counter.get();
}

std::string MetricsRegistry::RenderPrometheus() const {
  std::lock_guard lock(mu_);
  std::string out;
  out.reserve(4096);
  for (const auto& [name, fam] : families_) {
    const char* type = fam->kind_ == MetricFamily::Kind::kCounter ? "counter"
                       : fam->kind_ == MetricFamily::Kind::kGauge ? "gauge"
                                                                  : "histogram";
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, fam->help_, name, type);
    // Named references for the lambda: clang 14 (the fuzz preset's compiler) does not implement
    // C++20's capture of structured bindings.
    const std::string& family_name = name;
    const auto& family = fam;
    auto render = [&](const std::string& key, const MetricFamily::Series& s) {
      switch (family->kind_) {
        case MetricFamily::Kind::kCounter:
          out += fmt::format("{}{} {}\n", family_name, key, s.counter->Value());
          break;
        case MetricFamily::Kind::kGauge: {
          double v = s.callback ? s.callback() : s.gauge->Value();
          out += fmt::format("{}{} {}\n", family_name, key, FormatDouble(v));
          break;
        }
        case MetricFamily::Kind::kHistogram: {
          const Histogram& h = *s.histogram;
          auto counts = h.CumulativeCounts();
          for (size_t i = 0; i < h.bounds().size(); ++i) {
            out += fmt::format(
                "{}_bucket{} {}\n", family_name,
                RenderLabels(family->label_names_, s.values, "le", FormatDouble(h.bounds()[i])),
                counts[i]);
          }
          out += fmt::format("{}_bucket{} {}\n", family_name,
                             RenderLabels(family->label_names_, s.values, "le", "+Inf"),
                             counts.back());
          out += fmt::format("{}_sum{} {}\n", family_name, key, FormatDouble(h.Sum()));
          out += fmt::format("{}_count{} {}\n", family_name, key, h.Count());
          break;
        }
      }
    };
    for (const auto& [key, s] : fam->series_)
      render(key, s);
    if (fam->overflow_)
      render(RenderLabels(fam->label_names_, fam->overflow_->values), *fam->overflow_);
  }
  return out;
}

}  // namespace sy
