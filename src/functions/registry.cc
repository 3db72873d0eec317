#include "functions/registry.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "base/data_dir.h"
#include "base/logging.h"
#include "functions/number_text.h"

namespace sy::functions {
namespace {

std::shared_ptr<spdlog::logger> Logger() {
  static auto l = ModuleLogger("functions");
  return l;
}

std::atomic<uint64_t> g_next_version{1};

// Seconds per call: 10 µs … 1 s (a call is stopped at its deadline, 100 ms by default).
std::vector<double> CallBuckets() {
  return {0.00001, 0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001,
          0.002,   0.005,   0.01,    0.02,   0.05,   0.1,    1.0};
}

// Runs `f` on a thread of its own: an engine needs a thread without another JavaScript context.
template <typename F>
auto OnScratchThread(F f) {
  decltype(f()) result;
  std::thread t([&] { result = f(); });
  t.join();
  return result;
}

}  // namespace

std::string FunctionFileLabel(const config::FunctionConfig& fc) {
  return fc.file.empty() ? fc.name + ".js" : fc.file;
}

Result<std::shared_ptr<FunctionDef>> ReadFunction(const config::FunctionConfig& fc,
                                                  std::shared_ptr<KeyValueStore> store) {
  auto def = std::make_shared<FunctionDef>();
  if (fc.file.empty()) {
    def->source = fc.source;
  } else {
    auto text = ReadWholeFile(Env::Default(), fc.file);
    if (!text.ok()) {
      return InvalidArgument(fc.file + ": function '" + fc.name +
                             "': cannot read the file: " + text.status().message());
    }
    def->source = std::move(*text);
  }
  def->name = fc.name;
  def->file = FunctionFileLabel(fc);
  def->limits.event_timeout_ms = fc.limits.event_timeout_ms;
  def->limits.batch_timeout_ms = fc.limits.batch_timeout_ms;
  def->limits.heap_bytes = fc.limits.memory_bytes;
  def->settings_json = fc.settings_json;
  def->version = g_next_version++;
  def->store = std::move(store);
  return def;
}

Status CheckFunctions(const config::Config& config, const Limits& limits) {
  return OnScratchThread([&]() -> Status {
    auto engine = NewSpiderMonkeyEngine(limits);
    if (!engine.ok()) return engine.status();
    std::string errors;
    for (const auto& fc : config.functions) {
      auto def = ReadFunction(fc, nullptr);
      Status s = def.ok() ? (*engine)->Compile(**def) : def.status();
      if (!s.ok()) errors += s.message() + "\n";
    }
    return errors.empty() ? Status::Ok() : InvalidArgument(errors);
  });
}

FunctionTestRun TestFunction(const config::FunctionConfig& fc, std::string_view event_json) {
  return OnScratchThread([&]() -> FunctionTestRun {
    FunctionTestRun out;
    auto store = KeyValueStore::Open(Env::Default(), "", SystemClock::Get());
    auto def = ReadFunction(fc, store.ok() ? *store : nullptr);
    if (!def.ok()) {
      out.status = def.status();
      return out;
    }
    auto engine = NewSpiderMonkeyEngine(Limits{});
    if (!engine.ok()) {
      out.status = engine.status();
      return out;
    }
    auto t0 = std::chrono::steady_clock::now();
    out.status = (*engine)->Compile(**def);
    out.compile_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!out.status.ok()) return out;
    if (auto style = (*engine)->StyleOf(**def); style.ok()) out.style = *style;
    t0 = std::chrono::steady_clock::now();
    out.result = (*engine)->Run(**def, event_json, EventMeta{"test", "test", "test"});
    out.run_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    for (auto& e : out.result.events)
      e = KeepNumberText(event_json, e);
    out.logs = (*engine)->last_logs();
    out.logs_dropped = (*engine)->last_logs_dropped();
    return out;
  });
}

bool HasFunctions(const config::Config& config, const config::DestinationConfig& d) {
  if (!d.functions.empty()) return true;
  for (const auto& s : config.sources) {
    if (s.functions.empty()) continue;
    if (d.sources.empty()) return true;
    for (const auto& name : d.sources)
      if (name == s.name) return true;
  }
  return false;
}

