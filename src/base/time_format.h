// ISO-8601 timestamps as the Tracking API uses them. Thread-safe, allocation-light.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/types.h"

namespace sy {

// "2024-01-02T03:04:05.678Z" (always milliseconds and Z).
std::string FormatIso8601(TimestampMs t);
void AppendIso8601(TimestampMs t, std::string* out);

// Accepts "YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM|±HHMM]", also with a space instead of T,
// and a bare date "YYYY-MM-DD". Returns nullopt for anything else or for impossible dates.
std::optional<TimestampMs> ParseIso8601(std::string_view s);

// Durations and sizes in config: "500ms", "30s", "5m", "4h", "7d"; "64MB", "1KB", "512".
std::optional<int64_t> ParseDurationMs(std::string_view s);
std::optional<int64_t> ParseByteSize(std::string_view s);

}  // namespace sy
