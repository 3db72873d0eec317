// The engine: the three styles and every return convention, every limit crossed, compile
// errors, the sandbox's global, ctx.store (TTL, bounds, durability).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "base/clock.h"
#include "base/env.h"
#include "base/metrics.h"
#include "config/config.h"
#include "delivery/transform.h"
#include "functions/engine.h"
#include "functions/number_text.h"
#include "functions/registry.h"
#include "functions/store.h"

namespace sy::functions {
namespace {

const char* kTrack = R"({"type":"track","event":"Order Completed","userId":"u1","messageId":"m1",)"
                     R"("properties":{"email":"a@b.c","total":9.99}})";

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Limits l;
    l.event_timeout_ms = 200;
    l.batch_timeout_ms = 300;
    l.heap_bytes = 32LL << 20;
    auto e = NewSpiderMonkeyEngine(l);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
  }
  FunctionDef Def(std::string source, std::string settings = "{}") {
    FunctionDef d;
    d.name = "f";
    d.file = "f.js";
    d.source = std::move(source);
    d.settings_json = std::move(settings);
    d.version = ++version_;
    return d;
  }
  RunResult Run(const FunctionDef& d, std::string_view event = kTrack) {
    return engine_->Run(d, event, EventMeta{"web", "hook", "m1"});
  }
  std::unique_ptr<Engine> engine_;
  uint64_t version_ = 0;
};

TEST_F(EngineTest, RudderStackReplacesFansOutAndDrops) {
  auto d = Def(R"(export function transformEvent(event, metadata) {
    if (event.event === 'drop me') return null;
    if (event.event === 'twice') return [event, {...event, event: 'copy'}];
    event.properties.email = undefined;
    event.context = {source: metadata(event).sourceName};
    return event;
  })");
  ASSERT_EQ(engine_->StyleOf(d).value(), Style::kRudderEvent);
  RunResult r = Run(d);
  ASSERT_EQ(r.kind, RunResult::Kind::kEvents) << r.message;
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].find("a@b.c"), std::string::npos);
  EXPECT_NE(r.events[0].find(R"("context":{"source":"web"})"), std::string::npos);
  r = Run(d, R"({"type":"track","event":"drop me","userId":"u"})");
  EXPECT_EQ(r.kind, RunResult::Kind::kEvents);
  EXPECT_TRUE(r.events.empty());
  EXPECT_TRUE(r.dropped_explicitly);
  r = Run(d, R"({"type":"track","event":"twice","userId":"u","messageId":"x"})");
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_NE(r.events[0].find(R"("messageId":"x")"), std::string::npos);
  // Copies of one event get their own messageId (receivers dedupe by it).
  EXPECT_NE(r.events[1].find(R"("messageId":"x-2")"), std::string::npos);
}

TEST_F(EngineTest, RudderStackWithoutExportIsAScriptAndUndefinedDrops) {
  auto d = Def("function transformEvent(event) { if (event.userId === 'u1') return event; }");
  EXPECT_EQ(Run(d).events.size(), 1u);
  RunResult r = Run(d, R"({"type":"track","event":"e","userId":"u2"})");
  EXPECT_EQ(r.kind, RunResult::Kind::kEvents);
  EXPECT_TRUE(r.events.empty());
}

TEST_F(EngineTest, RudderStackBatchAttributesOutputsByMessageId) {
  auto d = Def(R"(export function transformBatch(events, metadata) {
    return events.filter(e => e.event !== 'no').concat([{type:'track', event:'summary', userId:'s'}]);
  })");
  ASSERT_EQ(engine_->StyleOf(d).value(), Style::kRudderBatch);
  std::vector<std::string_view> in = {
      R"({"type":"track","event":"a","userId":"u","messageId":"m0"})",
      R"({"type":"track","event":"no","userId":"u","messageId":"m1"})",
      R"({"type":"track","event":"c","userId":"u","messageId":"m2"})"};
  BatchResult b = engine_->RunBatch(d, in, EventMeta{"web", "hook", ""});
  ASSERT_EQ(b.error.kind, RunResult::Kind::kKeep) << b.error.message;
  ASSERT_EQ(b.events.size(), 3u);
  EXPECT_EQ(b.events[0].first, 0u);
  EXPECT_EQ(b.events[1].first, 2u);
  EXPECT_EQ(b.events[2].first, 0u);  // no input's messageId: the batch's first event
}