Counter* FunctionRegistry::Metrics::Errors(ErrorKind kind) {
  return registry->GetCounter("switchyard_function_errors_total",
                              "Function calls that failed, per function and kind (the event was "
                              "dead-lettered).",
                              {{"function", name}, {"kind", std::string(ErrorKindName(kind))}});
}

FunctionRegistry::FunctionRegistry(Options options) : options_(std::move(options)) {
  if (!options_.env) options_.env = Env::Default();
  if (!options_.clock) options_.clock = SystemClock::Get();
}

FunctionRegistry::Metrics* FunctionRegistry::MetricsFor(const std::string& name) {
  std::lock_guard lock(mu_);
  auto& m = metrics_[name];
  if (!m) {
    m = std::make_unique<Metrics>();
    MetricsRegistry* r = options_.metrics;
    Labels l = {{"function", name}};
    m->registry = r;
    m->name = name;
    m->invocations = r->GetCounter("switchyard_function_invocations_total",
                                   "Calls of a function (per event).", l);
    m->dropped = r->GetCounter("switchyard_function_dropped_total",
                               "Events a function dropped (null, \"drop\", [], DropEvent).", l);
    m->fanned_out =
        r->GetCounter("switchyard_function_fanned_out_total",
                      "Events a function added by fanning one event out into several.", l);
    m->retries = r->GetCounter("switchyard_function_retries_total",
                               "Calls that asked for a retry (Segment's RetryError).", l);
    m->seconds = r->GetHistogram("switchyard_function_seconds",
                                 "Time of one function call on one event.", CallBuckets(), l);
    // Every kind shows from the start (at 0), so a rate or an alert needs no first error.
    for (ErrorKind k :
         {ErrorKind::kThrown, ErrorKind::kTimeout, ErrorKind::kMemory, ErrorKind::kRecursion,
          ErrorKind::kInvalidOutput, ErrorKind::kOutputTooLarge, ErrorKind::kValidation}) {
      m->Errors(k);
    }
  }
  return m.get();
}

Status FunctionRegistry::Load(const config::Config& config) {
  std::shared_ptr<const FunctionSet> old = Snapshot();
  auto next = std::make_shared<FunctionSet>();
  std::string errors;
  bool new_one_failed = false;
  std::vector<std::shared_ptr<FunctionDef>> to_compile;
  for (const auto& fc : config.functions) {
    std::shared_ptr<KeyValueStore> store;
    {
      std::lock_guard lock(mu_);
      store = stores_[fc.name];
    }
    if (!store) {
      std::string path;
      if (!options_.data_dir.empty()) {
        const std::string dir = DataDir(options_.data_dir).Functions();
        if (options_.persist_stores) SY_RETURN_IF_ERROR(CreateDirDurably(options_.env, dir));
        path = dir + "/" + fc.name + ".store.json";
      }
      SY_ASSIGN_OR_RETURN(store, KeyValueStore::Open(options_.env, path, options_.clock, {},
                                                     options_.persist_stores));
      std::lock_guard lock(mu_);
      stores_[fc.name] = store;
    }
    auto def = ReadFunction(fc, store);
    auto before = old->defs.find(fc.name);
    if (!def.ok()) {
      errors += def.status().message() + "\n";
      if (before == old->defs.end())
        new_one_failed = true;
      else
        next->defs[fc.name] = before->second;
      continue;
    }
    if (before != old->defs.end() && before->second->source == (*def)->source &&
        before->second->settings_json == (*def)->settings_json &&
        before->second->file == (*def)->file && before->second->limits == (*def)->limits) {
      next->defs[fc.name] = before->second;  // unchanged: same version, no recompiling
      continue;
    }
    to_compile.push_back(*def);
  }
  // Changed and new functions are compiled before anything runs them.
  std::vector<Status> compiled = OnScratchThread([&] {
    std::vector<Status> out;
    auto engine = NewSpiderMonkeyEngine(options_.limits);
    for (const auto& def : to_compile)
      out.push_back(engine.ok() ? (*engine)->Compile(*def) : engine.status());
    return out;
  });
  for (size_t i = 0; i < to_compile.size(); ++i) {
    const auto& def = to_compile[i];
    auto before = old->defs.find(def->name);
    if (compiled[i].ok()) {
      next->defs[def->name] = def;
      if (before != old->defs.end()) {
        Logger()->info("function reloaded function={} file={}", def->name, def->file);
      }
      continue;
    }
    errors += compiled[i].message() + "\n";
    if (before == old->defs.end()) {
      new_one_failed = true;
    } else {
      Logger()->error("function rejected, the previous version keeps running function={} {}",
                      def->name, compiled[i].message());
      next->defs[def->name] = before->second;
    }
  }
  if (new_one_failed) return InvalidArgument(errors);  // nothing changed
  for (const auto& s : config.sources)
    if (!s.functions.empty()) next->by_source[s.name] = s.functions;
  for (const auto& d : config.destinations)
    if (!d.functions.empty()) next->by_destination[d.name] = d.functions;
  for (const auto& [name, def] : next->defs)
    MetricsFor(name);
  {
    std::lock_guard lock(mu_);
    set_ = std::move(next);
  }
  return errors.empty() ? Status::Ok() : InvalidArgument(errors);
}

