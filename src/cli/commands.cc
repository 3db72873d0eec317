#include "cli/commands.h"
#include "functions/registry.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <atomic>
#include <optional>

#include "app/app.h"
#include "archive/archive_reader.h"
#include "archive/object_store.h"
#include "base/clock.h"
#include "base/data_dir.h"
#include "base/logging.h"
#include "base/metrics.h"
#include "base/time_format.h"
#include "config/config.h"
#include "delivery/dead_letter_store.h"
#include "delivery/redrive.h"
#include "destinations/describe.h"
#include "destinations/registry.h"
#include "http/client.h"
#include "http/server.h"
#include "log/local/local_log.h"
#include "replay/replay.h"

namespace sy::cli {
namespace {

// Loads and validates everything up front, destinations' settings included; every error of
// every layer in one report. The config is the file plus the changes made through the admin API
// (the overlay in its data_dir; app/config_controller.h), so every command sees what the
// server runs.
Result<config::Config> Load(const std::string& path) {
  auto cfg = app::LoadEffectiveConfig(path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "invalid config:\n%s\n", cfg.status().message().c_str());
    return cfg.status();
  }
  return std::move(cfg->config);
}

std::string DlqDir(const config::Config& c) {
  return DataDir(c.data_dir).Dlq();
}

}  // namespace

int CheckConfig(const std::string& path) {
  auto cfg = app::LoadEffectiveConfig(path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "invalid config:\n%s\n", cfg.status().message().c_str());
    return 2;
  }
  // Overlay entries not applied as written (orphans, shadowed file objects): warnings.
  for (const auto& note : cfg->notes)
    std::fprintf(stderr, "warning: %s\n", note.c_str());
  // Functions are compiled as serve would (file, line and message of each error).
  if (Status s = functions::CheckFunctions(cfg->config); !s.ok()) {
    std::fprintf(stderr, "invalid config:\n%s\n", s.message().c_str());
    return 2;
  }
  std::printf("%s: ok (%zu sources, %zu destinations", path.c_str(), cfg->config.sources.size(),
              cfg->config.destinations.size());
  if (cfg->overlay.version > 0)
    std::printf("; with the admin API's changes, overlay version %llu",
                static_cast<unsigned long long>(cfg->overlay.version));
  std::printf(")\n");
  return 0;
}

int ConfigExport(const std::string& path) {
  auto cfg = app::LoadEffectiveConfig(path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "invalid config:\n%s\n", cfg.status().message().c_str());
    return 2;
  }
  for (const auto& note : cfg->notes)
    std::fprintf(stderr, "warning: %s\n", note.c_str());
  std::string text = app::ExportText(path, *cfg);
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size()) return 1;
  return std::fflush(stdout) == 0 ? 0 : 1;
}