TEST_F(EngineTest, JitsuConventions) {
  auto d = Def(R"(export default async function (event, ctx) {
    ctx.log.info('seen', event.event, {n: 1});
    switch (event.event) {
      case 'keep': return undefined;
      case 'drop': return 'drop';
      case 'null': return null;
      case 'empty': return [];
      case 'props': return {...event, properties: {plan: ctx.props.plan}};
      case 'many': return [event, {...event, event: 'b'}, {...event, event: 'c'}];
    }
  })",
               R"({"plan":"pro"})");
  ASSERT_EQ(engine_->StyleOf(d).value(), Style::kJitsu);
  auto ev = [](const char* name) {
    return std::string(R"({"type":"track","userId":"u","event":")") + name + "\"}";
  };
  EXPECT_EQ(Run(d, ev("keep")).kind, RunResult::Kind::kKeep);
  ASSERT_EQ(engine_->last_logs().size(), 1u);
  EXPECT_EQ(engine_->last_logs()[0].level, "info");
  EXPECT_EQ(engine_->last_logs()[0].text, R"(seen keep {"n":1})");
  for (const char* drop : {"drop", "null", "empty"}) {
    RunResult r = Run(d, ev(drop));
    EXPECT_EQ(r.kind, RunResult::Kind::kEvents) << drop;
    EXPECT_TRUE(r.events.empty()) << drop;
    EXPECT_TRUE(r.dropped_explicitly) << drop;
  }
  RunResult r = Run(d, ev("props"));
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_NE(r.events[0].find(R"("properties":{"plan":"pro"})"), std::string::npos);
  EXPECT_EQ(Run(d, ev("many")).events.size(), 3u);
}

TEST_F(EngineTest, SegmentHandlersAndErrors) {
  auto d = Def(R"(
    async function onTrack(event, settings) {
      if (event.event === 'spam') throw new DropEvent('spam');
      if (event.event === 'bad') throw new ValidationError('no email');
      if (event.event === 'later') throw new RetryError('upstream busy');
      event.event = settings.prefix + event.event;
      return event;
    }
    async function onIdentify(event) { event.traits = {}; return event; })",
               R"({"prefix":"web "})");
  ASSERT_EQ(engine_->StyleOf(d).value(), Style::kSegment);
  RunResult r = Run(d);
  ASSERT_EQ(r.events.size(), 1u) << r.message;
  EXPECT_NE(r.events[0].find(R"("event":"web Order Completed")"), std::string::npos);
  r = Run(d, R"({"type":"track","event":"spam","userId":"u"})");
  EXPECT_EQ(r.kind, RunResult::Kind::kEvents);
  EXPECT_TRUE(r.dropped_explicitly);
  r = Run(d, R"({"type":"track","event":"bad","userId":"u"})");
  EXPECT_EQ(r.kind, RunResult::Kind::kError);
  EXPECT_EQ(r.error, ErrorKind::kValidation);
  EXPECT_EQ(r.message, "ValidationError: no email");
  EXPECT_NE(r.stack.find("onTrack@f.js:4"), std::string::npos) << r.stack;
  r = Run(d, R"({"type":"track","event":"later","userId":"u"})");
  EXPECT_EQ(r.kind, RunResult::Kind::kRetry);
  EXPECT_EQ(r.message, "RetryError: upstream busy");
  // No handler for the type: kept unchanged.
  EXPECT_EQ(Run(d, R"({"type":"page","userId":"u"})").kind, RunResult::Kind::kKeep);
  EXPECT_EQ(Run(d, R"({"type":"identify","userId":"u","traits":{"a":1}})").events[0],
            R"({"type":"identify","userId":"u","traits":{}})");
}

TEST_F(EngineTest, ThrownErrorsAndNonErrorsAreReported) {
  auto d = Def(R"(function transformEvent(e) {
    if (e.event === 'str') throw 'a string';
    if (e.event === 'num') throw 42;
    if (e.event === 'obj') throw {code: 7};
    return e.properties.missing.field;
  })");
  RunResult r = Run(d);
  EXPECT_EQ(r.kind, RunResult::Kind::kError);
  EXPECT_EQ(r.error, ErrorKind::kThrown);
  EXPECT_NE(r.message.find("TypeError"), std::string::npos) << r.message;
  EXPECT_NE(r.stack.find("transformEvent@f.js:5"), std::string::npos) << r.stack;
  r = Run(d, R"({"type":"track","event":"str","userId":"u"})");
  EXPECT_EQ(r.error, ErrorKind::kThrown);
  EXPECT_EQ(r.message, "uncaught a string");
  EXPECT_EQ(Run(d, R"({"type":"track","event":"num","userId":"u"})").message, "uncaught 42");
  EXPECT_EQ(Run(d, R"({"type":"track","event":"obj","userId":"u"})").message,
            R"(uncaught {"code":7})");
}

