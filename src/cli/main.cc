// switchyard: the single binary. Subcommands: serve, dump, reload, dlq, archive, replay,
// check-config, config export, destinations, users, tokens, audit, functions, version.
#include <signal.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "base/logging.h"
#include "cli/commands.h"
#include "config/config.h"

#ifndef SY_VERSION
#define SY_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  CLI::App app{"Switchyard: a self-hosted customer data hub that speaks Segment's Tracking API."};
  app.require_subcommand(1);
  app.set_version_flag("--version", SY_VERSION);

  std::string config_path;
  auto* serve =
      app.add_subcommand("serve", "Run the server (Tracking API, event log, side doors).");
  serve->add_option("--config,-c", config_path, "YAML config file")->required();

  std::string source;
  auto* dump = app.add_subcommand("dump",
                                  "Print every event held in the local log, one JSON object a "
                                  "line, in log order, exactly as stored.");
  dump->add_option("--config,-c", config_path, "YAML config file")->required();
  dump->add_option("--source", source, "Only events of this source");

  std::string check_path;
  auto* check =
      app.add_subcommand("check-config", "Validate a config file without starting anything.");
  check->add_option("file", check_path, "YAML config file")->required();

  auto* config_cmd = app.add_subcommand("config", "The effective configuration.");
  config_cmd->require_subcommand(1);
  auto* config_export = config_cmd->add_subcommand(
      "export",
      "Print the config file merged with the changes made through the admin API, as YAML "
      "(secrets included: for the operator's version control).");
  config_export->add_option("--config,-c", config_path, "YAML config file")->required();

  std::string type_name;
  auto* dests = app.add_subcommand(
      "destinations",
      "List every destination type with its settings (name, type, default, required, "
      "description), from the same tables that validate a config.");
  dests->add_option("type", type_name, "Only this type");

  auto* reload = app.add_subcommand(
      "reload", "Ask the running server to re-read its config (SIGHUP); destinations apply live.");
  reload->add_option("--config,-c", config_path, "YAML config file")->required();

  auto* dlq = app.add_subcommand("dlq", "Dead letters: events a destination gave up on.");
  dlq->require_subcommand(1);
  std::string dlq_destination;
  auto* dlq_list = dlq->add_subcommand(
      "list",
      "Print dead letters, one JSON object a line (event, destination, reason, attempts, "
      "last response).");
  dlq_list->add_option("--config,-c", config_path, "YAML config file")->required();
  dlq_list->add_option("--destination", dlq_destination, "Only this destination");
  auto* dlq_redrive = dlq->add_subcommand(
      "redrive", "Send a destination's dead letters again; delivered ones leave the store.");
  dlq_redrive->add_option("--config,-c", config_path, "YAML config file")->required();
  dlq_redrive->add_option("--destination", dlq_destination, "Destination name")->required();

  std::string arc_source, arc_from, arc_to;
  auto* archive = app.add_subcommand("archive", "The archive: gzip NDJSON files of every event.");
  archive->require_subcommand(1);
  auto* archive_ls = archive->add_subcommand(
      "ls",
      "List archive files: <hour> <source> <first offset> <last offset> <bytes> <key>, one a "
      "line, per source in offset order.");
  archive_ls->add_option("--config,-c", config_path, "YAML config file")->required();
  archive_ls->add_option("--source", arc_source, "Only files of this source");
  archive_ls->add_option("--from", arc_from,
                         "Only files that may hold events received at or "
                         "after this time (ISO-8601, UTC)");
  archive_ls->add_option("--to", arc_to,
                         "Only files that may hold events received before "
                         "this time");

  sy::cli::ReplayArgs replay_args;
  auto* replay = app.add_subcommand(
      "replay",
      "Send archived events to one destination (new or disabled ones too) through the delivery "
      "framework, in receivedAt order; resumable.");
  replay->add_option("--config,-c", replay_args.config_path, "YAML config file")->required();
  replay->add_option("--destination", replay_args.destination, "Destination name")->required();
  replay->add_option("--source", replay_args.source, "Only events of this source");
  replay->add_option("--from", replay_args.from,
                     "Only events received at or after this time (ISO-8601, UTC)");
  replay->add_option("--to", replay_args.to, "Only events received before this time");
  replay->add_option("--rate", replay_args.rate, "At most this many events per second");
  replay->add_flag("--dry-run", replay_args.dry_run, "Print what would be replayed; send nothing");
  replay->add_flag("--restart", replay_args.restart,
                   "Discard an interrupted replay into this destination with another selection");

  sy::cli::ViolationsArgs vio;
  auto* violations = app.add_subcommand(
      "violations", "Events a tracking plan blocked: list them, release them to destinations.");
  violations->require_subcommand(1);
  auto* vio_list = violations->add_subcommand(
      "list",
      "Print every blocked event, one JSON object a line, oldest first, with its "
      "violations and whether it was released.");
  auto* vio_release = violations->add_subcommand(
      "release",
      "Release blocked events to destinations, each once: judged again by today's plans (those "
      "still blocked stay blocked) unless --force. Through the running server when there is one.");
  for (auto* c : {vio_list, vio_release}) {
    c->add_option("--config,-c", vio.config_path, "YAML config file")->required();
    c->add_option("--plan", vio.plan, "Only events of this plan");
    c->add_option("--event", vio.event, "Only events of this name (track) or type (others)");
  }
  vio_release->add_option("--offset", vio.offsets, "Only the event at this log offset (repeat)");
  vio_release->add_flag("--force", vio.force, "Release without judging by today's plans");

  auto* warehouse = app.add_subcommand("warehouse", "The SQL warehouse (sqlite, postgres).");
  warehouse->require_subcommand(1);
  std::string wh_destination;
  auto* wh_sync = warehouse->add_subcommand(
      "sync", "Load now what the warehouse destinations have not loaded yet; print what loaded.");
  wh_sync->add_option("--config,-c", config_path, "YAML config file")->required();
  wh_sync->add_option("--destination", wh_destination, "Only this destination");

  // The admin API's accounts and audit log (docs/admin-api.md); they work beside a running server.
  std::string account_name, account_role;
  int64_t audit_limit = 100;
  auto* users = app.add_subcommand("users", "Admin API users (passwords stored as Argon2id).");
  users->require_subcommand(1);
  auto* users_add = users->add_subcommand("add", "Add a user; the password is read from stdin.");
  users_add->add_option("name", account_name, "User name")->required();
  users_add->add_option("--role", account_role, "admin, editor or viewer")->required();
  users_add->add_option("--config,-c", config_path, "YAML config file")->required();
  auto* users_list = users->add_subcommand("list", "List users: name, role, created.");
  users_list->add_option("--config,-c", config_path, "YAML config file")->required();
  auto* users_remove =
      users->add_subcommand("remove", "Remove a user; their browser sessions end.");
  users_remove->add_option("name", account_name, "User name")->required();
  users_remove->add_option("--config,-c", config_path, "YAML config file")->required();
  auto* tokens = app.add_subcommand("tokens", "Admin API tokens (only their SHA-256 is stored).");
  tokens->require_subcommand(1);
  auto* tokens_create =
      tokens->add_subcommand("create", "Create a token and print it (shown only once).");
  tokens_create->add_option("name", account_name, "Token name")->required();
  tokens_create->add_option("--role", account_role, "admin, editor or viewer")->required();
  tokens_create->add_option("--config,-c", config_path, "YAML config file")->required();
  auto* tokens_list = tokens->add_subcommand("list", "List tokens: name, role, created.");
  tokens_list->add_option("--config,-c", config_path, "YAML config file")->required();
  auto* tokens_revoke = tokens->add_subcommand("revoke", "Revoke a token.");
  tokens_revoke->add_option("name", account_name, "Token name")->required();
  tokens_revoke->add_option("--config,-c", config_path, "YAML config file")->required();
  auto* audit = app.add_subcommand(
      "audit", "Print the newest audit log entries, one JSON object a line, oldest first.");
  audit->add_option("--config,-c", config_path, "YAML config file")->required();
  audit->add_option("--limit", audit_limit, "How many entries (default 100)");

  auto* functions_cmd = app.add_subcommand("functions", "User functions in JavaScript.");
  functions_cmd->require_subcommand(1);
  std::string function_name, event_path;
  auto* functions_test = functions_cmd->add_subcommand(
      "test", "Run one function on a sample event; print the result, its logs and the time.");
  functions_test->add_option("--config,-c", config_path, "YAML config file")->required();
  functions_test->add_option("--function", function_name, "The function's name")->required();
  functions_test->add_option("--event", event_path, "A JSON file with one event")->required();
  auto* functions_check =
      functions_cmd->add_subcommand("check", "Compile every function of the config.");
  functions_check->add_option("--config,-c", config_path, "YAML config file")->required();

  auto* version = app.add_subcommand("version", "Print the version.");

  CLI11_PARSE(app, argc, argv);

  if (*version) {
    std::printf("switchyard %s\n", SY_VERSION);
    return 0;
  }
  if (*check) return sy::cli::CheckConfig(check_path);
  if (*functions_test) return sy::cli::FunctionsTest(config_path, function_name, event_path);
  if (*functions_check) return sy::cli::FunctionsCheck(config_path);
  if (*config_export) return sy::cli::ConfigExport(config_path);
  if (*dests) return sy::cli::Destinations(type_name);
  if (*dump) return sy::cli::Dump(config_path, source);
  if (*reload) return sy::cli::Reload(config_path);
  if (*dlq_list) return sy::cli::DlqList(config_path, dlq_destination);
  if (*dlq_redrive) return sy::cli::DlqRedrive(config_path, dlq_destination);
  if (*archive_ls) return sy::cli::ArchiveLs(config_path, arc_source, arc_from, arc_to);
  if (*replay) return sy::cli::Replay(replay_args);
  if (*wh_sync) return sy::cli::WarehouseSync(config_path, wh_destination);
  if (*vio_list) return sy::cli::ViolationsList(vio);
  if (*vio_release) return sy::cli::ViolationsRelease(vio);
  if (*users_add) return sy::cli::UsersAdd(config_path, account_name, account_role);
  if (*users_list) return sy::cli::UsersList(config_path);
  if (*users_remove) return sy::cli::UsersRemove(config_path, account_name);
  if (*tokens_create) return sy::cli::TokensCreate(config_path, account_name, account_role);
  if (*tokens_list) return sy::cli::TokensList(config_path);
  if (*tokens_revoke) return sy::cli::TokensRevoke(config_path, account_name);
  if (*audit) return sy::cli::Audit(config_path, audit_limit);
  if (*serve) return sy::cli::Serve(config_path);
  return 2;
}
