// The CLI's subcommands. Each returns the process exit code: 0 success, 1 runtime failure,
// 2 bad usage or invalid config.
#pragma once

#include <string>

namespace sy::cli {

int Serve(const std::string& config_path);
int Dump(const std::string& config_path, const std::string& source);
int CheckConfig(const std::string& path);
// Dead letters (docs/formats/dlq.md). List prints one JSON object a line; works next to a
// running server. Redrive sends a destination's dead letters again, once each.
// Asks the server running on the config's data_dir to reload its config (SIGHUP).
int Reload(const std::string& config_path);
int DlqList(const std::string& config_path, const std::string& destination);
int DlqRedrive(const std::string& config_path, const std::string& destination);

}  // namespace sy::cli