TEST_F(EngineTest, InvalidOutputIsNamed) {
  auto d = Def(R"(export default function (e) {
    switch (e.event) {
      case 'num': return [5];
      case 'notype': return {event: 'x', userId: 'u'};
      case 'badtype': return {type: 'purchase', userId: 'u'};
      case 'noevent': return {type: 'track', userId: 'u'};
      case 'noid': return {type: 'track', event: 'x'};
    }
  })");
  auto ev = [](const char* name) {
    return std::string(R"({"type":"track","userId":"u","event":")") + name + "\"}";
  };
  const std::pair<const char*, const char*> cases[] = {
      {"num", "output 0: not an object"},
      {"notype", "output 0: missing type"},
      {"badtype", "output 0: unknown type \"purchase\""},
      {"noevent", "output 0: a track without event"},
      {"noid", "output 0: neither userId nor anonymousId"}};
  for (const auto& [name, why] : cases) {
    RunResult r = Run(d, ev(name));
    EXPECT_EQ(r.kind, RunResult::Kind::kError) << name;
    EXPECT_EQ(r.error, ErrorKind::kInvalidOutput) << name;
    EXPECT_EQ(r.message, why);
  }
}

TEST_F(EngineTest, InfiniteLoopIsStoppedAndTheEngineStaysUsable) {
  auto loop = Def("function transformEvent(e) { for (;;) {} }");
  const auto t0 = std::chrono::steady_clock::now();
  RunResult r = Run(loop);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_EQ(r.error, ErrorKind::kTimeout);
  EXPECT_GE(ms, 150);
  EXPECT_LT(ms, 2000);
  // An async function that loops in a promise job is stopped too.
  auto job_loop = Def("export default async function (e) { await null; while (true) {} }");
  EXPECT_EQ(Run(job_loop).error, ErrorKind::kTimeout);
  auto ok = Def("function transformEvent(e) { return e; }");
  EXPECT_EQ(Run(ok).events.size(), 1u);
  // The timed-out function still times out (recompiled in the fresh context), and stays stopped.
  EXPECT_EQ(Run(loop).error, ErrorKind::kTimeout);
}

TEST_F(EngineTest, BatchDeadline) {
  auto d = Def("function transformBatch(events) { while (true) {} }");
  BatchResult b = engine_->RunBatch(d, {kTrack}, EventMeta{});
  EXPECT_EQ(b.error.error, ErrorKind::kTimeout);
}

TEST_F(EngineTest, AFunctionsOwnLimitsReplaceTheEngines) {
  // The fixture's engine: 200 ms per event. This function's own: 20 ms — a loop stops there.
  auto quick = Def("function transformEvent(e) { while (true) {} }");
  quick.limits.event_timeout_ms = 20;
  const auto t0 = std::chrono::steady_clock::now();
  RunResult r = Run(quick);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.error, ErrorKind::kTimeout);
  EXPECT_LT(took, std::chrono::milliseconds(180));
  // A longer limit than the engine's lets a call past 200 ms finish.
  auto slow = Def(R"(function transformEvent(e) {
    const end = Date.now() + 300; while (Date.now() < end) {} return e;
  })");
  slow.limits.event_timeout_ms = 5'000;
  r = Run(slow);
  EXPECT_EQ(r.kind, RunResult::Kind::kEvents) << r.message;
  // The batch deadline is the function's own too.
  auto batch = Def("function transformBatch(events) { while (true) {} }");
  batch.limits.batch_timeout_ms = 20;
  BatchResult b = engine_->RunBatch(batch, {kTrack}, EventMeta{});
  EXPECT_EQ(b.error.error, ErrorKind::kTimeout);
  // A memory cap below the engine's (32 MiB) stops a bomb at the function's; the next function
  // runs under its own (the engine's) again.
  auto bomb = Def(R"(function transformEvent(e) {
    const a = []; for (;;) a.push('y'.repeat(1 << 16) + a.length);
  })");
  bomb.limits.heap_bytes = 16LL << 20;
  bomb.limits.event_timeout_ms = 10'000;
  r = Run(bomb);
  EXPECT_EQ(r.error, ErrorKind::kMemory) << r.message;
  auto keep = Def("function transformEvent(e) { return e; }");
  EXPECT_EQ(Run(keep).kind, RunResult::Kind::kEvents);
}