std::shared_ptr<const FunctionSet> FunctionRegistry::Snapshot() const {
  std::lock_guard lock(mu_);
  return set_;
}

namespace {

// The chain one destination stream runs: its sources' functions, then its own, in order; each
// output of one function is the input of the next. Function by function over a batch: a
// per-event function runs on each event in turn, a transformBatch function once on the events of
// one source (up to `batch_events` inputs a call). Every output keeps the index of the stored event
// it came from (its origin), so the stream keys it by that event's offset.
class FunctionChain final : public delivery::EventTransform {
 public:
  FunctionChain(FunctionRegistry* registry, std::string destination, size_t batch_events)
      : registry_(registry),
        destination_(std::move(destination)),
        batch_events_(batch_events == 0 ? SIZE_MAX : batch_events) {}

  std::vector<delivery::TransformResult> Transform(
      std::span<const delivery::RoutedEvent> events) override {
    using delivery::TransformResult;
    std::vector<TransformResult> results(events.size());
    std::shared_ptr<const FunctionSet> set = registry_->Snapshot();
    if (!engine_) {
      auto e = NewSpiderMonkeyEngine(registry_->limits());
      if (!e.ok()) {
        for (auto& r : results) {
          r.kind = TransformResult::Kind::kRetry;
          r.reason = "functions: " + e.status().message();
        }
        return results;
      }
      engine_ = std::move(*e);
    }
    // A reloaded function's old compiled code is dropped from this engine.
    for (const auto& [name, def] : set->defs) {
      auto& seen = versions_[name];
      if (seen != def->version) {
        if (seen != 0) engine_->Forget(name, def->version);
        seen = def->version;
      }
    }
    // The events of one source run together (their chain is the same, and a transformBatch call
    // sees one source in metadata), in log order, in chunks of at most batch_events_.
    static const std::vector<std::string> kNone;
    auto own = set->by_destination.find(destination_);
    const std::vector<std::string>& mine = own == set->by_destination.end() ? kNone : own->second;
    std::map<std::string_view, std::vector<size_t>> by_source;
    for (size_t i = 0; i < events.size(); ++i)
      by_source[events[i].source].push_back(i);
    std::set<KeyValueStore*> stores;
    for (const auto& [source, members] : by_source) {
      auto theirs = set->by_source.find(std::string(source));
      std::vector<std::string> chain =
          theirs == set->by_source.end() ? std::vector<std::string>{} : theirs->second;
      chain.insert(chain.end(), mine.begin(), mine.end());
      for (size_t at = 0; at < members.size(); at += batch_events_) {
        const size_t n = std::min(batch_events_, members.size() - at);
        RunChain(*set, chain, events, std::span(members).subspan(at, n), &results, &stores);
      }
    }
    // ctx.store writes become durable once per batch.
    for (KeyValueStore* s : stores) {
      if (Status st = s->Flush(); !st.ok()) {
        Logger()->warn("function store flush failed status={}", st.ToString());
      }
    }
    return results;
  }

