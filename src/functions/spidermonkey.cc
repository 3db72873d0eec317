// The SpiderMonkey 102 engine (engine.h). Sandbox, limits and conversions are described in
// docs/functions.md ("Limits"); the reasons are in the comments below.
//
// Layout: one JSContext per Engine (per thread). Each compiled function version gets its own
// global (its own realm and compartment), so functions never see each other's globals; the
// prelude (prelude.js) is evaluated in it first. The event crosses as JSON text: JSON.parse in
// the engine, JSON.stringify back, both inside the prelude's driver.
//
// Deadline: a watchdog thread per engine sleeps until the current call's deadline and then
// calls JS_RequestInterruptCallback; the interrupt callback returns false, which stops the
// script with an uncatchable termination. After a timeout or a heap exhaustion the whole context
// is rebuilt (its job queue and globals may hold the runaway's state); compiled versions are
// compiled again on their next use.
#include <js/Array.h>
#include <js/CompilationAndEvaluation.h>
#include <js/ContextOptions.h>
#include <js/Conversions.h>
#include <js/ErrorReport.h>
#include <js/Exception.h>
#include <js/GCAPI.h>
#include <js/Initialization.h>
#include <js/Interrupt.h>
#include <js/JSON.h>
#include <js/Modules.h>
#include <js/Promise.h>
#include <js/SourceText.h>
#include <js/Stack.h>
#include <js/String.h>
#include <js/Warnings.h>
#include <jsapi.h>
#include <jsfriendapi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <thread>

#include "functions/engine.h"
#include "functions/store.h"

namespace sy::functions {

namespace {

std::atomic<int> g_live_contexts{0};

const JSClass kGlobalClass = {
    "global", JSCLASS_GLOBAL_FLAGS, &JS::DefaultGlobalClassOps, nullptr, nullptr, nullptr};

std::string ToUtf8(JSContext* cx, JS::HandleValue v) {
  JS::RootedString s(cx, JS::ToString(cx, v));
  if (!s) {
    JS_ClearPendingException(cx);
    return "";
  }
  JS::UniqueChars chars = JS_EncodeStringToUTF8(cx, s);
  if (!chars) {
    JS_ClearPendingException(cx);
    return "";
  }
  return chars.get();
}

std::string GetString(JSContext* cx, JS::HandleObject obj, const char* name) {
  JS::RootedValue v(cx);
  if (!JS_GetProperty(cx, obj, name, &v) || v.isUndefined()) {
    JS_ClearPendingException(cx);
    return "";
  }
  return ToUtf8(cx, v);
}

int32_t GetInt(JSContext* cx, JS::HandleObject obj, const char* name) {
  JS::RootedValue v(cx);
  if (!JS_GetProperty(cx, obj, name, &v) || !v.isNumber()) {
    JS_ClearPendingException(cx);
    return -1;
  }
  return static_cast<int32_t>(v.toNumber());
}

JSString* NewUtf8(JSContext* cx, std::string_view s) {
  return JS_NewStringCopyUTF8N(cx, JS::UTF8Chars(s.data(), s.size()));
}

ErrorKind KindFromName(const std::string& kind) {
  if (kind == "timeout") return ErrorKind::kTimeout;
  if (kind == "memory") return ErrorKind::kMemory;
  if (kind == "recursion") return ErrorKind::kRecursion;
  if (kind == "invalid_output") return ErrorKind::kInvalidOutput;
  if (kind == "output_too_large") return ErrorKind::kOutputTooLarge;
  if (kind == "validation") return ErrorKind::kValidation;
  return ErrorKind::kThrown;
}

class SpiderMonkeyEngine final : public Engine {
 public:
  explicit SpiderMonkeyEngine(const Limits& limits) : limits_(limits) {}
  ~SpiderMonkeyEngine() override {
    {
      std::lock_guard lock(watch_mu_);
      watch_quit_ = true;
    }
    watch_cv_.notify_all();
    if (watchdog_.joinable()) watchdog_.join();
    DestroyContext();
  }

  Status Init() {
    if (Status s = CreateContext(); !s.ok()) return s;
    watchdog_ = std::thread([this] { Watch(); });
    return Status::Ok();
  }