TEST_F(EngineTest, AllocationBombHitsTheHeapCap) {
  // A longer deadline than the fixture's, so the cap (not the clock) stops them on a busy machine.
  Limits l;
  l.event_timeout_ms = 10'000;
  l.heap_bytes = 32LL << 20;
  engine_.reset();  // one context per thread
  engine_ = std::move(NewSpiderMonkeyEngine(l).value());
  auto d = Def(R"(function transformEvent(e) {
    const a = [];
    for (;;) a.push({n: a.length, s: 'x' + a.length});
  })");
  RunResult r = Run(d);
  EXPECT_EQ(r.kind, RunResult::Kind::kError);
  EXPECT_EQ(r.error, ErrorKind::kMemory) << r.message;
  auto strings = Def(R"(function transformEvent(e) {
    let s = 'x'; const keep = [];
    for (;;) { s = s + s; keep.push(s.slice(1)); }
  })");
  r = Run(strings);
  EXPECT_EQ(r.kind, RunResult::Kind::kError);
  EXPECT_EQ(r.error, ErrorKind::kMemory) << r.message;
  auto buffers = Def(R"(function transformEvent(e) {
    const a = []; for (;;) a.push(new ArrayBuffer(1 << 20), 'y'.repeat(1 << 20) + a.length);
  })");
  r = Run(buffers);
  EXPECT_EQ(r.error, ErrorKind::kMemory) << r.message;
  auto ok = Def("function transformEvent(e) { return e; }");
  EXPECT_EQ(Run(ok).events.size(), 1u);
}

TEST_F(EngineTest, DeepRecursionIsCaught) {
  auto d = Def("function f(n) { return f(n + 1) + 1; } function transformEvent(e) { f(0); }");
  RunResult r = Run(d);
  EXPECT_EQ(r.kind, RunResult::Kind::kError);
  EXPECT_EQ(r.error, ErrorKind::kRecursion) << r.message;
  EXPECT_EQ(Run(Def("function transformEvent(e) { return e; }")).events.size(), 1u);
}

TEST_F(EngineTest, HugeOutputIsCapped) {
  auto many = Def("function transformEvent(e) { return Array.from({length: 101}, () => e); }");
  RunResult r = Run(many);
  EXPECT_EQ(r.error, ErrorKind::kOutputTooLarge);
  EXPECT_EQ(r.message, "101 events (at most 100)");
  auto big =
      Def("function transformEvent(e) { e.properties.blob = 'x'.repeat(2 << 20); return e; }");
  r = Run(big);
  EXPECT_EQ(r.error, ErrorKind::kOutputTooLarge);
}

TEST_F(EngineTest, CompileErrorsNameFileAndLine) {
  auto d = Def("function transformEvent(e) {\n  return e +;\n}");
  Status s = engine_->Compile(d);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("f.js:2: SyntaxError"), std::string::npos) << s.message();
  auto modern = Def("export default function (e) {\n  const x = ;\n}");
  s = engine_->Compile(modern);
  EXPECT_NE(s.message().find("f.js:2:"), std::string::npos) << s.message();
  auto none = Def("function hello() {}");
  EXPECT_NE(engine_->Compile(none).message().find("defines none of"), std::string::npos);
  auto top_throw = Def("throw new Error('at load');\nfunction transformEvent(e) { return e; }");
  EXPECT_NE(engine_->Compile(top_throw).message().find("f.js:1: Error: at load"), std::string::npos)
      << engine_->Compile(top_throw).message();
  auto top_loop = Def("while (true) {}");
  EXPECT_NE(engine_->Compile(top_loop).message().find("time limit"), std::string::npos);
  auto imports = Def("import x from 'fs';\nexport default function (e) { return e; }");
  EXPECT_FALSE(engine_->Compile(imports).ok());
  // `export` inside a string of a script does not make it a module.
  auto str = Def("var s = 'export default';\nfunction transformEvent(e) { e.s = s; return e; }");
  EXPECT_TRUE(engine_->Compile(str).ok());
}

TEST_F(EngineTest, ModernSyntax) {
  auto d = Def(R"(export default (e) => {
    const tags = [...(e.properties?.tags ?? []), 'x'];
    return {...e, properties: {...e.properties, tags, has: tags.includes('x')}};
  })");
  RunResult r = Run(d);
  ASSERT_EQ(r.events.size(), 1u) << r.message;
  EXPECT_NE(r.events[0].find(R"("tags":["x"],"has":true)"), std::string::npos);
}

