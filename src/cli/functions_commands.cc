// `switchyard functions test` and `switchyard functions check` (docs/functions.md).
#include <chrono>
#include <cstdio>

#include "app/config_controller.h"
#include "base/env.h"
#include "cli/commands.h"
#include "functions/engine.h"
#include "functions/registry.h"
#include "functions/store.h"

namespace sy::cli {
namespace {}  // namespace

int FunctionsCheck(const std::string& config_path) {
  auto cfg = app::LoadEffectiveConfig(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "invalid config:\n%s\n", cfg.status().message().c_str());
    return 2;
  }
  if (Status s = functions::CheckFunctions(cfg->config); !s.ok()) {
    std::fprintf(stderr, "%s", s.message().c_str());
    return 2;
  }
  std::printf("%s: ok (%zu functions compiled)\n", config_path.c_str(),
              cfg->config.functions.size());
  return 0;
}

int FunctionsTest(const std::string& config_path, const std::string& function,
                  const std::string& event_path) {
  auto cfg = app::LoadEffectiveConfig(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "invalid config:\n%s\n", cfg.status().message().c_str());
    return 2;
  }
  const config::FunctionConfig* fc = nullptr;
  for (const auto& f : cfg->config.functions)
    if (f.name == function) fc = &f;
  if (!fc) {
    std::fprintf(stderr, "no function named '%s' in %s\n", function.c_str(), config_path.c_str());
    return 2;
  }
  auto event = ReadWholeFile(Env::Default(), event_path);
  if (!event.ok()) {
    std::fprintf(stderr, "%s: %s\n", event_path.c_str(), event.status().message().c_str());
    return 2;
  }
  // The same code path as POST /api/v1/functions/{name}/test (ctx.store in memory).
  functions::FunctionTestRun run = functions::TestFunction(*fc, *event);
  if (!run.status.ok()) {
    std::fprintf(stderr, "%s\n", run.status.message().c_str());
    return 2;
  }
  const functions::RunResult& r = run.result;
  std::printf("function: %s (%s style)\n", fc->name.c_str(),
              std::string(functions::StyleName(run.style)).c_str());
  int code = 0;
  switch (r.kind) {
    case functions::RunResult::Kind::kKeep:
      std::printf("result: kept unchanged\n");
      break;
    case functions::RunResult::Kind::kEvents:
      if (r.events.empty()) {
        std::printf("result: dropped\n");
      } else {
        std::printf("result: %zu event%s\n", r.events.size(), r.events.size() == 1 ? "" : "s");
        for (const auto& e : r.events)
          std::printf("%s\n", e.c_str());
      }
      break;
    case functions::RunResult::Kind::kRetry:
      std::printf("result: retry (%s)\n", r.message.c_str());
      code = 1;
      break;
    case functions::RunResult::Kind::kError:
      std::printf("result: error %s: %s\n", std::string(functions::ErrorKindName(r.error)).c_str(),
                  r.message.c_str());
      if (!r.stack.empty()) std::printf("stack:\n%s", r.stack.c_str());
      code = 1;
      break;
  }
  const auto& logs = run.logs;
  if (!logs.empty()) std::printf("logs:\n");
  for (const auto& l : logs)
    std::printf("  [%s] %s\n", l.level.c_str(), l.text.c_str());
  if (run.logs_dropped > 0) std::printf("  (%zu more lines left out)\n", run.logs_dropped);
  std::printf("time: compile %.2f ms, run %.3f ms\n", run.compile_ms, run.run_ms);
  return code;
}

}  // namespace sy::cli