  Status Compile(const FunctionDef& def) override {
    UseLimitsOf(def);
    ResetIfNeeded();
    if (!cx_) SY_RETURN_IF_ERROR(CreateContext());
    auto it = compiled_.find(def.name);
    if (it != compiled_.end() && it->second->version == def.version) return Status::Ok();
    auto c = std::make_unique<Compiled>(cx_);
    c->version = def.version;
    SY_RETURN_IF_ERROR(Build(def, c.get()));
    compiled_[def.name] = std::move(c);
    return Status::Ok();
  }

  Result<Style> StyleOf(const FunctionDef& def) override {
    SY_RETURN_IF_ERROR(Compile(def));
    return compiled_.at(def.name)->style;
  }

  void Forget(const std::string& name, uint64_t keep_version) override {
    auto it = compiled_.find(name);
    if (it != compiled_.end() && it->second->version != keep_version) compiled_.erase(it);
  }

  const std::vector<LogLine>& last_logs() const override { return logs_; }
  size_t last_logs_dropped() const override { return logs_dropped_; }

  RunResult Run(const FunctionDef& def, std::string_view event_json,
                const EventMeta& meta) override {
    UseLimitsOf(def);
    logs_.clear();
    logs_dropped_ = 0;
    if (Status s = Compile(def); !s.ok()) return Failure(ErrorKind::kThrown, s.message());
    Compiled* c = compiled_.at(def.name).get();
    if (c->style == Style::kRudderBatch) {
      // One event through transformBatch: a batch of one.
      BatchResult b = RunBatch(def, {event_json}, meta);
      if (b.error.kind != RunResult::Kind::kKeep) return b.error;
      RunResult r;
      r.kind = RunResult::Kind::kEvents;
      for (auto& [from, text] : b.events)
        r.events.push_back(std::move(text));
      r.dropped_explicitly = r.events.empty();
      return r;
    }
    JSAutoRealm realm(cx_, c->global);
    current_store_ = def.store.get();
    JS::RootedValueArray<2> args(cx_);
    JS::RootedString text(cx_, NewUtf8(cx_, event_json));
    JS::RootedObject m(cx_, MetaArray(meta));
    if (!text || !m) return AfterFailure(c, false);
    args[0].setString(text);
    args[1].setObject(*m);
    JS::RootedValue out(cx_);
    const bool ok = CallWithDeadline(c, "__sy_call", args, &out, event_timeout_ms_);
    if (!ok) return AfterFailure(c, true);
    JS::RootedValueArray<4> fin(cx_);
    fin[0].set(out);
    fin[1].setString(text);
    fin[2].setNumber(static_cast<double>(limits_.max_outputs));
    fin[3].setNumber(static_cast<double>(limits_.max_output_bytes));
    JS::RootedValue res(cx_);
    if (!CallWithDeadline(c, "__sy_finish", fin, &res, event_timeout_ms_)) {
      return AfterFailure(c, true);
    }
    current_store_ = nullptr;
    return Read(res, nullptr);
  }

  BatchResult RunBatch(const FunctionDef& def, const std::vector<std::string_view>& events,
                       const EventMeta& meta) override {
    UseLimitsOf(def);
    logs_.clear();
    logs_dropped_ = 0;
    BatchResult b;
    if (Status s = Compile(def); !s.ok()) {
      b.error = Failure(ErrorKind::kThrown, s.message());
      return b;
    }
    Compiled* c = compiled_.at(def.name).get();
    if (c->style != Style::kRudderBatch) {
      b.error = Failure(ErrorKind::kThrown, "not a transformBatch function");
      return b;
    }
    JSAutoRealm realm(cx_, c->global);
    current_store_ = def.store.get();
    JS::RootedObject texts(cx_, JS::NewArrayObject(cx_, events.size()));
    JS::RootedObject m(cx_, MetaArray(meta));
    if (!texts || !m) {
      b.error = AfterFailure(c, false);
      return b;
    }
    for (size_t i = 0; i < events.size(); ++i) {
      JS::RootedString s(cx_, NewUtf8(cx_, events[i]));
      if (!s || !JS_SetElement(cx_, texts, i, s)) {
        b.error = AfterFailure(c, false);
        return b;
      }
    }
    JS::RootedValueArray<2> args(cx_);
    args[0].setObject(*texts);
    args[1].setObject(*m);
    JS::RootedValue out(cx_);
    if (!CallWithDeadline(c, "__sy_call_batch", args, &out, batch_timeout_ms_)) {
      b.error = AfterFailure(c, true);
      return b;
    }
    JS::RootedValueArray<4> fin(cx_);
    fin[0].set(out);
    fin[1].setUndefined();  // the prelude kept the inputs and their messageIds
    fin[2].setNumber(static_cast<double>(limits_.max_outputs * std::max<size_t>(1, events.size())));
    fin[3].setNumber(
        static_cast<double>(limits_.max_output_bytes * std::max<size_t>(1, events.size())));
    JS::RootedValue res(cx_);
    if (!CallWithDeadline(c, "__sy_batch_finish", fin, &res, batch_timeout_ms_)) {
      b.error = AfterFailure(c, true);
      return b;
    }
    current_store_ = nullptr;
    std::vector<size_t> from;
    RunResult r = Read(res, &from);
    if (r.kind != RunResult::Kind::kEvents) {
      b.error = r;
      return b;
    }
    for (size_t i = 0; i < r.events.size(); ++i) {
      b.events.emplace_back(i < from.size() && from[i] < events.size() ? from[i] : 0,
                            std::move(r.events[i]));
    }
    return b;
  }