TEST_F(EngineTest, TheGlobalHasOnlyECMAScript) {
  auto d = Def(R"(function transformEvent(e) {
    e.properties = {names: Object.getOwnPropertyNames(globalThis).filter(n => !n.startsWith('__sy_')).sort()};
    return e;
  })");
  RunResult r = Run(d);
  ASSERT_EQ(r.events.size(), 1u);
  for (const char* absent : {"\"print\"", "\"read\"", "\"load\"", "\"os\"", "\"quit\"",
                             "\"setTimeout\"", "\"fetch\"", "\"require\"", "\"WebAssembly\"",
                             "\"SharedArrayBuffer\"", "\"Atomics\"", "\"XMLHttpRequest\""}) {
    EXPECT_EQ(r.events[0].find(absent), std::string::npos) << absent;
  }
  for (const char* present :
       {"\"JSON\"", "\"Math\"", "\"Promise\"", "\"DropEvent\"", "\"console\""}) {
    EXPECT_NE(r.events[0].find(present), std::string::npos) << present;
  }
}

TEST_F(EngineTest, FunctionsDoNotShareGlobals) {
  FunctionDef a =
      Def("var shared = 'a'; function transformEvent(e) { e.event = shared; return e; }");
  FunctionDef b =
      Def("function transformEvent(e) { e.event = typeof shared; shared = 'b'; return e; }");
  b.name = "g";
  Run(a);
  RunResult r = Run(b);
  EXPECT_NE(r.events[0].find(R"("event":"undefined")"), std::string::npos);
  EXPECT_NE(Run(a).events[0].find(R"("event":"a")"), std::string::npos);
}

