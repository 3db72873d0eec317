// Warehouse load throughput: track events with 15 properties, from the event log into SQLite and
// into PostgreSQL, through the production path (cursor read → routing → Segment schema mapping →
// one transaction per 10,000 events with dedupe on id; SyncNow, what `switchyard warehouse sync`
// runs). Each backend is compared with a baseline measured in the same run on the same rows (the
// `tracks` row and the event-table row of every event): for SQLite a bare prepared-insert loop
// into tables without index, for PostgreSQL a plain `COPY … FROM STDIN` into tables without
// index, the tables having the warehouse's column types. The ratio is warehouse rows/s ÷ baseline
// rows/s: what mapping, the unique index on id and dedupe cost over the bare write.
//
// Usage: warehouse_bench DIR [EVENTS] [POSTGRES_DSN]   (no DSN: SQLite only)
#include <dirent.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/time_format.h"
#include "delivery/dead_letter_store.h"
#include "log/local/local_log.h"
#include "warehouse/postgres_loader.h"
#include "warehouse/sqlite_loader.h"
#include "warehouse/warehouse_destination.h"

namespace {

using namespace sy;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kChunk = 10'000;

std::string Event(size_t i) {
  char buf[2048];
  std::snprintf(
      buf, sizeof buf,
      R"j({"type":"track","event":"Order Completed","messageId":"bench-%zu","userId":"user-%zu",)j"
      R"j("anonymousId":"anon-%zu","timestamp":"2024-05-01T10:00:00.000Z",)j"
      R"j("originalTimestamp":"2024-05-01T10:00:00.000Z","sentAt":"2024-05-01T10:00:01.000Z",)j"
      R"j("receivedAt":"2024-05-01T10:00:02.000Z","context":{"library":{"name":"analytics.js",)j"
      R"j("version":"2.11.1"},"ip":"203.0.113.7","userAgent":"Mozilla/5.0 (X11; Linux x86_64)"},)j"
      R"j("properties":{"orderId":"order-%zu","checkoutId":"co-%zu","revenue":%zu.25,)j"
      R"j("total":%zu.5,"tax":1.75,"shipping":4.99,"discount":0,"coupon":"SPRING",)j"
      R"j("currency":"USD","quantity":%zu,"giftWrap":false,"firstOrder":true,)j"
      R"j("paymentMethod":"card","deliveredAt":"2024-05-03T08:00:00Z","storeId":%zu}})j",
      i, i % 5000, i, i, i, i % 300, i % 300, i % 7, i % 40);
  return buf;
}

double Secs(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

// CPU seconds of this process (all threads): robust against a loaded machine, unlike wall time.
double ProcessCpu() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// CPU seconds of the PostgreSQL server (the postmaster of $SY_PG_DIR, its exited children and its
// live ones: the backends, the WAL writer, the checkpointer); 0 when unknown.
pid_t Postmaster() {
  const char* dir = std::getenv("SY_PG_DIR");
  if (!dir) return 0;
  std::ifstream f(std::string(dir) + "/data/postmaster.pid");
  long pid = 0;
  f >> pid;
  return static_cast<pid_t>(pid);
}
double ServerCpu(pid_t postmaster) {
  if (postmaster <= 0) return 0;
  double ticks = 0;
  DIR* d = opendir("/proc");
  if (!d) return 0;
  while (dirent* e = readdir(d)) {
    long pid = std::strtol(e->d_name, nullptr, 10);
    if (pid <= 0) continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/stat");
    std::string line;
    if (!std::getline(f, line)) continue;
    size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream in(line.substr(close + 2));
    std::string field;
    std::vector<std::string> v;  // from field 3 (state) on
    while (in >> field && v.size() < 15)
      v.push_back(field);
    if (v.size() < 15) continue;
    const long ppid = std::strtol(v[1].c_str(), nullptr, 10);
    const double utime = std::strtod(v[11].c_str(), nullptr);
    const double stime = std::strtod(v[12].c_str(), nullptr);
    if (pid == postmaster) {
      ticks +=
          utime + stime + std::strtod(v[13].c_str(), nullptr) + std::strtod(v[14].c_str(), nullptr);
    } else if (ppid == postmaster) {
      ticks += utime + stime;
    }
  }
  closedir(d);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Wall-clock and CPU time of one measured step.
struct Cost {
  double wall = 0;
  double client_cpu = 0;  // this process
  double server_cpu = 0;  // PostgreSQL's processes (0 for SQLite)
};
class Meter {
 public:
  explicit Meter(pid_t postmaster = 0)
      : postmaster_(postmaster),
        t0_(std::chrono::steady_clock::now()),
        cpu0_(ProcessCpu()),
        server0_(ServerCpu(postmaster)) {}
  Cost Stop() const { return {Secs(t0_), ProcessCpu() - cpu0_, ServerCpu(postmaster_) - server0_}; }

 private:
  pid_t postmaster_;
  std::chrono::steady_clock::time_point t0_;
  double cpu0_;
  double server0_;
};

std::string CpuPerEvent(const Cost& c, size_t n, bool server) {
  char buf[160];
  if (server) {
    std::snprintf(buf, sizeof buf, "CPU µs/event: client %.1f, server %.1f",
                  c.client_cpu * 1e6 / static_cast<double>(n),
                  c.server_cpu * 1e6 / static_cast<double>(n));
  } else {
    std::snprintf(buf, sizeof buf, "CPU µs/event %.1f",
                  c.client_cpu * 1e6 / static_cast<double>(n));
  }
  return buf;
}

void Die(const std::string& what) {
  std::fprintf(stderr, "warehouse_bench: %s\n", what.c_str());
  std::exit(1);
}

// The rows every event becomes, mapped once (outside the baselines' timing).
struct Mapped {
  std::vector<warehouse::Row> rows;
  warehouse::Arena arena;  // the rows' values
  std::vector<std::unique_ptr<std::string>> names;
};

std::unique_ptr<Mapped> MapAll(size_t n) {
  warehouse::EventMapper mapper;
  warehouse::MappedEvent out;
  for (size_t i = 0; i < n; ++i) {
    if (!mapper.Map(Event(i), "2024-06-01T00:00:00.000Z", &out).ok()) Die("map failed");
  }
  auto m = std::make_unique<Mapped>();
  // Names are interned in `mapper`: copy them so the rows outlive it.
  std::map<std::string, std::string_view, std::less<>> names;
  for (auto& r : out.rows)
    for (auto& c : r.cells) {
      auto it = names.find(c.column);
      if (it == names.end()) {
        m->names.push_back(std::make_unique<std::string>(c.column));
        it = names.emplace(*m->names.back(), *m->names.back()).first;
      }
      c.column = it->second;
    }
  m->rows = std::move(out.rows);
  m->arena = std::move(out.arena);
  return m;
}

Cost SqliteBaseline(const std::string& path, const Mapped& m) {
  std::filesystem::remove(path);
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) Die("sqlite open");
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
  std::map<std::string, sqlite3_stmt*> stmts;
  for (const auto& r : m.rows) {
    if (stmts.contains(r.table)) continue;
    std::string cols, params;
    for (const auto& c : r.cells) {
      cols += (cols.empty() ? "\"" : ", \"") + std::string(c.column) + "\" " +
              std::string(warehouse::SqliteColumnType(c.type));
      params += params.empty() ? "?" : ", ?";
    }
    sqlite3_exec(db, ("CREATE TABLE \"" + r.table + "\" (" + cols + ")").c_str(), nullptr, nullptr,
                 nullptr);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, ("INSERT INTO \"" + r.table + "\" VALUES (" + params + ")").c_str(), -1,
                       &st, nullptr);
    stmts[r.table] = st;
  }
  Meter meter;
  for (size_t i = 0; i < m.rows.size(); ++i) {
    if (i % (2 * kChunk) == 0) sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    const auto& r = m.rows[i];
    sqlite3_stmt* st = stmts[r.table];
    for (size_t k = 0; k < r.cells.size(); ++k)
      sqlite3_bind_text(st, static_cast<int>(k + 1), r.cells[k].value.data(),
                        static_cast<int>(r.cells[k].value.size()), SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) Die(sqlite3_errmsg(db));
    sqlite3_reset(st);
    if (i % (2 * kChunk) == 2 * kChunk - 1 || i + 1 == m.rows.size())
      sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  Cost s = meter.Stop();
  for (auto& [t, st] : stmts)
    sqlite3_finalize(st);
  sqlite3_close(db);
  return s;
}

Cost PostgresBaseline(const std::string& dsn, const Mapped& m, pid_t postmaster) {
  PGconn* pg = PQconnectdb(dsn.c_str());
  if (PQstatus(pg) != CONNECTION_OK) Die(PQerrorMessage(pg));
  auto exec = [&](const std::string& sql) {
    PGresult* r = PQexec(pg, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
      Die(PQerrorMessage(pg));
    PQclear(r);
  };
  // The warehouse's schema of source `web` starts empty too (an earlier run may have left it).
  exec("SET client_min_messages = warning; DROP SCHEMA IF EXISTS web CASCADE");
  exec("DROP SCHEMA IF EXISTS bench_baseline CASCADE; CREATE SCHEMA bench_baseline");
  std::map<std::string, std::string> copy_sql;
  for (const auto& r : m.rows) {
    if (copy_sql.contains(r.table)) continue;
    std::string cols;
    for (const auto& c : r.cells)
      cols += (cols.empty() ? "\"" : ", \"") + std::string(c.column) + "\" " +
              std::string(warehouse::PostgresColumnType(c.type));
    exec("CREATE TABLE bench_baseline.\"" + r.table + "\" (" + cols + ")");
    copy_sql[r.table] = "COPY bench_baseline.\"" + r.table + "\" FROM STDIN";
  }
  Meter meter(postmaster);
  for (size_t start = 0; start < m.rows.size(); start += 2 * kChunk) {
    exec("BEGIN");
    size_t end = std::min(m.rows.size(), start + 2 * kChunk);
    for (const auto& [table, sql] : copy_sql) {
      std::string data;
      for (size_t i = start; i < end; ++i) {
        if (m.rows[i].table != table) continue;
        for (size_t k = 0; k < m.rows[i].cells.size(); ++k) {
          if (k) data += '\t';
          data.append(m.rows[i].cells[k].value);  // the bench's values need no escaping
        }
        data += '\n';
      }
      PGresult* r = PQexec(pg, sql.c_str());
      if (PQresultStatus(r) != PGRES_COPY_IN) Die(PQerrorMessage(pg));
      PQclear(r);
      PQputCopyData(pg, data.data(), static_cast<int>(data.size()));
      PQputCopyEnd(pg, nullptr);
      while (PGresult* res = PQgetResult(pg)) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) Die(PQerrorMessage(pg));
        PQclear(res);
      }
    }
    exec("COMMIT");
  }
  Cost s = meter.Stop();
  exec("DROP SCHEMA bench_baseline CASCADE");
  PQfinish(pg);
  return s;
}

Cost Load(log::EventLog* log, const std::string& name, const std::string& display,
          std::unique_ptr<warehouse::Loader> loader, delivery::DeadLetterStore* dlq, size_t expect,
          pid_t postmaster = 0) {
  warehouse::WarehouseDestination dest(std::move(loader), kChunk, 1000);
  MetricsRegistry metrics;
  dest.Attach(name, &metrics);
  config::DestinationConfig c;
  c.name = name;
  c.type = display;
  Meter meter(postmaster);
  auto r = warehouse::SyncNow(log, c, display, &dest, dlq);
  Cost s = meter.Stop();
  if (!r.ok()) Die(r.status().ToString());
  if (r->events != expect) Die(name + ": " + warehouse::SyncReportJson(name, *r));
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) Die("usage: warehouse_bench DIR [EVENTS] [POSTGRES_DSN]");
  const std::string dir = argv[1];
  const size_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 200'000;
  const std::string dsn = argc > 3 ? argv[3] : "";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);

  log::LocalLogOptions lo;
  lo.dir = dir + "/log";
  auto opened = log::OpenLocalLog(lo);
  if (!opened.ok()) Die(opened.status().ToString());
  auto& log = *opened;
  size_t bytes = 0;
  {
    std::mutex mu;
    std::condition_variable cv;
    size_t pending = 0;
    for (size_t start = 0; start < n; start += 1000) {
      std::vector<log::LogRecord> recs;
      for (size_t i = start; i < std::min(n, start + 1000); ++i) {
        std::string p = Event(i);
        bytes += p.size();
        recs.push_back({"web", "bench-" + std::to_string(i), TimestampMs(1), std::move(p)});
      }
      {
        // At most 16 appends (~11 MB) in flight: the log's write queue is bounded (64 MiB) and
        // answers "full" beyond it, as ingest would with a 503.
        std::unique_lock l(mu);
        cv.wait(l, [&] { return pending < 16; });
        ++pending;
      }
      log->Append(std::move(recs), [&](const log::AppendResult& r) {
        if (!r.status.ok()) Die(r.status.ToString());
        std::lock_guard l(mu);
        --pending;
        cv.notify_all();
      });
    }
    std::unique_lock l(mu);
    cv.wait(l, [&] { return pending == 0; });
  }
  std::printf("events: %zu track events with 15 properties, %zu bytes each on average\n", n,
              bytes / n);
  std::printf("rows: 2 per event (tracks + order_completed); rate below in events/s\n");
  // Every load's cursor exists from the start: retention keeps a segment until all cursors are
  // past it, so a cursor created later would start at the oldest segment still kept.
  for (const char* name : {"dest.bench-sqlite", "dest.bench-sqlite-again", "dest.bench-postgres",
                           "dest.bench-postgres-again"}) {
    auto c = log->OpenCursor(name);
    if (!c.ok() || !(*c)->Commit(log->StartOffset()).ok()) Die("cannot create cursor");
  }
  delivery::DeadLetterStore dlq(dir + "/dlq");
  {
    std::vector<std::string> events;
    for (size_t i = 0; i < std::min<size_t>(n, 50'000); ++i)
      events.push_back(Event(i));
    warehouse::EventMapper mapper;
    auto t0 = SteadyClock::now();
    for (size_t start = 0; start < events.size(); start += kChunk) {
      warehouse::MappedEvent out;
      for (size_t i = start; i < std::min(events.size(), start + kChunk); ++i)
        (void)mapper.Map(events[i], "2024-06-01T00:00:00.000Z", &out);
    }
    std::printf("mapping alone (JSON → Segment rows): %8.0f events/s\n",
                static_cast<double>(events.size()) / Secs(t0));
  }
  const std::unique_ptr<Mapped> mapped_ptr = MapAll(n);
  const Mapped& mapped = *mapped_ptr;
  {
    auto t0 = SteadyClock::now();
    auto reader = log->OpenReader();
    size_t got = 0;
    while (true) {
      auto b = (*reader)->Read(kChunk, 256u << 20);
      if (!b.ok() || b->empty()) break;
      got += b->size();
    }
    std::printf("log read alone: %8.0f events/s\n", static_cast<double>(got) / Secs(t0));
  }

  const double events = static_cast<double>(n);
  const Cost base_sqlite = SqliteBaseline(dir + "/baseline.sqlite", mapped);
  const Cost wh_sqlite =
      Load(log.get(), "bench-sqlite", "sqlite",
           std::make_unique<warehouse::SqliteLoader>(dir + "/warehouse"), &dlq, n);
  std::printf(
      "sqlite:   warehouse %8.0f events/s = %8.0f table rows/s (%.2f s; %s)  baseline (bare "
      "prepared inserts, same rows, no index) %8.0f events/s (%s)  ratio %.2f\n",
      events / wh_sqlite.wall, 2 * events / wh_sqlite.wall, wh_sqlite.wall,
      CpuPerEvent(wh_sqlite, n, false).c_str(), events / base_sqlite.wall,
      CpuPerEvent(base_sqlite, n, false).c_str(), base_sqlite.wall / wh_sqlite.wall);
  // Loading the same events again: every row is a duplicate (dedupe cost alone).
  const Cost again = Load(log.get(), "bench-sqlite-again", "sqlite",
                          std::make_unique<warehouse::SqliteLoader>(dir + "/warehouse"), &dlq, n);
  std::printf("sqlite:   reload of the same events (all duplicates) %8.0f events/s (%s)\n",
              events / again.wall, CpuPerEvent(again, n, false).c_str());

  if (!dsn.empty()) {
    const pid_t postmaster = Postmaster();
    const Cost base_pg = PostgresBaseline(dsn, mapped, postmaster);
    const Cost wh_pg = Load(log.get(), "bench-postgres", "postgres",
                            std::make_unique<warehouse::PostgresLoader>(dsn), &dlq, n, postmaster);
    std::printf(
        "postgres: warehouse %8.0f events/s = %8.0f table rows/s (%.2f s; %s)  baseline (plain "
        "text COPY, same rows, no index) %8.0f events/s (%s)  ratio %.2f\n",
        events / wh_pg.wall, 2 * events / wh_pg.wall, wh_pg.wall,
        CpuPerEvent(wh_pg, n, postmaster > 0).c_str(), events / base_pg.wall,
        CpuPerEvent(base_pg, n, postmaster > 0).c_str(), base_pg.wall / wh_pg.wall);
    const Cost again_pg =
        Load(log.get(), "bench-postgres-again", "postgres",
             std::make_unique<warehouse::PostgresLoader>(dsn), &dlq, n, postmaster);
    std::printf(
        "postgres: reload of the same events (all duplicates: found by the id probe) %8.0f "
        "events/s (%s)\n",
        events / again_pg.wall, CpuPerEvent(again_pg, n, postmaster > 0).c_str());
  }
  (void)log->Close();
  std::filesystem::remove_all(dir);
  return 0;
}