 private:
  struct Compiled {
    explicit Compiled(JSContext* cx) : global(cx) {}
    uint64_t version = 0;
    Style style = Style::kJitsu;
    JS::PersistentRootedObject global;
  };

  static RunResult Failure(ErrorKind kind, std::string message, std::string stack = "") {
    RunResult r;
    r.kind = RunResult::Kind::kError;
    r.error = kind;
    r.message = std::move(message);
    r.stack = std::move(stack);
    return r;
  }

  Status CreateContext() {
    SY_RETURN_IF_ERROR(InitJavaScriptOnce());
    cx_ = JS_NewContext(static_cast<uint32_t>(heap_cap_));
    if (!cx_) return Internal("JavaScript: cannot create a context");
    g_live_contexts++;
    JS_SetGCParameter(cx_, JSGC_MAX_BYTES, static_cast<uint32_t>(heap_cap_));
    JS_SetContextPrivate(cx_, this);
    // No WebAssembly: its memory lives outside the GC heap cap, and it is not ECMAScript.
    JS::ContextOptionsRef(cx_).setWasm(false);
    JS_SetNativeStackQuota(cx_, limits_.stack_quota_bytes);
    // Promises (async functions): jobs run on this thread when a call returns (RunJobs); set before
    // the self-hosted code, as SpiderMonkey's own shell does.
    if (!js::UseInternalJobQueues(cx_)) {
      DestroyContext();
      return Internal("JavaScript: cannot create the job queue");
    }
    if (!JS::InitSelfHostedCode(cx_)) {
      DestroyContext();
      return Internal("JavaScript: cannot initialise the self-hosted code");
    }
    // The interrupt callback stops the call at its deadline, and every kMemoryCheckMs checks the
    // context's memory: the GC heap (JSGC_BYTES) and the malloc memory held by GC things (string
    // characters, array elements, ArrayBuffer contents). JSGC_MAX_BYTES alone does not cap a
    // bomb: objects are born in the nursery and tenuring never fails, and malloc memory is not
    // part of it.
    JS_AddInterruptCallback(cx_, [](JSContext* cx) {
      auto* self = static_cast<SpiderMonkeyEngine*>(JS_GetContextPrivate(cx));
      if (self->timed_out_.load()) return false;
      if (self->memory_check_.exchange(false) && self->MemoryInUse() > self->heap_cap_) {
        self->over_memory_ = true;
        return false;
      }
      return true;
    });
    // `import` is refused: a function is one file with no access outside it.
    JS::SetModuleResolveHook(JS_GetRuntime(cx_),
                             [](JSContext* cx, JS::HandleValue, JS::HandleObject) -> JSObject* {
                               JS_ReportErrorASCII(cx, "import is not available in functions");
                               return nullptr;
                             });
    return Status::Ok();
  }

  // Bytes this context holds: GC heap plus malloc memory owned by GC things (as the GC counts
  // it for scheduling). Called in the interrupt callback, where allocating is allowed.
  int64_t MemoryInUse() {
    int64_t bytes = JS_GetGCParameter(cx_, JSGC_BYTES);
    JS::RootedObject info(cx_, js::gc::NewMemoryInfoObject(cx_));
    JS::RootedValue v(cx_);
    if (info && JS_GetProperty(cx_, info, "mallocBytes", &v) && v.isNumber()) {
      bytes += static_cast<int64_t>(v.toNumber());
    }
    JS_ClearPendingException(cx_);
    return bytes;
  }

