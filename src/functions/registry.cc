#include "functions/registry.h"

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "base/data_dir.h"
#include "base/logging.h"

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

// The chain one destination stream runs: its sources' functions, then its own, in order, on
// each event; each output of one function is the input of the next.
class FunctionChain final : public delivery::EventTransform {
 public:
  FunctionChain(FunctionRegistry* registry, std::string destination)
      : registry_(registry), destination_(std::move(destination)) {}

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
    static const std::vector<std::string> kNone;
    auto own = set->by_destination.find(destination_);
    const std::vector<std::string>& mine = own == set->by_destination.end() ? kNone : own->second;
    std::set<KeyValueStore*> stores;
    const size_t max_outputs = registry_->limits().max_outputs;
    for (size_t i = 0; i < events.size(); ++i) {
      const auto& event = events[i];
      auto by_source = set->by_source.find(event.source);
      const std::vector<std::string>& theirs =
          by_source == set->by_source.end() ? kNone : by_source->second;
      TransformResult& result = results[i];
      std::vector<std::string> current{event.payload};
      bool changed = false, failed = false;
      const EventMeta meta{event.source, destination_, event.message_id};
      for (const std::vector<std::string>* list : {&theirs, &mine}) {
        for (const std::string& name : *list) {
          if (failed || current.empty()) break;
          auto def = set->defs.find(name);
          if (def == set->defs.end()) {
            result.kind = TransformResult::Kind::kDeadLetter;
            result.reason = "function " + name + ": not loaded";
            failed = true;
            break;
          }
          if (def->second->store) stores.insert(def->second->store.get());
          FunctionRegistry::Metrics* m = registry_->MetricsFor(name);
          std::vector<std::string> next;
          for (std::string& payload : current) {
            const auto t0 = std::chrono::steady_clock::now();
            RunResult r = engine_->Run(*def->second, payload, meta);
            m->seconds->Observe(
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            m->invocations->Inc();
            LogLines(name);
            if (r.kind == RunResult::Kind::kKeep) {
              next.push_back(std::move(payload));
            } else if (r.kind == RunResult::Kind::kEvents) {
              changed = true;
              if (r.events.empty()) m->dropped->Inc();
              if (r.events.size() > 1) m->fanned_out->Inc(r.events.size() - 1);
              for (auto& e : r.events)
                next.push_back(std::move(e));
            } else if (r.kind == RunResult::Kind::kRetry) {
              m->retries->Inc();
              result.kind = TransformResult::Kind::kRetry;
              result.reason = "function " + name + ": " + r.message;
              failed = true;
              break;
            } else {
              m->Errors(r.error)->Inc();
              result.kind = TransformResult::Kind::kDeadLetter;
              result.reason = "function " + name + ": " + std::string(ErrorKindName(r.error)) +
                              ": " + r.message + (r.stack.empty() ? "" : "\n" + r.stack);
              failed = true;
              break;
            }
          }
          if (failed) break;
          if (next.size() > max_outputs) {
            m->Errors(ErrorKind::kOutputTooLarge)->Inc();
            result.kind = TransformResult::Kind::kDeadLetter;
            result.reason = "function " + name + ": output_too_large: the chain made " +
                            std::to_string(next.size()) + " events (at most " +
                            std::to_string(max_outputs) + ")";
            failed = true;
            break;
          }
          current = std::move(next);
        }
      }
      if (failed) continue;
      if (changed) {
        result.kind = TransformResult::Kind::kEvents;
        result.payloads = std::move(current);
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
  std::unique_ptr<Engine> engine_;            // created on the stream's thread, at first use
  std::map<std::string, uint64_t> versions_;  // last version seen per function
};

}  // namespace

std::unique_ptr<delivery::EventTransform> FunctionRegistry::NewChain(
    const std::string& destination) {
  return std::make_unique<FunctionChain>(this, destination);
}

}  // namespace sy::functions
