// The config reader over an already-loaded YAML tree, for code inside the config module that
// builds the tree itself (overlay.cc merges the console's changes into the file's tree and
// validates the result with the same reader as a file). Not for other modules: config.h keeps
// yaml-cpp out of their includes.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "config/config.h"

namespace sy::config {

// As ParseConfigString, over `root`; errors name `file` and the line of each node's mark (0 for
// nodes built in memory rather than read from the file).
PartialConfig ParseConfigNode(const YAML::Node& root, const std::string& file);

}  // namespace sy::config