  void DestroyContext() {
    if (!cx_) return;
    compiled_.clear();  // roots first
    JS_DestroyContext(cx_);
    cx_ = nullptr;
    g_live_contexts--;
  }

  JSObject* MetaArray(const EventMeta& meta) {
    JS::RootedObject a(cx_, JS::NewArrayObject(cx_, 3));
    if (!a) return nullptr;
    const std::string_view parts[3] = {meta.source, meta.destination, meta.message_id};
    for (uint32_t i = 0; i < 3; ++i) {
      JS::RootedString s(cx_, NewUtf8(cx_, parts[i]));
      if (!s || !JS_SetElement(cx_, a, i, s)) return nullptr;
    }
    return a;
  }

  // Natives the prelude captures.
  static bool NativeLog(JSContext* cx, unsigned argc, JS::Value* vp) {
    JS::CallArgs args = JS::CallArgsFromVp(argc, vp);
    auto* self = static_cast<SpiderMonkeyEngine*>(JS_GetContextPrivate(cx));
    if (self->logs_.size() >= self->limits_.max_log_lines) {
      self->logs_dropped_++;
    } else {
      LogLine l;
      l.level = ToUtf8(cx, args.get(0));
      l.text = ToUtf8(cx, args.get(1));
      if (l.text.size() > self->limits_.max_log_line_bytes) {
        l.text.resize(self->limits_.max_log_line_bytes);
        l.text += "…";
      }
      self->logs_.push_back(std::move(l));
    }
    args.rval().setUndefined();
    return true;
  }
  static KeyValueStore* StoreOf(JSContext* cx) {
    auto* self = static_cast<SpiderMonkeyEngine*>(JS_GetContextPrivate(cx));
    if (!self->current_store_) JS_ReportErrorASCII(cx, "ctx.store is not available here");
    return self->current_store_;
  }
  static bool NativeStoreGet(JSContext* cx, unsigned argc, JS::Value* vp) {
    JS::CallArgs args = JS::CallArgsFromVp(argc, vp);
    KeyValueStore* store = StoreOf(cx);
    if (!store) return false;
    std::optional<std::string> v = store->Get(ToUtf8(cx, args.get(0)));
    if (!v) {
      args.rval().setUndefined();
      return true;
    }
    JSString* s = NewUtf8(cx, *v);
    if (!s) return false;
    args.rval().setString(s);
    return true;
  }
  static bool NativeStoreSet(JSContext* cx, unsigned argc, JS::Value* vp) {
    JS::CallArgs args = JS::CallArgsFromVp(argc, vp);
    KeyValueStore* store = StoreOf(cx);
    if (!store) return false;
    double ttl = 0;
    if (!JS::ToNumber(cx, args.get(2), &ttl)) return false;
    Status s =
        store->Set(ToUtf8(cx, args.get(0)), ToUtf8(cx, args.get(1)), static_cast<int64_t>(ttl));
    if (!s.ok()) {
      JS_ReportErrorUTF8(cx, "ctx.store: %s", s.message().c_str());
      return false;
    }
    args.rval().setUndefined();
    return true;
  }
  static bool NativeStoreDel(JSContext* cx, unsigned argc, JS::Value* vp) {
    JS::CallArgs args = JS::CallArgsFromVp(argc, vp);
    KeyValueStore* store = StoreOf(cx);
    if (!store) return false;
    store->Delete(ToUtf8(cx, args.get(0)));
    args.rval().setUndefined();
    return true;
  }

  // "<file>:<line>: <message>" of the pending exception (a compile error), cleared.
  std::string PendingError(const std::string& file) {
    JS::ExceptionStack stack(cx_);
    if (!JS::StealPendingExceptionStack(cx_, &stack)) return file + ": unknown error";
    JS::ErrorReportBuilder report(cx_);
    if (!report.init(cx_, stack, JS::ErrorReportBuilder::WithSideEffects) || !report.report()) {
      JS_ClearPendingException(cx_);
      return file + ": unknown error";
    }
    JSErrorReport* r = report.report();
    // "SyntaxError: …" / "Error: …": the kind and the message.
    const char* msg = report.toStringResult().c_str();
    std::string out = file + ":" + std::to_string(r->lineno) + ": " + (msg ? msg : "error");
    JS_ClearPendingException(cx_);
    return out;
  }