int Destinations(const std::string& type) {
  std::vector<const destinations::BuiltinDestination*> shown;
  for (const auto& b : destinations::AllBuiltinDestinations()) {
    if (b.test_double && !destinations::TestDestinationsEnabled()) continue;
    if (type.empty() || b.type.type == type) shown.push_back(&b);
  }
  if (shown.empty()) {
    std::fprintf(stderr,
                 "destinations: no destination type '%s' (run without a type to list all)\n",
                 type.c_str());
    return 2;
  }
  std::fputs(destinations::DescribeTypes(shown).c_str(), stdout);
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

  auto logger = ModuleLogger("server");
  SetLogLevel(cfg->log_level);
  // Before the connection cap is derived from it: the soft descriptor limit goes up to the hard
  // limit, what the administrator allowed (docs/security.md).
  if (auto fds = http::RaiseDescriptorLimit(); fds.ok()) {
    logger->info("descriptor limit soft={} hard={} soft_at_start={}", fds->soft, fds->hard,
                 fds->soft_before);
  } else {
    logger->warn("descriptor limit not raised: {}", fds.status().ToString());
  }
  app::ConfigController::Options options;  // before `app` names the App below
  options.config_path = config_path;
  app::App app;
  if (Status s = app.StartFromFile(std::move(options)); !s.ok()) {
    logger->error("startup failed status={}", s.ToString());
    app.Stop();
    return 1;
  }
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      // Sources and destinations are applied live, the file with the admin API's changes on
      // top; a config that fails validation changes nothing.
      std::string ignored;
      if (Status s = app.ReloadFromFile(&ignored); !s.ok()) {
        logger->error("reload refused; the running configuration stays: {}", s.message());
      } else {
        logger->info("reload applied");
      }
      if (!ignored.empty()) logger->warn("reload: changes to {} need a restart", ignored);
      continue;
    }
    logger->info("signal={} received; shutting down", strsignal(sig));
    break;
  }
  app.Stop();
  logger->info("stopped");
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
  o.dir = DataDir(cfg->data_dir).Log();
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
  auto pid = app::HolderPid(cfg->data_dir);
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
    auto scan = store.Scan(name);
    if (!scan.ok()) {
      std::fprintf(stderr, "dlq list: %s\n", scan.status().ToString().c_str());
      return 1;
    }
    for (const auto& d : scan->letters)
      std::printf("%s\n", delivery::DeadLetterToJson(d).c_str());
    if (!scan->unreadable.empty()) {
      std::fprintf(stderr,
                   "dlq list: %s: %zu intact records are not readable dead letters (skipped; "
                   "redrive keeps them)\n",
                   name.c_str(), scan->unreadable.size());
    }
    if (scan->corrupt_bytes) {
      std::fprintf(stderr, "dlq list: %s: %llu bytes are torn or corrupt (skipped)\n", name.c_str(),
                   static_cast<unsigned long long>(scan->corrupt_bytes));
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
  auto dest = destinations::CreateDestination(*d, cfg->file);
  if (!dest.ok()) {
    std::fprintf(stderr, "dlq redrive: %s\n", dest.status().ToString().c_str());
    return 2;
  }
  auto http = http::CreateCurlHttpClient({});
  if (!http.ok()) return 1;
  delivery::DeadLetterStore store(DlqDir(*cfg));
  // Letters a function failed on run through today's functions (docs/functions.md); ctx.store
  // is read from the data_dir but not written (a server may be running on it).
  MetricsRegistry metrics;
  std::unique_ptr<functions::FunctionRegistry> function_registry;
  std::unique_ptr<delivery::EventTransform> transform;
  if (functions::HasFunctions(*cfg, *d)) {
    functions::FunctionRegistry::Options fo;
    fo.data_dir = cfg->data_dir;
    fo.metrics = &metrics;
    fo.persist_stores = false;
    function_registry = std::make_unique<functions::FunctionRegistry>(fo);
    if (Status s = function_registry->Load(*cfg); !s.ok()) {
      std::fprintf(stderr, "dlq redrive: %s\n", s.message().c_str());
      return 2;
    }
    transform = function_registry->NewChain(d->name, static_cast<size_t>(d->batch.max_events));
  }
  auto r = delivery::RedriveDeadLetters(&store, destination, dest->get(), http->get(),
                                        d->allow_private_network, SystemClock::Get(), nullptr,
                                        transform.get());
  if (transform) transform->ThreadDone();
  if (!r.ok()) {
    std::fprintf(stderr, "dlq redrive: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf("{\"destination\":\"%s\",\"delivered\":%zu,\"kept\":%zu,\"dropped\":%zu}\n",
              destination.c_str(), r->delivered, r->kept, r->dropped);
  return r->kept == 0 ? 0 : 1;
}

}  // namespace sy::cli

namespace sy::cli {
namespace {

bool ParseTimeArg(const char* cmd, const char* flag, const std::string& text,
                  std::optional<TimestampMs>* out) {
  if (text.empty()) return true;
  auto t = ParseIso8601(text);
  if (!t) {
    std::fprintf(stderr,
                 "%s: %s: expected an ISO-8601 time such as 2026-11-26T14:00:00Z or a date\n", cmd,
                 flag);
    return false;
  }
  *out = *t;
  return true;
}

std::string HumanBytes(double b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

Result<std::unique_ptr<archive::ObjectStore>> ArchiveStore(const char* cmd,
                                                           const config::Config& cfg) {
  if (!cfg.archive.enabled) {
    std::fprintf(stderr, "%s: %s has no archive: section\n", cmd, cfg.file.c_str());
    return FailedPrecondition("no archive");
  }
  auto store = archive::OpenObjectStore(cfg.archive);
  if (!store.ok()) std::fprintf(stderr, "%s: %s\n", cmd, store.status().message().c_str());
  return store;
}

std::atomic<bool> g_interrupt{false};
void OnInterrupt(int) {
  g_interrupt = true;
}

}  // namespace

int ArchiveLs(const std::string& config_path, const std::string& source, const std::string& from,
              const std::string& to) {
  auto cfg = Load(config_path);
  if (!cfg.ok()) return 2;
  SetLogLevel("warn");
  archive::ArchiveSelection sel;
  sel.source = source;
  if (!ParseTimeArg("archive ls", "--from", from, &sel.from) ||
      !ParseTimeArg("archive ls", "--to", to, &sel.to))
    return 2;
  auto store = ArchiveStore("archive ls", *cfg);
  if (!store.ok()) return 2;
  auto files = archive::ListArchive(store->get(), cfg->archive.prefix, sel);
  if (!files.ok()) {
    std::fprintf(stderr, "archive ls: %s\n", files.status().ToString().c_str());
    return 1;
  }
  uint64_t bytes = 0;
  for (const auto& f : *files) {
    std::string hour = FormatIso8601(f.key.hour);
    std::printf("%s  %s  %llu  %llu  %llu  %s\n", hour.c_str(), f.key.source.c_str(),
                static_cast<unsigned long long>(f.key.first.value()),
                static_cast<unsigned long long>(f.key.last.value()),
                static_cast<unsigned long long>(f.size), f.object_key.c_str());
    bytes += f.size;
  }
  std::fflush(stdout);
  std::fprintf(stderr, "%zu files, %s in %s\n", files->size(), HumanBytes(bytes).c_str(),
               (*store)->Describe().c_str());
  return 0;
}

int Replay(const ReplayArgs& a) {
  auto cfg = Load(a.config_path);
  if (!cfg.ok()) return 2;
  SetLogLevel("warn");
  const config::DestinationConfig* d = nullptr;
  for (const auto& x : cfg->destinations)
    if (x.name == a.destination) d = &x;
  if (!d) {
    std::fprintf(stderr, "replay: no destination named '%s' in %s (add it, enabled or not)\n",
                 a.destination.c_str(), a.config_path.c_str());
    return 2;
  }
  archive::ArchiveSelection sel;
  sel.source = a.source;
  if (!ParseTimeArg("replay", "--from", a.from, &sel.from) ||
      !ParseTimeArg("replay", "--to", a.to, &sel.to))
    return 2;
  if (!a.source.empty()) {
    bool known = false;
    for (const auto& s : cfg->sources)
      known = known || s.name == a.source;
    if (!known) {
      std::fprintf(stderr, "replay: no source named '%s' in %s\n", a.source.c_str(),
                   a.config_path.c_str());
      return 2;
    }
  }
  if (a.rate < 0) {
    std::fprintf(stderr, "replay: --rate must be positive\n");
    return 2;
  }
  auto store = ArchiveStore("replay", *cfg);
  if (!store.ok()) return 2;
  if (a.dry_run) {
    auto files = archive::ListArchive(store->get(), cfg->archive.prefix, sel);
    if (!files.ok()) {
      std::fprintf(stderr, "replay: %s\n", files.status().ToString().c_str());
      return 1;
    }
    uint64_t bytes = 0;
    for (const auto& f : *files) {
      std::printf("would read %s (%s, offsets %llu-%llu, %llu bytes)\n", f.object_key.c_str(),
                  f.key.source.c_str(), static_cast<unsigned long long>(f.key.first.value()),
                  static_cast<unsigned long long>(f.key.last.value()),
                  static_cast<unsigned long long>(f.size));
      bytes += f.size;
    }
    std::printf(
        "dry run: would replay %zu files (%s compressed) from %s, source %s, receivedAt in [%s, "
        "%s), into destination '%s' (type %s%s); nothing was sent\n",
        files->size(), HumanBytes(bytes).c_str(), (*store)->Describe().c_str(),
        a.source.empty() ? "all" : a.source.c_str(), a.from.empty() ? "-inf" : a.from.c_str(),
        a.to.empty() ? "+inf" : a.to.c_str(), d->name.c_str(), d->type.c_str(),
        d->enabled ? "" : ", disabled in config");
    return 0;
  }
  auto dest = destinations::CreateDestination(*d, cfg->file);
  if (!dest.ok()) {
    std::fprintf(stderr, "replay: %s\n", dest.status().ToString().c_str());
    return 2;
  }
  auto http = http::CreateCurlHttpClient({});
  if (!http.ok()) return 1;
  delivery::DeadLetterStore dead_letters(DlqDir(*cfg));
  MetricsRegistry metrics;

  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  bool tty = ::isatty(STDERR_FILENO);
  replay::ReplayOptions o;
  o.data_dir = cfg->data_dir;
  o.destination = *d;
  o.display_name = destinations::FindDestinationType(d->type)->display_name;
  o.instance = std::move(*dest);
  o.store = store->get();
  o.prefix = cfg->archive.prefix;
  o.selection = sel;
  o.rate = a.rate;
  o.restart = a.restart;
  o.http = http->get();
  o.dead_letters = &dead_letters;
  o.metrics = &metrics;
  o.interrupt = &g_interrupt;
  // Today's functions run on the archived events (docs/functions.md); ctx.store is read from
  // the data_dir but not written (a server may be running on it).
  std::unique_ptr<functions::FunctionRegistry> function_registry;
  if (functions::HasFunctions(*cfg, *d)) {
    functions::FunctionRegistry::Options fo;
    fo.data_dir = cfg->data_dir;
    fo.metrics = &metrics;
    fo.persist_stores = false;
    function_registry = std::make_unique<functions::FunctionRegistry>(fo);
    if (Status s = function_registry->Load(*cfg); !s.ok()) {
      std::fprintf(stderr, "replay: %s\n", s.message().c_str());
      return 2;
    }
    o.transform = function_registry->NewChain(d->name, static_cast<size_t>(d->batch.max_events));
  }
  if (tty) {
    o.on_progress = [](const replay::ReplayProgress& p) {
      double frac = p.bytes_total ? static_cast<double>(p.bytes_done) / p.bytes_total : 1.0;
      if (p.import_done && p.events_imported)
        frac = static_cast<double>(p.events_done) / p.events_imported;
      else if (p.events_imported)
        frac = std::min(frac, frac * p.events_done / p.events_imported);
      double rate = p.elapsed_s > 0 ? p.events_done / p.elapsed_s : 0;
      double eta = frac > 0.001 ? p.elapsed_s * (1 - frac) / frac : 0;
      int width = 30, fill = static_cast<int>(frac * width);
      std::string bar(fill, '#');
      bar += std::string(width - fill, '.');
      std::fprintf(stderr, "\r[%s] %3.0f%%  %llu events  %s/%s  %.0f ev/s  ETA %d:%02d   ",
                   bar.c_str(), frac * 100, static_cast<unsigned long long>(p.events_done),
                   HumanBytes(p.bytes_done).c_str(), HumanBytes(p.bytes_total).c_str(), rate,
                   static_cast<int>(eta) / 60, static_cast<int>(eta) % 60);
    };
  }
  auto r = replay::RunReplay(std::move(o));
  if (tty) std::fprintf(stderr, "\n");
  if (!r.ok()) {
    if (g_interrupt.load()) {
      std::fprintf(stderr,
                   "replay: interrupted; run the same command again to continue where it "
                   "stopped\n");
      return 130;
    }
    std::fprintf(stderr, "replay: %s\n", r.status().ToString().c_str());
    return r.status().code() == StatusCode::kFailedPrecondition ? 2 : 1;
  }
  double rate = r->elapsed_s > 0 ? r->events_done / r->elapsed_s : 0;
  std::printf(
      "{\"destination\":\"%s\",\"files\":%llu,\"bytes\":%llu,\"events\":%llu,\"delivered\":%llu,"
      "\"dead_lettered\":%llu,\"skipped\":%llu,\"resumed\":%s,\"seconds\":%.3f,"
      "\"events_per_s\":%.0f}\n",
      d->name.c_str(), static_cast<unsigned long long>(r->files_total),
      static_cast<unsigned long long>(r->bytes_total),
      static_cast<unsigned long long>(r->events_done),
      static_cast<unsigned long long>(r->delivered),
      static_cast<unsigned long long>(r->dead_lettered),
      static_cast<unsigned long long>(r->skipped), r->resumed ? "true" : "false", r->elapsed_s,
      rate);
  std::fflush(stdout);
  return 0;
}

}  // namespace sy::cli
