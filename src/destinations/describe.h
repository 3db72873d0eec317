// Renders the built-in destination types from their settings tables: the text that
// `switchyard destinations` prints, and the generated block of each page in docs/destinations/
// (checked to be current by the ctest test destination_docs_current; rewritten by
// `make docs-destinations`). Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "destinations/registry.h"

namespace sy::destinations {

// Plain text: per type a header line ("webhook (Webhooks): …") and a table of its settings
// (name, type, default, required, description).
std::string DescribeTypes(const std::vector<const BuiltinDestination*>& types);

// The markers around the generated part of a page; what is outside them is written by hand.
inline constexpr const char* kGeneratedBegin =
    "<!-- BEGIN GENERATED from the settings table (make docs-destinations); do not edit -->";
inline constexpr const char* kGeneratedEnd = "<!-- END GENERATED -->";

// docs/destinations/<type>.md with its generated block rendered anew: `existing` is the page as
// it is ("" when there is none yet: a page with the block and a hand-written stub is made).
std::string RenderDocPage(const BuiltinDestination& type, const std::string& existing);

// docs/destinations/README.md: the index of every type with what it supports (event types,
// batch, idempotency, deletion API: DestinationType::support), generated whole.
std::string RenderDocIndex(const std::vector<BuiltinDestination>& types);

// The file name of a type's page: "<type>.md".
std::string DocPageName(const BuiltinDestination& type);

}  // namespace sy::destinations