  Status Build(const FunctionDef& def, Compiled* c) {
    JS::RealmOptions options;
    c->global = JS_NewGlobalObject(cx_, &kGlobalClass, nullptr, JS::FireOnNewGlobalHook, options);
    if (!c->global) return Internal("JavaScript: cannot create a global");
    JSAutoRealm realm(cx_, c->global);
    if (!JS::InitRealmStandardClasses(cx_)) return Internal("JavaScript: standard classes");
    if (!JS_DefineFunction(cx_, c->global, "__sy_log", NativeLog, 2, 0) ||
        !JS_DefineFunction(cx_, c->global, "__sy_store_get", NativeStoreGet, 1, 0) ||
        !JS_DefineFunction(cx_, c->global, "__sy_store_set", NativeStoreSet, 3, 0) ||
        !JS_DefineFunction(cx_, c->global, "__sy_store_del", NativeStoreDel, 1, 0)) {
      return Internal("JavaScript: cannot define the natives");
    }
    {
      const std::string_view prelude = PreludeSource();
      JS::CompileOptions opts(cx_);
      opts.setFileAndLine("prelude.js", 1);
      JS::SourceText<mozilla::Utf8Unit> src;
      JS::RootedValue rv(cx_);
      if (!src.init(cx_, prelude.data(), prelude.size(), JS::SourceOwnership::Borrowed) ||
          !JS::Evaluate(cx_, opts, src, &rv)) {
        return Internal("JavaScript: prelude: " + PendingError("prelude.js"));
      }
    }
    {
      JS::RootedValueArray<1> a(cx_);
      JS::RootedString s(cx_, NewUtf8(cx_, def.settings_json.empty() ? "{}" : def.settings_json));
      if (!s) return Internal("JavaScript: settings");
      a[0].setString(s);
      JS::RootedValue rv(cx_);
      if (!JS_CallFunctionName(cx_, c->global, "__sy_setup", a, &rv)) {
        return InvalidArgument(def.file + ": settings: " + PendingError(def.file));
      }
    }
    // Where the function's names live: the global (a script) or the module's namespace.
    JS::RootedObject names(cx_, c->global);
    JS::CompileOptions opts(cx_);
    opts.setFileAndLine(def.file.c_str(), 1);
    JS::SourceText<mozilla::Utf8Unit> src;
    if (!src.init(cx_, def.source.data(), def.source.size(), JS::SourceOwnership::Borrowed)) {
      return InvalidArgument(def.file + ": " + PendingError(def.file));
    }
    // A script first (sloppy mode, as pasted code expects); a file with `export` statements does
    // not parse as one, so it is compiled again as an ES module (strict) and its exports are read
    // from the namespace. No textual rewriting: `export` inside strings or comments stays safe.
    JS::RootedScript script(cx_, JS::Compile(cx_, opts, src));
    if (script) {
      JS::RootedValue rv(cx_);
      if (!RunTopLevel([&] { return JS_ExecuteScript(cx_, script, &rv); })) {
        return InvalidArgument(TopLevelError(def.file));
      }
    } else {
      const std::string script_error = PendingError(def.file);
      if (!std::regex_search(def.source, std::regex(R"(\bexport\b)"))) {
        return InvalidArgument(script_error);
      }
      JS::SourceText<mozilla::Utf8Unit> msrc;
      if (!msrc.init(cx_, def.source.data(), def.source.size(), JS::SourceOwnership::Borrowed)) {
        return InvalidArgument(def.file + ": " + PendingError(def.file));
      }
      JS::RootedObject module(cx_, JS::CompileModule(cx_, opts, msrc));
      if (!module) return InvalidArgument(PendingError(def.file));
      if (!JS::ModuleInstantiate(cx_, module)) return InvalidArgument(PendingError(def.file));
      JS::RootedValue rv(cx_);
      if (!RunTopLevel([&] { return JS::ModuleEvaluate(cx_, module, &rv); })) {
        return InvalidArgument(TopLevelError(def.file));
      }
      names = JS::GetModuleNamespace(cx_, module);
      if (!names) return InvalidArgument(PendingError(def.file));
    }
    JS::RootedValueArray<1> a(cx_);
    a[0].setObject(*names);
    JS::RootedValue style(cx_);
    if (!JS_CallFunctionName(cx_, c->global, "__sy_find", a, &style) || !style.isNumber()) {
      return InvalidArgument(PendingError(def.file));
    }
    switch (static_cast<int>(style.toNumber())) {
      case 0:
        c->style = Style::kRudderEvent;
        break;
      case 1:
        c->style = Style::kRudderBatch;
        break;
      case 2:
        c->style = Style::kJitsu;
        break;
      case 3:
        c->style = Style::kSegment;
        break;
      default:
        return InvalidArgument(def.file +
                               ":1: defines none of transformEvent, transformBatch, a default "
                               "export, onTrack/onIdentify/onPage/onScreen/onGroup/onAlias");
    }
    return Status::Ok();
  }