TEST_F(EngineTest, CompiledOncePerVersion) {
  FunctionDef d =
      Def("var calls = 0; function transformEvent(e) { e.event = String(++calls); return e; }");
  Run(d);
  EXPECT_NE(Run(d).events[0].find(R"("event":"2")"), std::string::npos);
  d.version = ++version_;  // a reload: a fresh global
  EXPECT_NE(Run(d).events[0].find(R"("event":"1")"), std::string::npos);
}

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("sy_functions_test_" + std::to_string(::getpid()) + "_" + std::to_string(n_++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  static inline int n_ = 0;
  std::filesystem::path path_;
};

TEST_F(EngineTest, JitsuStoreSurvivesARestartAndExpires) {
  TempDir dir;
  FakeClock clock(1'000'000);
  auto store = KeyValueStore::Open(Env::Default(), dir.file("f.store.json"), &clock).value();
  FunctionDef d = Def(R"(export default async function (e, ctx) {
    if (e.event === 'set') { await ctx.store.set('plan:' + e.userId, {plan: 'pro'}, {ttl: 60}); return; }
    const p = await ctx.store.get('plan:' + e.userId);
    if (e.event === 'del') ctx.store.del('plan:' + e.userId);
    return {...e, properties: {plan: p ? p.plan : null}};
  })");
  d.store = store;
  Run(d, R"({"type":"track","event":"set","userId":"u"})");
  ASSERT_TRUE(store->Flush().ok());
  // A new process: the store is read back from its file.
  auto again = KeyValueStore::Open(Env::Default(), dir.file("f.store.json"), &clock).value();
  d.store = again;
  d.version = ++version_;
  RunResult r = Run(d, R"({"type":"track","event":"get","userId":"u"})");
  ASSERT_EQ(r.events.size(), 1u) << r.message;
  EXPECT_NE(r.events[0].find(R"("plan":"pro")"), std::string::npos);
  clock.Advance(std::chrono::milliseconds(61'000));
  r = Run(d, R"({"type":"track","event":"get","userId":"u"})");
  EXPECT_NE(r.events[0].find(R"("plan":null)"), std::string::npos);
}

TEST(KeyValueStoreTest, Bounds) {
  FakeClock clock(1000);
  StoreLimits limits;
  limits.max_keys = 2;
  limits.max_bytes = 100;
  limits.max_value_bytes = 40;
  auto s = KeyValueStore::Open(Env::Default(), "", &clock, limits).value();
  EXPECT_TRUE(s->Set("a", "1", 0).ok());
  EXPECT_TRUE(s->Set("b", "2", 10).ok());
  EXPECT_EQ(s->Set("c", "3", 0).code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(s->Set("a", "11", 0).ok());  // replacing a key needs no room
  EXPECT_EQ(s->Set("a", std::string(41, 'x'), 0).code(), StatusCode::kResourceExhausted);
  clock.Advance(std::chrono::milliseconds(10));
  EXPECT_TRUE(s->Set("c", "3", 0).ok());  // the expired key made room
  EXPECT_FALSE(s->Get("b").has_value());
  EXPECT_EQ(s->Get("c").value(), "3");
  s->Delete("c");
  EXPECT_FALSE(s->Get("c").has_value());
}

TEST_F(EngineTest, StoreFullThrowsInTheFunction) {
  FakeClock clock(1000);
  StoreLimits limits;
  limits.max_keys = 1;
  FunctionDef d =
      Def(R"(export default function (e, ctx) { ctx.store.set('a', 1); ctx.store.set('b', 2); })");
  d.store = KeyValueStore::Open(Env::Default(), "", &clock, limits).value();
  RunResult r = Run(d);
  EXPECT_EQ(r.kind, RunResult::Kind::kError);
  EXPECT_NE(r.message.find("the store is full"), std::string::npos) << r.message;
}

// The registry and the chains: sources' functions before the destination's, each output the
// next one's input; reload keeps the last good version.
class RegistryTest : public ::testing::Test {
 protected:
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_.file(name)) << text;
  }
  config::Config Config() {
    config::Config c;
    c.functions = {{"tag", dir_.file("tag.js"), R"({"v":"one"})", 1},
                   {"split", dir_.file("split.js"), "{}", 2}};
    config::SourceConfig web;
    web.name = "web";
    web.functions = {"tag"};
    c.sources = {web};
    config::DestinationConfig hook;
    hook.name = "hook";
    hook.functions = {"split"};
    c.destinations = {hook};
    return c;
  }
  std::vector<delivery::TransformResult> Run(delivery::EventTransform& chain,
                                             const std::string& payload,
                                             const std::string& source = "web") {
    delivery::RoutedEvent e;
    e.source = source;
    e.message_id = "m";
    e.payload = payload;
    std::vector<delivery::RoutedEvent> batch{e};
    return chain.Transform(batch);
  }
  TempDir dir_;
  MetricsRegistry metrics_;
};

TEST_F(RegistryTest, ChainRunsSourceThenDestinationFunctionsAndReloadKeepsTheLastGoodVersion) {
  Write("tag.js", "export default (e, ctx) => ({...e, tag: ctx.props.v});");
  Write("split.js",
        "function transformEvent(e) { return e.tag ? [e, {...e, event: 'copy'}] : e; }");
  FunctionRegistry::Options o;
  o.metrics = &metrics_;
  FunctionRegistry registry(o);
  ASSERT_TRUE(registry.Load(Config()).ok());
  auto chain = registry.NewChain("hook");
  const std::string ev = R"({"type":"track","event":"A","userId":"u"})";
  auto r = Run(*chain, ev);
  ASSERT_EQ(r[0].kind, delivery::TransformResult::Kind::kEvents) << r[0].reason;
  ASSERT_EQ(r[0].payloads.size(), 2u);
  EXPECT_EQ(r[0].payloads[0], R"({"type":"track","event":"A","userId":"u","tag":"one"})");
  EXPECT_EQ(r[0].payloads[1], R"({"type":"track","event":"copy","userId":"u","tag":"one"})");
  // Another source: only the destination's function (it returns the event: a replacement).
  r = Run(*chain, ev, "backend");
  ASSERT_EQ(r[0].payloads.size(), 1u);
  EXPECT_EQ(r[0].payloads[0], ev);

  // A broken new version: rejected with file and line; the old one keeps running.
  Write("tag.js", "export default (e) => {\n  return e +;\n};");
  Status s = registry.Load(Config());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("tag.js:2: SyntaxError"), std::string::npos) << s.message();
  EXPECT_EQ(Run(*chain, ev)[0].payloads[0],
            R"({"type":"track","event":"A","userId":"u","tag":"one"})");
  // A good one replaces it in the running chain.
  Write("tag.js", "export default (e) => ({...e, tag: 'two'});");
  ASSERT_TRUE(registry.Load(Config()).ok());
  EXPECT_EQ(Run(*chain, ev)[0].payloads[0],
            R"({"type":"track","event":"A","userId":"u","tag":"two"})");
  // A new function that does not compile: the whole load is refused, nothing changes.
  Write("bad.js", "function (");
  config::Config with_bad = Config();
  with_bad.functions.push_back({"bad", dir_.file("bad.js"), "{}", 3});
  EXPECT_FALSE(registry.Load(with_bad).ok());
  EXPECT_FALSE(registry.Snapshot()->defs.contains("bad"));
  EXPECT_EQ(Run(*chain, ev)[0].payloads.size(), 2u);

  // Errors dead-letter with the function's name, kind, message and stack.
  Write("split.js", "function transformEvent(e) {\n  throw new Error('nope');\n}");
  ASSERT_TRUE(registry.Load(Config()).ok());
  r = Run(*chain, ev);
  EXPECT_EQ(r[0].kind, delivery::TransformResult::Kind::kDeadLetter);
  EXPECT_EQ(r[0].reason.substr(0, r[0].reason.find('\n')), "function split: thrown: Error: nope");
  EXPECT_NE(r[0].reason.find("transformEvent@"), std::string::npos) << r[0].reason;
  chain->ThreadDone();
  const std::string m = metrics_.RenderPrometheus();
  EXPECT_NE(m.find(R"(switchyard_function_errors_total{function="split",kind="thrown"} 1)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(R"(switchyard_function_fanned_out_total{function="split"} 4)"),
            std::string::npos)
      << m;
}

TEST_F(RegistryTest, TransformBatchRunsOncePerBatchAndMapsOutputsToTheirEvents) {
  // Mixed: the source's per-event function first, then the destination's transformBatch.
  Write("tag.js", "export default (e, ctx) => ({...e, tag: ctx.props.v});");
  Write("split.js", "function transformEvent(e) { return e; }");
  Write("batch.js", R"(let calls = 0;
function transformBatch(events, metadata) {
  calls++;
  const out = [];
  for (const e of events.slice().reverse()) {
    if (e.event === 'drop') continue;
    if (e.event === 'fan') { out.push(e, {...e, event: 'fan copy'}); continue; }
    if (e.event === 'new') { out.push({type: 'track', event: 'made', userId: 'u', messageId: 'fresh'}); continue; }
    if (e.event === 'renamed') { e.messageId = 'other'; e.properties = {same: true}; out.push(e); continue; }
    e.properties = {calls, mid: metadata(e).messageId, source: metadata(e).sourceName};
    out.push(e);
  }
  return out;
})");
  config::Config c = Config();
  c.functions.push_back({"batch", dir_.file("batch.js"), "{}", 3});
  c.destinations[0].functions = {"batch"};
  FunctionRegistry::Options o;
  o.metrics = &metrics_;
  FunctionRegistry registry(o);
  Status loaded = registry.Load(c);
  ASSERT_TRUE(loaded.ok()) << loaded.ToString();
  auto chain = registry.NewChain("hook", 5);
  std::vector<delivery::RoutedEvent> batch;
  for (const char* name : {"keep", "drop", "fan", "new", "renamed"}) {
    delivery::RoutedEvent e;
    e.source = "web";
    e.message_id = std::string("m-") + name;
    e.payload = std::string(R"({"type":"track","event":")") + name +
                R"(","userId":"u","messageId":"m-)" + name + R"("})";
    batch.push_back(e);
  }
  auto r = chain->Transform(batch);
  using Kind = delivery::TransformResult::Kind;
  ASSERT_EQ(r.size(), 5u);
  // keep: its own output, plus "made" (a new messageId: attributed to the call's first event).
  ASSERT_EQ(r[0].kind, Kind::kEvents) << r[0].reason;
  ASSERT_EQ(r[0].payloads.size(), 2u);
  EXPECT_EQ(r[0].payloads[0],
            R"({"type":"track","event":"made","userId":"u","messageId":"fresh"})");
  EXPECT_EQ(r[0].payloads[1],
            R"({"type":"track","event":"keep","userId":"u","messageId":"m-keep","tag":"one",)"
            R"("properties":{"calls":1,"mid":"m-keep","source":"web"}})");
  // drop: nothing came of it.
  EXPECT_EQ(r[1].kind, Kind::kEvents);
  EXPECT_TRUE(r[1].payloads.empty());
  // fan: two outputs kept its messageId; the second gets its own.
  ASSERT_EQ(r[2].payloads.size(), 2u);
  EXPECT_NE(r[2].payloads[0].find(R"("event":"fan","userId":"u","messageId":"m-fan")"),
            std::string::npos);
  EXPECT_NE(r[2].payloads[1].find(R"("event":"fan copy","userId":"u","messageId":"m-fan-2")"),
            std::string::npos)
      << r[2].payloads[1];
  // new: its output went to the first event.
  EXPECT_EQ(r[3].kind, Kind::kEvents);
  EXPECT_TRUE(r[3].payloads.empty());
  // renamed: the same object returned with a new messageId still belongs to its event.
  ASSERT_EQ(r[4].payloads.size(), 1u);
  EXPECT_NE(r[4].payloads[0].find(R"("messageId":"other")"), std::string::npos);

  // Chunks of at most batch_events: 5 events, 2 a call → 3 calls ([keep, drop], [fan, new],
  // [renamed]; a new chain has a new engine, whose `calls` starts at 0 again).
  auto small = registry.NewChain("hook", 2);
  chain->ThreadDone();
  chain.reset();  // one engine per thread
  r = small->Transform(batch);
  ASSERT_EQ(r[0].payloads.size(), 1u);
  EXPECT_NE(r[0].payloads[0].find(R"("calls":1)"), std::string::npos) << r[0].payloads[0];
  ASSERT_EQ(r[2].payloads.size(), 3u);  // "made" now goes to the first event of its call: fan
  EXPECT_NE(r[2].payloads[0].find(R"("event":"made")"), std::string::npos) << r[2].payloads[0];
  EXPECT_EQ(r[4].payloads.size(), 1u);

  // A throw fails the whole call: every event of it is dead-lettered with the stack.
  Write("batch.js", "function transformBatch(events) {\n  throw new Error('batch down');\n}");
  ASSERT_TRUE(registry.Load(c).ok());
  r = small->Transform(std::span(batch).subspan(0, 2));
  for (const auto& one : r) {
    EXPECT_EQ(one.kind, Kind::kDeadLetter);
    EXPECT_EQ(one.reason.substr(0, one.reason.find('\n')),
              "function batch: thrown: Error: batch down");
    EXPECT_NE(one.reason.find("transformBatch@"), std::string::npos) << one.reason;
  }
  // A result that is not an array is named as such.
  Write("batch.js", "function transformBatch(events) { return events[0]; }");
  ASSERT_TRUE(registry.Load(c).ok());
  r = small->Transform(std::span(batch).subspan(0, 1));
  EXPECT_EQ(r[0].kind, Kind::kDeadLetter);
  EXPECT_EQ(r[0].reason,
            "function batch: invalid_output: transformBatch must return an array, not an object");
  small->ThreadDone();
  const std::string m = metrics_.RenderPrometheus();
  EXPECT_NE(m.find(R"(switchyard_function_errors_total{function="batch",kind="thrown"} 1)"),
            std::string::npos)
      << m;
}

