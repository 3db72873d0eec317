#include "cli/commands.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/clock.h"
#include "base/logging.h"
#include "config/config.h"
#include "delivery/dead_letter_store.h"
#include "delivery/http_client.h"
#include "delivery/redrive.h"
#include "log/local/local_log.h"
#include "server/app.h"
#include "server/builtin_destinations.h"

namespace sy::cli {
namespace {

// Loads and validates everything up front, destinations' settings included.
Result<config::Config> Load(const std::string& path) {
  auto cfg = config::LoadConfigFile(path);
  if (cfg.ok()) {
    if (Status s = server::ValidateDestinations(*cfg); !s.ok()) cfg = s;
  }
  if (!cfg.ok()) std::fprintf(stderr, "invalid config:\n%s\n", cfg.status().message().c_str());
  return cfg;
}

std::string DlqDir(const config::Config& c) {
  return c.data_dir + "/dlq";
}

}  // namespace

int CheckConfig(const std::string& path) {
  auto cfg = Load(path);
  if (!cfg.ok()) return 2;
  std::printf("%s: ok (%zu sources, %zu destinations)\n", path.c_str(), cfg->sources.size(),
              cfg->destinations.size());
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
      // Destinations are applied live; a config that fails validation changes nothing.
      auto next = Load(config_path);
      if (!next.ok()) {
        log->error("reload refused: invalid config; the running configuration stays");
        continue;
      }
      std::string ignored;
      if (Status s = app.ReloadDestinations(*next, &ignored); !s.ok()) {
        log->error("reload failed status={}", s.ToString());
      } else {
        log->info("reload applied destinations={}", next->destinations.size());
      }
      if (!ignored.empty()) log->warn("reload: changes to {} need a restart", ignored);
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

int Reload(const std::string& config_path) {
  auto cfg = Load(config_path);
  if (!cfg.ok()) return 2;  // refuse early: the server would refuse it too
  auto pid = server::HolderPid(cfg->data_dir);
  if (!pid.ok()) {
    std::fprintf(stderr, "reload: %s\n", pid.status().message().c_str());
    return 1;
  }
  if (::kill(*pid, SIGHUP) != 0) {
    std::fprintf(stderr, "reload: cannot signal pid %d: %s\n", *pid, std::strerror(errno));
    return 1;
  }
  std::printf("reload: sent SIGHUP to pid %d\n", *pid);
  return 0;
}

int DlqList(const std::string& config_path, const std::string& destination) {
  auto cfg = Load(config_path);
  if (!cfg.ok()) return 2;
  delivery::DeadLetterStore store(DlqDir(*cfg));
  std::vector<std::string> names =
      destination.empty() ? store.Destinations() : std::vector<std::string>{destination};
  for (const auto& name : names) {
    uint64_t skipped = 0;
    auto letters = store.List(name, &skipped);
    if (!letters.ok()) {
      std::fprintf(stderr, "dlq list: %s\n", letters.status().ToString().c_str());
      return 1;
    }
    for (const auto& d : *letters)
      std::printf("%s\n", delivery::DeadLetterToJson(d).c_str());
    if (skipped) {
      std::fprintf(stderr, "dlq list: %s: %llu bytes at the end are torn or corrupt (skipped)\n",
                   name.c_str(), static_cast<unsigned long long>(skipped));
    }
  }
  std::fflush(stdout);
  return 0;
}

int DlqRedrive(const std::string& config_path, const std::string& destination) {
  auto cfg = Load(config_path);
  if (!cfg.ok()) return 2;
  SetLogLevel("warn");
  const config::DestinationConfig* d = nullptr;
  for (const auto& x : cfg->destinations)
    if (x.name == destination) d = &x;
  if (!d) {
    std::fprintf(stderr, "dlq redrive: no destination named '%s' in %s\n", destination.c_str(),
                 config_path.c_str());
    return 2;
  }
  auto dest = server::CreateDestination(*d, cfg->file);
  if (!dest.ok()) {
    std::fprintf(stderr, "dlq redrive: %s\n", dest.status().ToString().c_str());
    return 2;
  }
  auto http = delivery::CreateCurlHttpClient({});
  if (!http.ok()) return 1;
  delivery::DeadLetterStore store(DlqDir(*cfg));
  auto r = delivery::RedriveDeadLetters(&store, destination, dest->get(), http->get(),
                                        d->allow_private_network, SystemClock::Get());
  if (!r.ok()) {
    std::fprintf(stderr, "dlq redrive: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf("{\"destination\":\"%s\",\"delivered\":%zu,\"kept\":%zu}\n", destination.c_str(),
              r->delivered, r->kept);
  return r->kept == 0 ? 0 : 1;
}

}  // namespace sy::cli