  // Top-level code runs under the per-batch deadline too (an infinite loop at load time).
  template <typename F>
  bool RunTopLevel(F run) {
    Arm(batch_timeout_ms_);
    bool ok = run();
    if (ok) js::RunJobs(cx_);
    Disarm();
    return ok && !JS_IsExceptionPending(cx_) && !timed_out_.load() && !over_memory_;
  }
  std::string TopLevelError(const std::string& file) {
    if (over_memory_) {
      over_memory_ = false;
      JS_ClearPendingException(cx_);
      return file + ":1: the top-level code ran out of memory";
    }
    if (timed_out_.exchange(false)) {
      JS_ClearPendingException(cx_);
      return file + ":1: the top-level code ran past the time limit";
    }
    if (!JS_IsExceptionPending(cx_)) return file + ":1: the top-level code was stopped";
    return PendingError(file);
  }

  // Calls global.<name>(args) and settles a returned promise (running its jobs), all under one
  // deadline. False: an exception is pending, or the deadline / heap cap stopped it.
  template <size_t N>
  bool CallWithDeadline(Compiled* c, const char* name, JS::RootedValueArray<N>& args,
                        JS::MutableHandleValue out, int64_t timeout_ms) {
    Arm(timeout_ms);
    bool ok = JS_CallFunctionName(cx_, c->global, name, args, out);
    if (ok && out.isObject()) {
      JS::RootedObject obj(cx_, &out.toObject());
      if (JS::IsPromiseObject(obj)) {
        js::RunJobs(cx_);
        switch (JS::GetPromiseState(obj)) {
          case JS::PromiseState::Fulfilled:
            out.set(JS::GetPromiseResult(obj));
            break;
          case JS::PromiseState::Rejected: {
            JS::RootedValue reason(cx_, JS::GetPromiseResult(obj));
            JS_SetPendingException(cx_, reason);
            ok = false;
            break;
          }
          case JS::PromiseState::Pending:
            if (!timed_out_.load()) {
              // Nothing can settle it later: there are no timers or I/O in the sandbox.
              JS_ReportErrorASCII(cx_, "the function's promise never settled");
            }
            ok = false;
            break;
        }
      }
    }
    Disarm();
    return ok && !timed_out_.load() && !over_memory_;
  }

  // What a failed call means; rebuilds the context after a timeout or a heap exhaustion.
  RunResult AfterFailure(Compiled* c, bool classify) {
    current_store_ = nullptr;
    if (over_memory_) {
      over_memory_ = false;
      timed_out_ = false;
      JS_ClearPendingException(cx_);
      Reset();
      return Failure(ErrorKind::kMemory, "out of memory (heap cap reached)");
    }
    if (timed_out_.exchange(false)) {
      JS_ClearPendingException(cx_);
      Reset();
      return Failure(ErrorKind::kTimeout, "stopped: past the time limit");
    }
    JS::RootedValue exc(cx_);
    if (!JS_IsExceptionPending(cx_) || !JS_GetPendingException(cx_, &exc)) {
      // An uncatchable stop without our deadline: the engine's own (out of memory).
      JS_ClearPendingException(cx_);
      Reset();
      return Failure(ErrorKind::kMemory, "out of memory (heap cap reached)");
    }
    JS_ClearPendingException(cx_);
    if (exc.isString()) {
      // SpiderMonkey reports heap exhaustion as the string "out of memory".
      std::string s = ToUtf8(cx_, exc);
      if (s == "out of memory") {
        Reset();
        return Failure(ErrorKind::kMemory, "out of memory (heap cap reached)");
      }
    }
    if (!classify) return Failure(ErrorKind::kThrown, "engine error");
    JS_GC(cx_);  // the failed call's garbage, before classifying (it may have been a bomb)
    JS::RootedValueArray<1> a(cx_);
    a[0].set(exc);
    JS::RootedValue res(cx_);
    Arm(event_timeout_ms_);
    const bool ok = JS_CallFunctionName(cx_, c->global, "__sy_fail", a, &res);
    Disarm();
    if (!ok || timed_out_.exchange(false)) {
      JS_ClearPendingException(cx_);
      return Failure(ErrorKind::kThrown, "uncaught exception");
    }
    return Read(res, nullptr);
  }

