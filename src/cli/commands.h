// The CLI's subcommands. Each returns the process exit code: 0 success, 1 runtime failure,
// 2 bad usage or invalid config.
#pragma once

#include <string>

namespace sy::cli {

int Serve(const std::string& config_path);
int Dump(const std::string& config_path, const std::string& source);
int CheckConfig(const std::string& path);

}  // namespace sy::cli
