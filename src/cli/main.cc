// switchyard: the single binary. Subcommands: serve, dump, reload, dlq, check-config, version.
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

  auto* version = app.add_subcommand("version", "Print the version.");

  CLI11_PARSE(app, argc, argv);

  if (*version) {
    std::printf("switchyard %s\n", SY_VERSION);
    return 0;
  }
  if (*check) return sy::cli::CheckConfig(check_path);
  if (*dump) return sy::cli::Dump(config_path, source);
  if (*reload) return sy::cli::Reload(config_path);
  if (*dlq_list) return sy::cli::DlqList(config_path, dlq_destination);
  if (*dlq_redrive) return sy::cli::DlqRedrive(config_path, dlq_destination);
  if (*serve) return sy::cli::Serve(config_path);
  return 2;
}
