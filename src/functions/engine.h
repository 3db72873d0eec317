// The JavaScript engine behind user functions (docs/functions.md), kept behind this small
// interface so another engine is a swap: compile a function version once per context, run it on
// one event or a batch under a deadline, and say what came of it.
//
// Threads: an Engine is one JavaScript context and is single-threaded: create it, compile, run
// and destroy it on one thread (a destination stream's), and never have two on one thread at a
// time (SpiderMonkey allows one context per thread). InitJavaScriptOnce() must have been called (it
// is idempotent) before the first engine is created; the process shuts the engine down at exit.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sy::functions {

class KeyValueStore;

// One function's own limits (config: `function_limits:` with its `limits:` over it). A value of 0
// means the engine's (Limits below). They apply to each call of this function: a context is
// shared by the functions of one stream, so `heap_bytes` caps the whole context while this
// function runs (the other functions' globals count too; they are small).
struct FunctionLimits {
  int64_t event_timeout_ms = 0;
  int64_t batch_timeout_ms = 0;
  int64_t heap_bytes = 0;
  bool operator==(const FunctionLimits&) const = default;
};

// One version of one user function: what `functions: [{name, file, settings}]` says, with the
// source read. Immutable; a reload makes a new version (a new `version` number).
struct FunctionDef {
  std::string name;
  std::string file;           // for errors: "<file>:<line>: <message>"
  std::string source;         // the JavaScript text
  std::string settings_json;  // `settings:` as a JSON object ("{}" when absent)
  uint64_t version = 0;       // unique per process; a context caches compiled code by it
  FunctionLimits limits;
  // ctx.store of Jitsu-style functions (null: ctx.store throws).
  std::shared_ptr<KeyValueStore> store;
};

// The calling convention found in the source when it was compiled.
enum class Style {
  kRudderEvent,  // transformEvent(event, metadata)
  kRudderBatch,  // transformBatch(events, metadata)
  kJitsu,        // export default function (event, ctx)
  kSegment,      // onTrack(event, settings) … onAlias
};
std::string_view StyleName(Style s);

// The engine's limits; a function's own FunctionLimits replace the first three for its calls.
struct Limits {
  // The context's GC heap (JSGC_MAX_BYTES): an allocation bomb fails with kMemory.
  int64_t heap_bytes = 64LL << 20;
  // Wall time of one call on one event (and of the jobs its promises queue) …
  int64_t event_timeout_ms = 100;
  // … and of one transformBatch call.
  int64_t batch_timeout_ms = 1000;
  // What one event may become: at most this many events, this many JSON bytes in all.
  size_t max_outputs = 100;
  size_t max_output_bytes = 1 << 20;
  // Native stack the engine may use below the calling frame (deep recursion → kRecursion).
  size_t stack_quota_bytes = 1 << 20;
  // ctx.log lines kept per call (the rest are counted, not kept), and bytes per line.
  size_t max_log_lines = 100;
  size_t max_log_line_bytes = 1024;
};

enum class ErrorKind {
  kNone,
  kThrown,          // the function threw (an Error or any other value), or its promise rejected
  kTimeout,         // past the deadline: stopped by the interrupt callback
  kMemory,          // the heap cap was reached
  kRecursion,       // the native stack quota was reached ("too much recursion")
  kInvalidOutput,   // not an object / no valid `type` / a message that breaks the Segment spec
  kOutputTooLarge,  // more than max_outputs events or max_output_bytes
  kValidation,      // Segment style: ValidationError
};
std::string_view ErrorKindName(ErrorKind k);

// What one call made of one event.
struct RunResult {
  enum class Kind {
    kKeep,    // unchanged (Jitsu: undefined; Segment: no handler / undefined)
    kEvents,  // `events` replaces it: 1 = replaced, 0 = dropped, >1 = fanned out
    kError,   // to the dead-letter store with `message` and `stack`
    kRetry,   // Segment style: RetryError — retried like a 503
  };
  Kind kind = Kind::kKeep;
  std::vector<std::string> events;  // JSON text of each output event
  ErrorKind error = ErrorKind::kNone;
  std::string message;              // kError/kRetry: "<Name>: <message>"
  std::string stack;                // kError: the JavaScript stack, when the thrown value had one
  bool dropped_explicitly = false;  // DropEvent, "drop", null, [] (for the `dropped` metric)
};

struct BatchResult {
  // transformBatch: the outputs in order, each with the index of the input event it came from
  // (by messageId when the output kept one of an input's, else 0); or one error for the batch.
  std::vector<std::pair<size_t, std::string>> events;
  RunResult error;  // kind kError/kRetry when the batch call failed; else kKeep
};

// What a function may see of the event besides the event itself (RudderStack's metadata).
struct EventMeta {
  std::string source;
  std::string destination;
  std::string message_id;
};

// A line of ctx.log / console.log.
struct LogLine {
  std::string level;  // debug, info, warn, error
  std::string text;
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Compiles `def` in a fresh sandboxed global (once per version: a later call with the same
  // version is free). Errors: "<file>:<line>: <message>" (kInvalidArgument).
  virtual Status Compile(const FunctionDef& def) = 0;
  virtual Result<Style> StyleOf(const FunctionDef& def) = 0;
  // Runs `def` (compiled on demand) on one event (JSON text).
  virtual RunResult Run(const FunctionDef& def, std::string_view event_json,
                        const EventMeta& meta) = 0;
  // transformBatch on `events` (only for Style::kRudderBatch).
  virtual BatchResult RunBatch(const FunctionDef& def, const std::vector<std::string_view>& events,
                               const EventMeta& meta) = 0;
  // Forgets every compiled version of `name` but `keep_version` (after a reload).
  virtual void Forget(const std::string& name, uint64_t keep_version) = 0;
  // Log lines of the last Run/RunBatch (ctx.log, console.log), and how many were left out.
  virtual const std::vector<LogLine>& last_logs() const = 0;
  virtual size_t last_logs_dropped() const = 0;
};

// prelude.js (the globals and the driver every function gets), embedded at build time.
std::string_view PreludeSource();

// Process-wide engine start (JS_Init); safe to call many times and from many threads.
Status InitJavaScriptOnce();

// A SpiderMonkey 102 context on the calling thread, sandboxed as docs/functions.md says.
Result<std::unique_ptr<Engine>> NewSpiderMonkeyEngine(const Limits& limits);

}  // namespace sy::functions
