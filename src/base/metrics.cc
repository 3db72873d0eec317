#include "base/metrics.h"

#include <fmt/format.h>

#include "base/status.h"

namespace sy {
namespace {

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

std::string RenderLabels(const Labels& labels, std::string_view extra_key = {},
                         std::string_view extra_value = {}) {
  if (labels.empty() && extra_key.empty()) return {};
  std::string s = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) s += ',';
    first = false;
    s += k;
    s += "=\"";
    AppendEscaped(v, &s);
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

MetricsRegistry::Series* MetricsRegistry::FindOrAdd(std::string_view name, std::string_view help,
                                                    Kind kind, const Labels& labels) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{kind, std::string(help), {}}).first;
  }
  SY_CHECK(it->second.kind == kind);
  auto key = RenderLabels(labels);
  auto [sit, inserted] = it->second.series.try_emplace(key);
  if (inserted) sit->second.labels = labels;
  return &sit->second;
}

Counter* MetricsRegistry::GetCounter(std::string_view name, std::string_view help,
                                     const Labels& labels) {
  std::lock_guard lock(mu_);
  Series* s = FindOrAdd(name, help, Kind::kCounter, labels);
  if (!s->counter) s->counter = std::make_unique<Counter>();
  return s->counter.get();
}

Gauge* MetricsRegistry::GetGauge(std::string_view name, std::string_view help,
                                 const Labels& labels) {
  std::lock_guard lock(mu_);
  Series* s = FindOrAdd(name, help, Kind::kGauge, labels);
  if (!s->gauge && !s->callback) s->gauge = std::make_unique<Gauge>();
  SY_CHECK(s->gauge != nullptr);
  return s->gauge.get();
}

Histogram* MetricsRegistry::GetHistogram(std::string_view name, std::string_view help,
                                         const std::vector<double>& bounds, const Labels& labels) {
  std::lock_guard lock(mu_);
  Series* s = FindOrAdd(name, help, Kind::kHistogram, labels);
  if (!s->histogram) s->histogram = std::make_unique<Histogram>(bounds);
  return s->histogram.get();
}

void MetricsRegistry::AddCallbackGauge(std::string_view name, std::string_view help,
                                       const Labels& labels, std::function<double()> fn) {
  std::lock_guard lock(mu_);
  Series* s = FindOrAdd(name, help, Kind::kGauge, labels);
  s->gauge.reset();
  s->callback = std::move(fn);
}

std::string MetricsRegistry::RenderPrometheus() const {
  std::lock_guard lock(mu_);
  std::string out;
  out.reserve(4096);
  for (const auto& [name, fam] : families_) {
    const char* type = fam.kind == Kind::kCounter ? "counter"
                       : fam.kind == Kind::kGauge ? "gauge"
                                                  : "histogram";
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, fam.help, name, type);
    for (const auto& [key, s] : fam.series) {
      switch (fam.kind) {
        case Kind::kCounter:
          out += fmt::format("{}{} {}\n", name, key, s.counter->Value());
          break;
        case Kind::kGauge: {
          double v = s.callback ? s.callback() : s.gauge->Value();
          out += fmt::format("{}{} {}\n", name, key, FormatDouble(v));
          break;
        }
        case Kind::kHistogram: {
          const Histogram& h = *s.histogram;
          auto counts = h.CumulativeCounts();
          for (size_t i = 0; i < h.bounds().size(); ++i) {
            out +=
                fmt::format("{}_bucket{} {}\n", name,
                            RenderLabels(s.labels, "le", FormatDouble(h.bounds()[i])), counts[i]);
          }
          out += fmt::format("{}_bucket{} {}\n", name, RenderLabels(s.labels, "le", "+Inf"),
                             counts.back());
          out += fmt::format("{}_sum{} {}\n", name, key, FormatDouble(h.Sum()));
          out += fmt::format("{}_count{} {}\n", name, key, h.Count());
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace sy
