// JSON and Server-Sent Events renderings of what observe/ holds, for the admin API
// (docs/admin-api.md: `GET /api/v1/live`, `GET /api/v1/destinations/{name}/stats`).
#pragma once

#include <string>
#include <string_view>

#include "observe/delivery_stats.h"
#include "observe/live_feed.h"

namespace sy::observe {

// {"at":"<ISO-8601>","stage":"delivered","source":…,"destination":…,"messageId":…,"type":…,
//  "event":…,"detail":…,"status":200,"payload":{…}} — `payload` only when `show_payload` (roles
// without view_payloads get none), as the stored JSON; a cut payload is a string and
// "truncated":true. Empty fields are left out.
std::string LiveRecordJson(const LiveRecord& record, bool show_payload);

// One SSE frame: "event: <event>\ndata: <data>\n\n" (`data` must hold no newline; JSON from
// the renderers here holds none).
std::string SseFrame(std::string_view event, std::string_view data);

// {"window_minutes":60,"totals":{"delivered":…,"retried":…,"failed":…,"dead_lettered":…,
//  "filtered":…},"latency_ms":{"p50":…,"p95":…},"minutes":[{"start":"<ISO>",…},…]}.
// A percentile is null when nothing was delivered and "> 1800000" above the last bucket.
std::string StatsJson(const DeliveryStats::Window& window);

}  // namespace sy::observe
