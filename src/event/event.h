// The Segment message model: validation of one event against the Tracking API spec, and the
// server-side enrichment stored with it (messageId, receivedAt, clock-skew-corrected timestamp,
// context.ip). Pure functions over Boost.JSON values; no I/O.
//
// Thread safety: all functions are reentrant.
#pragma once

#include <boost/json.hpp>

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"
#include "base/types.h"
#include "event/raw_json.h"

namespace sy::event {

enum class EventType { kIdentify, kTrack, kPage, kScreen, kGroup, kAlias };

std::optional<EventType> ParseEventType(std::string_view name);
std::string_view EventTypeName(EventType type);

// Why an event was not stored. `code` is a stable label (metrics, tests); `message` is for people.
struct Rejection {
  std::string_view code;
  std::string message;
};

struct Limits {
  size_t max_event_bytes = 32 * 1024;
  size_t max_message_id_chars = 100;
};

// Request-level facts applied to each event of the request.
struct EnrichContext {
  TimestampMs received_at;
  std::string_view received_at_iso;  // received_at formatted once per request (optional)
  std::string_view client_ip;        // already resolved through trusted proxies; may be empty
  const boost::json::object* batch_context = nullptr;       // a batch's top-level context
  const boost::json::object* batch_integrations = nullptr;  // a batch's top-level integrations
  const boost::json::value* batch_sent_at = nullptr;        // a batch's top-level sentAt
};

// Validates `event` and enriches it in place. `path_type` is the type the URL implies
// (/v1/track → track); nullopt for batch items, which must carry `type`.
// On success returns nullopt and `event` is ready to store; `message_id` receives its messageId.
std::optional<Rejection> ValidateAndEnrich(boost::json::object& event,
                                           std::optional<EventType> path_type,
                                           const EnrichContext& ctx, const Limits& limits,
                                           std::string* message_id);

// The fast path for the common case: `text` is one event object as JSON text that a validating
// parser has accepted. The rules are those of ValidateAndEnrich, except that the size limit
// applies to `text` as sent. The stored event is written to `out` without building a DOM: the
// client's members are copied through byte for byte and the server's fields appended.
// kNeedsDom: the event needs the general path (batch-level context or integrations to merge,
// duplicate or escaped keys, escaped strings where a rule must read them).
enum class FastOutcome { kStored, kRejected, kNeedsDom };
FastOutcome FastValidateAndEnrich(std::string_view text, std::optional<EventType> path_type,
                                  const EnrichContext& ctx, const Limits& limits, std::string* out,
                                  std::string* message_id, std::optional<Rejection>* rejection);
// The same, with `text` already split into its top-level members (SplitObject/SplitBatchBody).
FastOutcome FastValidateAndEnrich(std::string_view text, std::span<const RawMember> members,
                                  std::optional<EventType> path_type, const EnrichContext& ctx,
                                  const Limits& limits, std::string* out, std::string* message_id,
                                  std::optional<Rejection>* rejection);

// Appends `s` as a JSON string literal (quoted, escaped).
void AppendJsonString(std::string_view s, std::string* out);

// Size in bytes of the compact JSON serialization of `v`, computed without serializing.
size_t CompactJsonSize(const boost::json::value& v);

// A random (version 4) UUID, e.g. "0f8fad5b-d9cb-469f-a165-70867728950e".
std::string NewMessageId();

// Deep-merges `defaults` under `target`: keys already in `target` win; nested objects merge.
void MergeDefaults(boost::json::object& target, const boost::json::object& defaults);

}  // namespace sy::event
