// FunctionRegistry: the user functions of the running configuration (docs/functions.md) — each
// function's current version, which functions a source and a destination run, per-function
// metrics and ctx.store — and the chains the destination streams run (delivery::EventTransform).
//
// Reload: Load() reads every function's file again; a function whose source and settings did not
// change keeps its version (its compiled code stays cached in every engine); a changed one is
// compiled first (on a scratch engine on a thread of its own) and only replaces the old version if
// it compiles. A function that fails keeps running its previous version; one that is new and
// fails makes Load fail as a whole (nothing changes). Chains read the current set at the start of
// each batch, so a reload reaches running streams without restarting them and without dropping
// the events they hold.
//
// Threads: Load from the control thread; chains on their streams' threads; Snapshot anywhere.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/env.h"
#include "base/metrics.h"
#include "base/status.h"
#include "config/config.h"
#include "delivery/transform.h"
#include "functions/engine.h"
#include "functions/store.h"

namespace sy::functions {

// Reads `fc.file` (or takes its inline `source`) into a new version (ids unique in the
// process), with its limits. `store` may be null.
// The name errors give a function's source: its file, or "<name>.js" for inline source.
std::string FunctionFileLabel(const config::FunctionConfig& fc);

Result<std::shared_ptr<FunctionDef>> ReadFunction(const config::FunctionConfig& fc,
                                                  std::shared_ptr<KeyValueStore> store);

// Compiles every function of `config` on a thread of its own (a fresh engine): every error,
// one per line ("<file>:<line>: <message>"). `switchyard functions check`, check-config.
Status CheckFunctions(const config::Config& config, const Limits& limits = {});

// One run of one function on a sample event: what `switchyard functions test` prints and
// POST /api/v1/functions/{name}/test answers (one code path). On a thread of its own with a fresh
// engine; ctx.store in memory, so a test never changes what the server's functions stored.
struct FunctionTestRun {
  Status status;  // not OK: the function did not compile ("<file>:<line>: <message>")
  Style style = Style::kJitsu;
  RunResult result;
  std::vector<LogLine> logs;
  size_t logs_dropped = 0;
  double compile_ms = 0;
  double run_ms = 0;
};
FunctionTestRun TestFunction(const config::FunctionConfig& fc, std::string_view event_json);

// Whether events of destination `d` run any function (its own or its sources').
bool HasFunctions(const config::Config& config, const config::DestinationConfig& d);

struct FunctionSet {
  std::map<std::string, std::shared_ptr<const FunctionDef>> defs;
  std::map<std::string, std::vector<std::string>> by_source;       // source → functions
  std::map<std::string, std::vector<std::string>> by_destination;  // destination → functions
};

class FunctionRegistry {
 public:
  struct Options {
    std::string data_dir;  // ctx.store files under data_dir/functions; "" = in memory only
    Env* env = nullptr;    // default Env::Default()
    Clock* clock = nullptr;
    MetricsRegistry* metrics = nullptr;  // required
    Limits limits;
    // false: ctx.store files are read but never written (`switchyard replay` beside a server).
    bool persist_stores = true;
  };
  explicit FunctionRegistry(Options options);

  // See the header comment. Errors name the file, line and message of each function that did
  // not compile.
  Status Load(const config::Config& config);
  std::shared_ptr<const FunctionSet> Snapshot() const;

  // The chain for destination `destination`'s stream. A transformBatch function gets at most
  // `batch_events` events a call (the destination's `batch.max_events`; 0: all that one
  // Transform call holds).
  std::unique_ptr<delivery::EventTransform> NewChain(const std::string& destination,
                                                     size_t batch_events = 0);

  const Limits& limits() const { return options_.limits; }

  struct Metrics {
    Counter* invocations = nullptr;
    Counter* dropped = nullptr;
    Counter* fanned_out = nullptr;
    Counter* retries = nullptr;
    Histogram* seconds = nullptr;
    Counter* Errors(ErrorKind kind);
    MetricsRegistry* registry = nullptr;
    std::string name;
  };
  Metrics* MetricsFor(const std::string& name);

 private:
  Options options_;
  mutable std::mutex mu_;
  std::shared_ptr<const FunctionSet> set_ = std::make_shared<FunctionSet>();
  std::map<std::string, std::shared_ptr<KeyValueStore>> stores_;  // kept over reloads
  std::map<std::string, std::unique_ptr<Metrics>> metrics_;
};

}  // namespace sy::functions
