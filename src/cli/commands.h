// The CLI's subcommands. Each returns the process exit code: 0 success, 1 runtime failure,
// 2 bad usage or invalid config.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sy::cli {

int Serve(const std::string& config_path);
int Dump(const std::string& config_path, const std::string& source);
// Checks the file plus the changes made through the admin API (the overlay in its data_dir), as
// `serve` would load them; overlay entries not applied as written are warnings on stderr.
int CheckConfig(const std::string& path);
// Prints the effective config (file + the admin API's changes) as YAML, secrets included; it
// passes check-config (docs/configuration.md, "Changes made through the admin API").
int ConfigExport(const std::string& path);
// Prints every offered destination type (or the one named) with its settings table; test
// doubles only with SWITCHYARD_TEST_DESTINATIONS=1.
int Destinations(const std::string& type);
// Dead letters (docs/formats/dlq.md). List prints one JSON object a line; works next to a
// running server. Redrive sends a destination's dead letters again, once each.
// Asks the server running on the config's data_dir to reload its config (SIGHUP).
int Reload(const std::string& config_path);
int DlqList(const std::string& config_path, const std::string& destination);
int DlqRedrive(const std::string& config_path, const std::string& destination);

// Archive (docs/archive.md). `archive ls` prints one line per archive file selected:
// "<hour> <source> <first offset> <last offset> <bytes> <key>". Times are ISO-8601 (UTC) or a
// bare date; "" = unbounded.
int ArchiveLs(const std::string& config_path, const std::string& source, const std::string& from,
              const std::string& to);
struct ReplayArgs {
  std::string config_path, destination, source, from, to;
  int64_t rate = 0;
  bool dry_run = false;
  bool restart = false;
};
// Replays archived events into one destination (docs/archive.md, "Replay"); resumable.
int Replay(const ReplayArgs& args);

// Loads what the warehouse destinations (all, or the one named) have not loaded yet, now, and
// prints one JSON report a line. Asks the running server when there is one (cli/warehouse_sync.cc).
int WarehouseSync(const std::string& config_path, const std::string& destination);

// Blocked events (docs/governance.md, cli/violations.cc). `list` prints one JSON object a line
// (works beside a running server: it reads a snapshot of the log); `release` appends released
// copies once each, through the running server when there is one, else itself under
// data_dir/LOCK, and prints one JSON report.
struct ViolationsArgs {
  std::string config_path, plan, event;
  std::vector<uint64_t> offsets;
  bool force = false;
};
int ViolationsList(const ViolationsArgs& args);
int ViolationsRelease(const ViolationsArgs& args);

// User functions (docs/functions.md, cli/functions_commands.cc). `functions test` runs one
// function on the event in a JSON file and prints the result, its logs and the time taken
// (ctx.store in memory only); `functions check` compiles every function of the config.
int FunctionsTest(const std::string& config_path, const std::string& function,
                  const std::string& event_path);
int FunctionsCheck(const std::string& config_path);

}  // namespace sy::cli

namespace sy::cli {

// Admin API accounts (docs/admin-api.md), stored under the config's data_dir; they work while a
// server runs (it sees changes at once). Every change is written to the audit log as actor "cli".
// `users add` reads the password from stdin (one line; without echo on a terminal).
int UsersAdd(const std::string& config_path, const std::string& name, const std::string& role);
int UsersList(const std::string& config_path);
int UsersRemove(const std::string& config_path, const std::string& name);
// Prints the new token once, on stdout; only its SHA-256 is stored.
int TokensCreate(const std::string& config_path, const std::string& name, const std::string& role);
int TokensList(const std::string& config_path);
int TokensRevoke(const std::string& config_path, const std::string& name);
// Prints the newest `limit` audit entries, one JSON object a line, oldest first.
int Audit(const std::string& config_path, int64_t limit);

}  // namespace sy::cli