  // The prelude's result object → RunResult.
  RunResult Read(JS::HandleValue res, std::vector<size_t>* from) {
    if (!res.isObject()) return Failure(ErrorKind::kThrown, "engine: no result");
    JS::RootedObject o(cx_, &res.toObject());
    RunResult r;
    switch (GetInt(cx_, o, "k")) {
      case 0:
        r.kind = RunResult::Kind::kKeep;
        return r;
      case 1: {
        r.kind = RunResult::Kind::kEvents;
        JS::RootedValue d(cx_);
        r.dropped_explicitly = JS_GetProperty(cx_, o, "d", &d) && d.isBoolean() && d.toBoolean();
        JS::RootedValue ev(cx_);
        if (!JS_GetProperty(cx_, o, "e", &ev) || !ev.isObject()) return r;
        JS::RootedObject arr(cx_, &ev.toObject());
        uint32_t n = 0;
        if (!JS::GetArrayLength(cx_, arr, &n)) n = 0;
        for (uint32_t i = 0; i < n; ++i) {
          JS::RootedValue v(cx_);
          if (JS_GetElement(cx_, arr, i, &v)) r.events.push_back(ToUtf8(cx_, v));
        }
        if (from) {
          JS::RootedValue f(cx_);
          if (JS_GetProperty(cx_, o, "f", &f) && f.isObject()) {
            JS::RootedObject fa(cx_, &f.toObject());
            for (uint32_t i = 0; i < n; ++i) {
              JS::RootedValue v(cx_);
              from->push_back(JS_GetElement(cx_, fa, i, &v) && v.isNumber()
                                  ? static_cast<size_t>(v.toNumber())
                                  : 0);
            }
          }
        }
        JS_ClearPendingException(cx_);
        return r;
      }
      case 3:
        r.kind = RunResult::Kind::kRetry;
        r.message = GetString(cx_, o, "m");
        return r;
      default:
        return Failure(KindFromName(GetString(cx_, o, "kind")), GetString(cx_, o, "m"),
                       GetString(cx_, o, "s"));
    }
  }

  // The deadlines and the memory cap of `def`'s calls: its own limits, else the engine's.
  void UseLimitsOf(const FunctionDef& def) {
    const FunctionLimits& f = def.limits;
    event_timeout_ms_ = f.event_timeout_ms > 0 ? f.event_timeout_ms : limits_.event_timeout_ms;
    batch_timeout_ms_ = f.batch_timeout_ms > 0 ? f.batch_timeout_ms : limits_.batch_timeout_ms;
    const int64_t heap = f.heap_bytes > 0 ? f.heap_bytes : limits_.heap_bytes;
    if (heap != heap_cap_) {
      heap_cap_ = heap;
      if (cx_) JS_SetGCParameter(cx_, JSGC_MAX_BYTES, static_cast<uint32_t>(heap_cap_));
    }
  }

  // The context is rebuilt at the start of the next call, not here: the failed call's rooted
  // values and realm are still on the stack.
  void Reset() { reset_needed_ = true; }
  void ResetIfNeeded() {
    if (!reset_needed_) return;
    reset_needed_ = false;
    DestroyContext();
    if (Status s = CreateContext(); !s.ok()) cx_ = nullptr;  // Compile retries on next use
  }

