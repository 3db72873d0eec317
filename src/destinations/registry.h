// The built-in destination types and the up-front validation of a config's `destinations:`
// against them. The list itself is generated from src/destinations/CMakeLists.txt (one line per
// type; no static-initialisation self-registration); this is the only code that knows every
// destination, and only the server and the CLI include it.
//
// Test doubles (`blackhole`, `flaky`) are in the list but offered (found by type, listed by
// `switchyard destinations`, accepted in a config) only when the process runs with the
// environment variable SWITCHYARD_TEST_DESTINATIONS=1.
//
// Thread safety: the list is built once on first use; every function is safe to call from any
// thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "delivery/destination.h"

namespace sy::destinations {

struct BuiltinDestination {
  delivery::DestinationType type;
  bool test_double = false;  // TEST_ONLY in the list
};

// Every built-in type, test doubles included, in the list's order (for tests and docs).
const std::vector<BuiltinDestination>& AllBuiltinDestinations();

// True when SWITCHYARD_TEST_DESTINATIONS=1 is set: test doubles are offered.
bool TestDestinationsEnabled();

// The types this process offers (test doubles only when enabled), in the list's order.
std::vector<const delivery::DestinationType*> OfferedDestinationTypes();

// An offered type by its config name; nullptr when unknown or a test double not enabled.
const delivery::DestinationType* FindDestinationType(std::string_view type);

// Checks every destination's type and settings (via its settings table and factory), reporting
// all errors as "<file>:<line>: destinations[i].<key>: <problem>", one per line.
Status ValidateDestinations(const config::Config& config);

// Loads a config file and checks it whole, in one pass: the file's structure (config) and every
// destination's type and settings (the tables), so a user sees every error of every layer at
// once, sorted by line. What `switchyard check-config` and every CLI command use.
Result<config::Config> LoadConfig(const std::string& path);

// Builds the destination instance for one validated config entry.
Result<std::unique_ptr<delivery::Destination>> CreateDestination(const config::DestinationConfig& d,
                                                                 const std::string& file);

// The generated list (builtin_destinations.cc in the build tree); use AllBuiltinDestinations().
std::vector<BuiltinDestination> GeneratedBuiltinDestinations();

}  // namespace sy::destinations
