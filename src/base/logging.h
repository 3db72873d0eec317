// One spdlog logger per module ("ingest", "log", …), key=value context in messages.
// Levels by consequence: ERROR = data loss or operator action needed; WARN = degraded but
// self-healing; INFO = lifecycle; DEBUG = per-request detail. No payloads or personal data.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace sy {

// Returns the module's logger, creating it (stderr, shared format) on first use. Thread-safe.
std::shared_ptr<spdlog::logger> ModuleLogger(const std::string& module);

// Sets the level of every module logger ("debug", "info", "warn", "error", "off").
void SetLogLevel(const std::string& level);

}  // namespace sy