  // The watchdog: stops the current call at its deadline.
  // Arm/Disarm cost a lock and no wake-up while calls keep coming: the watchdog ticks every
  // kMemoryCheckMs while active and sleeps for good only after kWatchIdleMs without a call, so
  // only the first call after a quiet spell signals it.
  void Arm(int64_t timeout_ms) {
    std::lock_guard lock(watch_mu_);
    timed_out_ = false;
    const auto now = std::chrono::steady_clock::now();
    deadline_ = now + std::chrono::milliseconds(timeout_ms);
    next_memory_check_ = now + std::chrono::milliseconds(kMemoryCheckMs);
    armed_ = true;
    last_armed_ = now;
    if (watch_idle_) {
      watch_idle_ = false;
      watch_cv_.notify_all();
    }
  }
  void Disarm() {
    std::lock_guard lock(watch_mu_);
    armed_ = false;
  }
  void Watch() {
    std::unique_lock lock(watch_mu_);
    while (!watch_quit_) {
      const auto now = std::chrono::steady_clock::now();
      if (!armed_) {
        if (now - last_armed_ >= std::chrono::milliseconds(kWatchIdleMs)) {
          watch_idle_ = true;
          watch_cv_.wait(lock, [this] { return watch_quit_ || !watch_idle_; });
        } else {
          watch_cv_.wait_for(lock, std::chrono::milliseconds(kMemoryCheckMs));
        }
        continue;
      }
      if (now >= deadline_) {
        armed_ = false;
        timed_out_ = true;
        JS_RequestInterruptCallback(cx_);  // thread-safe by contract
        continue;
      }
      if (now >= next_memory_check_) {
        memory_check_ = true;
        JS_RequestInterruptCallback(cx_);
        next_memory_check_ = now + std::chrono::milliseconds(kMemoryCheckMs);
      }
      watch_cv_.wait_until(lock, std::min(deadline_, next_memory_check_));
    }
  }

  Limits limits_;
  // Of the function being called (UseLimitsOf); engine thread only.
  int64_t event_timeout_ms_ = limits_.event_timeout_ms;
  int64_t batch_timeout_ms_ = limits_.batch_timeout_ms;
  int64_t heap_cap_ = limits_.heap_bytes;
  JSContext* cx_ = nullptr;
  std::map<std::string, std::unique_ptr<Compiled>> compiled_;  // by function name
  KeyValueStore* current_store_ = nullptr;
  std::vector<LogLine> logs_;
  size_t logs_dropped_ = 0;

  // How often a running call's memory is checked (interrupt callback): a bomb overshoots the
  // cap by at most what it allocates in this time (or by one single huge allocation).
  static constexpr int64_t kMemoryCheckMs = 5;
  static constexpr int64_t kWatchIdleMs = 1000;
  std::atomic<bool> timed_out_{false};
  std::atomic<bool> memory_check_{false};
  bool over_memory_ = false;  // engine thread only
  bool reset_needed_ = false;
  std::chrono::steady_clock::time_point next_memory_check_{};
  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  std::chrono::steady_clock::time_point deadline_{};
  bool armed_ = false;
  bool watch_idle_ = false;  // waiting for a notify (Arm after a quiet spell)
  std::chrono::steady_clock::time_point last_armed_{};
  bool watch_quit_ = false;
  std::thread watchdog_;
};

}  // namespace

std::string_view StyleName(Style s) {
  switch (s) {
    case Style::kRudderEvent:
      return "rudderstack";
    case Style::kRudderBatch:
      return "rudderstack_batch";
    case Style::kJitsu:
      return "jitsu";
    case Style::kSegment:
      return "segment";
  }
  return "?";
}

std::string_view ErrorKindName(ErrorKind k) {
  switch (k) {
    case ErrorKind::kNone:
      return "none";
    case ErrorKind::kThrown:
      return "thrown";
    case ErrorKind::kTimeout:
      return "timeout";
    case ErrorKind::kMemory:
      return "memory";
    case ErrorKind::kRecursion:
      return "recursion";
    case ErrorKind::kInvalidOutput:
      return "invalid_output";
    case ErrorKind::kOutputTooLarge:
      return "output_too_large";
    case ErrorKind::kValidation:
      return "validation";
  }
  return "?";
}

Status InitJavaScriptOnce() {
  static const bool ok = [] {
    if (!JS_Init()) return false;
    // Shut down at exit when no context is left (a context still alive, e.g. on a thread that
    // outlives main, would make JS_ShutDown unsafe: then the process just exits).
    std::atexit([] {
      if (g_live_contexts.load() == 0) JS_ShutDown();
    });
    return true;
  }();
  return ok ? Status::Ok() : Internal("JavaScript: JS_Init failed");
}

Result<std::unique_ptr<Engine>> NewSpiderMonkeyEngine(const Limits& limits) {
  auto e = std::make_unique<SpiderMonkeyEngine>(limits);
  SY_RETURN_IF_ERROR(e->Init());
  return std::unique_ptr<Engine>(std::move(e));
}

}  // namespace sy::functions