  void ThreadDone() override { engine_.reset(); }

 private:
  // An event on its way through the chain: its JSON and the index of the stored event it came
  // from.
  struct Item {
    size_t origin;
    std::string payload;
  };

  // Runs `chain` on the events at `members` (indices into `events`), writing their results.
  void RunChain(const FunctionSet& set, const std::vector<std::string>& chain,
                std::span<const delivery::RoutedEvent> events, std::span<const size_t> members,
                std::vector<delivery::TransformResult>* results, std::set<KeyValueStore*>* stores) {
    using delivery::TransformResult;
    std::vector<Item> current;
    current.reserve(members.size());
    for (size_t i : members)
      current.push_back(Item{i, events[i].payload});
    std::map<size_t, bool> changed;  // origin → a function returned something for it
    // Ends `origin`: its items leave the chain and its result says why.
    auto fail = [&](size_t origin, TransformResult::Kind kind, std::string reason) {
      TransformResult& r = (*results)[origin];
      if (r.kind == TransformResult::Kind::kDeadLetter || r.kind == TransformResult::Kind::kRetry)
        return;
      r.kind = kind;
      r.reason = std::move(reason);
    };
    auto failed = [&](size_t origin) {
      const auto k = (*results)[origin].kind;
      return k == TransformResult::Kind::kDeadLetter || k == TransformResult::Kind::kRetry;
    };
    const size_t max_outputs = registry_->limits().max_outputs;
    for (const std::string& name : chain) {
      if (current.empty()) break;
      auto found = set.defs.find(name);
      if (found == set.defs.end()) {
        for (const Item& item : current)
          fail(item.origin, TransformResult::Kind::kDeadLetter,
               "function " + name + ": not loaded");
        current.clear();
        break;
      }
      const FunctionDef& def = *found->second;
      if (def.store) stores->insert(def.store.get());
      FunctionRegistry::Metrics* m = registry_->MetricsFor(name);
      auto style = engine_->StyleOf(def);
      std::vector<Item> next;
      if (style.ok() && *style == Style::kRudderBatch) {
        RunBatchFunction(def, m, events, current, &next, &changed, fail);
      } else {
        for (Item& item : current) {
          if (failed(item.origin)) continue;
          const delivery::RoutedEvent& event = events[item.origin];
          const EventMeta meta{event.source, destination_, event.message_id};
          const auto t0 = std::chrono::steady_clock::now();
          RunResult r = engine_->Run(def, item.payload, meta);
          m->seconds->Observe(
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
          m->invocations->Inc();
          LogLines(name);
          if (r.kind == RunResult::Kind::kKeep) {
            next.push_back(std::move(item));
          } else if (r.kind == RunResult::Kind::kEvents) {
            changed[item.origin] = true;
            if (r.events.empty()) m->dropped->Inc();
            if (r.events.size() > 1) m->fanned_out->Inc(r.events.size() - 1);
            for (auto& e : r.events)
              next.push_back(Item{item.origin, KeepNumberText(item.payload, e)});
          } else if (r.kind == RunResult::Kind::kRetry) {
            m->retries->Inc();
            fail(item.origin, TransformResult::Kind::kRetry, "function " + name + ": " + r.message);
          } else {
            m->Errors(r.error)->Inc();
            fail(item.origin, TransformResult::Kind::kDeadLetter, ErrorReason(name, r));
          }
        }
      }
      // What one stored event may become, over the whole chain so far.
      std::map<size_t, size_t> outputs;
      for (const Item& item : next)
        outputs[item.origin]++;
      for (const auto& [origin, count] : outputs) {
        if (count <= max_outputs || failed(origin)) continue;
        m->Errors(ErrorKind::kOutputTooLarge)->Inc();
        fail(origin, TransformResult::Kind::kDeadLetter,
             "function " + name + ": output_too_large: the chain made " + std::to_string(count) +
                 " events (at most " + std::to_string(max_outputs) + ")");
      }
      std::erase_if(next, [&](const Item& item) { return failed(item.origin); });
      current = std::move(next);
    }
    for (Item& item : current) {
      TransformResult& r = (*results)[item.origin];
      if (changed[item.origin]) r.payloads.push_back(std::move(item.payload));
    }
    for (size_t origin : members) {
      TransformResult& r = (*results)[origin];
      if (!failed(origin) && changed[origin]) r.kind = TransformResult::Kind::kEvents;
    }
  }

  // One transformBatch call on every item of `current`. Outputs go to the origin of the input
  // they are attributed to (prelude.js: the same object, else the same messageId, else the
  // call's first input — the earliest stored event, which holds the cursor for the others). A
  // throw, a timeout or an invalid result fails every event of the call.
  template <typename Fail>
  void RunBatchFunction(const FunctionDef& def, FunctionRegistry::Metrics* m,
                        std::span<const delivery::RoutedEvent> events, std::vector<Item>& current,
                        std::vector<Item>* next, std::map<size_t, bool>* changed, Fail fail) {
    using delivery::TransformResult;
    std::vector<std::string_view> inputs;
    inputs.reserve(current.size());
    for (const Item& item : current)
      inputs.push_back(item.payload);
    const delivery::RoutedEvent& first = events[current.front().origin];
    const EventMeta meta{first.source, destination_, first.message_id};
    const auto t0 = std::chrono::steady_clock::now();
    BatchResult b = engine_->RunBatch(def, inputs, meta);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // Per event, like the other styles: the call's time shared by its inputs.
    for (size_t i = 0; i < current.size(); ++i)
      m->seconds->Observe(seconds / static_cast<double>(current.size()));
    m->invocations->Inc(current.size());
    LogLines(def.name);
    if (b.error.kind == RunResult::Kind::kRetry) {
      m->retries->Inc();
      for (const Item& item : current)
        fail(item.origin, TransformResult::Kind::kRetry,
             "function " + def.name + ": " + b.error.message);
      return;
    }
    if (b.error.kind == RunResult::Kind::kError) {
      m->Errors(b.error.error)->Inc();
      const std::string reason = ErrorReason(def.name, b.error);
      for (const Item& item : current)
        fail(item.origin, TransformResult::Kind::kDeadLetter, reason);
      return;
    }
    std::vector<size_t> count(current.size(), 0);
    for (auto& [from, text] : b.events) {
      const size_t index = from < current.size() ? from : 0;
      count[index]++;
      next->push_back(Item{current[index].origin, KeepNumberText(current[index].payload, text)});
    }
    for (size_t i = 0; i < current.size(); ++i) {
      (*changed)[current[i].origin] = true;
      if (count[i] == 0) m->dropped->Inc();
      if (count[i] > 1) m->fanned_out->Inc(count[i] - 1);
    }
    // Outputs in the order of their origins (the stream numbers an event's parts in this order).
    std::stable_sort(next->begin(), next->end(),
                     [](const Item& x, const Item& y) { return x.origin < y.origin; });
  }

  static std::string ErrorReason(const std::string& name, const RunResult& r) {
    return "function " + name + ": " + std::string(ErrorKindName(r.error)) + ": " + r.message +
           (r.stack.empty() ? "" : "\n" + r.stack);
  }

  void LogLines(const std::string& name) {
    for (const LogLine& l : engine_->last_logs()) {
      if (l.level == "error" || l.level == "warn") {
        Logger()->warn("function={} destination={} level={} {}", name, destination_, l.level,
                       l.text);
      } else {
        Logger()->debug("function={} destination={} level={} {}", name, destination_, l.level,
                        l.text);
      }
    }
  }

  FunctionRegistry* registry_;
  std::string destination_;
  size_t batch_events_;                       // inputs of one transformBatch call at most
  std::unique_ptr<Engine> engine_;            // created on the stream's thread, at first use
  std::map<std::string, uint64_t> versions_;  // last version seen per function
};

}  // namespace

std::unique_ptr<delivery::EventTransform> FunctionRegistry::NewChain(const std::string& destination,
                                                                     size_t batch_events) {
  return std::make_unique<FunctionChain>(this, destination, batch_events);
}

}  // namespace sy::functions