TEST(KeepNumberText, RestoresTheClientsTextOfNumbersTheFunctionLeftAlone) {
  const std::string in =
      R"({"a":1.50,"b":[1e5,2,3.0],"c":{"d":-0.0,"e":1E+2},"big":12345678901234567890,)"
      R"("pi":3.14159265358979323846,"n":9.99,"s":"1.50"})";
  // What JSON.stringify(JSON.parse(in)) writes, plus a change, a new key and a shorter array.
  const std::string out =
      R"({"a":1.5,"b":[100000,7],"c":{"d":0,"e":100},"big":12345678901234567000,)"
      R"("pi":3.141592653589793,"n":10.5,"s":"1.50","moved":1.5})";
  EXPECT_EQ(KeepNumberText(in, out),
            R"({"a":1.50,"b":[1e5,7],"c":{"d":-0.0,"e":1E+2},"big":12345678901234567890,)"
            R"("pi":3.14159265358979323846,"n":10.5,"s":"1.50","moved":1.5})");
  // Not objects, or kinds that differ: the output as it is.
  EXPECT_EQ(KeepNumberText("[1.0]", R"({"a":1})"), R"({"a":1})");
  EXPECT_EQ(KeepNumberText(R"({"a":"1.0"})", R"({"a":1})"), R"({"a":1})");
  EXPECT_EQ(KeepNumberText(R"({"a":{"b":1.0}})", R"({"a":[1]})"), R"({"a":[1]})");
}

TEST_F(RegistryTest, ANumberTheFunctionDidNotChangeKeepsTheClientsText) {
  Write("tag.js", "export default (e) => ({...e, properties: {...e.properties, n: 2}});");
  Write("split.js", "function transformEvent(e) { return e; }");
  FunctionRegistry::Options o;
  o.metrics = &metrics_;
  FunctionRegistry registry(o);
  ASSERT_TRUE(registry.Load(Config()).ok());
  auto chain = registry.NewChain("hook");
  auto r = Run(*chain, R"({"type":"track","event":"A","userId":"u","properties":{"price":9.990,)"
                       R"("qty":1e2,"id":12345678901234567890,"n":1.0}})");
  ASSERT_EQ(r[0].payloads.size(), 1u) << r[0].reason;
  EXPECT_EQ(r[0].payloads[0],
            R"({"type":"track","event":"A","userId":"u","properties":{"price":9.990,)"
            R"("qty":1e2,"id":12345678901234567890,"n":2}})");
  chain->ThreadDone();
}

}  // namespace
}  // namespace sy::functions
