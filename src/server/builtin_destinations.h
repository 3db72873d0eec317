// The built-in destination types, one line each in builtin_destinations.cc (the only place a
// new destination is listed; no static-initialisation self-registration), and the up-front
// validation of a config's `destinations:` against them.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "delivery/destination.h"

namespace sy::server {

// Every built-in destination type, in a stable order. Built once; thread-safe to read.
const std::vector<delivery::DestinationType>& BuiltinDestinations();
const delivery::DestinationType* FindDestinationType(std::string_view type);

// Checks every destination's type and settings (via its settings table and factory), reporting
// all errors as "<file>:<line>: destinations[i].<key>: <problem>".
Status ValidateDestinations(const config::Config& config);

// Builds the destination instance for one validated config entry.
Result<std::unique_ptr<delivery::Destination>> CreateDestination(const config::DestinationConfig& d,
                                                                 const std::string& file);

}  // namespace sy::server
