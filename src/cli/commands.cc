#include "cli/commands.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "base/logging.h"
#include "config/config.h"
#include "log/local/local_log.h"
#include "server/app.h"

namespace sy::cli {
namespace {

Result<config::Config> Load(const std::string& path) {
  auto cfg = config::LoadConfigFile(path);
  if (!cfg.ok()) std::fprintf(stderr, "invalid config:\n%s\n", cfg.status().message().c_str());
  return cfg;
}

}  // namespace

int CheckConfig(const std::string& path) {
  auto cfg = Load(path);
  if (!cfg.ok()) return 2;
  std::printf("%s: ok (%zu sources)\n", path.c_str(), cfg->sources.size());
  return 0;
}

int Serve(const std::string& config_path) {
  auto cfg = Load(config_path);
  if (!cfg.ok()) return 2;
  // Signals are taken synchronously by this thread; every other thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto log = ModuleLogger("server");
  server::App app;
  if (Status s = app.Start(*cfg); !s.ok()) {
    log->error("startup failed status={}", s.ToString());
    app.Stop();
    return 1;
  }
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      log->warn(
          "SIGHUP received: live reload is not supported yet; restart to apply config changes");
      continue;
    }
    log->info("signal={} received; shutting down", strsignal(sig));
    break;
  }
  app.Stop();
  log->info("stopped");
  return 0;
}

// Reads a read-only snapshot of the log: no data_dir lock, so it works next to a running
// server (which acknowledges only what is in the file, so every acknowledged event is shown) and
// on a stopped one (a torn tail is hidden, not repaired). See docs/formats/log.md.
int Dump(const std::string& config_path, const std::string& source) {
  auto cfg = Load(config_path);
  if (!cfg.ok()) return 2;
  SetLogLevel("warn");
  log::LocalLogOptions o;
  o.dir = cfg->data_dir + "/log";
  o.read_only = true;
  auto opened = log::OpenLocalLog(o);
  if (!opened.ok() && opened.status().code() == StatusCode::kNotFound) {
    std::fprintf(stderr, "dump: no event log in %s yet; nothing to dump\n", o.dir.c_str());
    return 0;
  }
  if (!opened.ok()) {
    std::fprintf(stderr, "dump: cannot open the log: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  auto reader = (*opened)->OpenReader();
  if (!reader.ok()) {
    std::fprintf(stderr, "dump: %s\n", reader.status().ToString().c_str());
    return 1;
  }
  std::string out;
  while (true) {
    auto batch = (*reader)->Read(4096, 8 << 20);
    if (!batch.ok()) {
      std::fprintf(stderr, "dump: read failed: %s\n", batch.status().ToString().c_str());
      return 1;
    }
    if (batch->empty()) break;
    out.clear();
    for (const auto& e : *batch) {
      if (!source.empty() && e.source != source) continue;
      out += e.payload;
      out += '\n';
    }
    if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size()) return 1;
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace sy::cli
