// The Segment message model: validation of one event against the Tracking API spec, and the
// server-side enrichment stored with it (messageId, receivedAt, clock-skew-corrected timestamp,
// context.ip). Works on the JSON text as sent (event/raw_json.h), never on a rebuilt DOM, so
// what is stored is what the client sent plus the server's fields. No I/O.
//
// Thread safety: all functions are reentrant.
#pragma once

#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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

// A batch's top-level `context` or `integrations` object, split once per request (members,
// nested objects, keys decoded and sorted) so that merging it under each event of the batch
// costs no more than the event and what the merge writes, however large the defaults are.
class BatchDefaults {
 public:
  // `object_text`: a JSON object's text that a validating parser accepted. It must outlive
  // this. Duplicate keys keep the last, at every level.
  explicit BatchDefaults(std::string_view object_text);

  struct Member {
    std::string_view key;      // decoded
    std::string_view raw_key;  // as sent, between the quotes
    std::string_view value;    // raw JSON text
    int32_t child = -1;        // index of the object `value` is, or -1
  };
  struct Object {
    uint32_t first = 0, count = 0;  // members_[first, first + count), in the order sent
    uint32_t sorted_first = 0;      // by_key_[sorted_first, + count): member indices by key
  };
  std::string_view text() const { return text_; }
  const Object& object(int32_t i) const { return objects_[static_cast<size_t>(i)]; }
  const Member& member(uint32_t i) const { return members_[i]; }
  // The member of object `obj` whose decoded key is `key`, or -1. O(log members).
  int64_t Find(int32_t obj, std::string_view key) const;

 private:
  int32_t Add(std::string_view object_text);

  std::string_view text_;
  std::vector<Object> objects_;
  std::vector<Member> members_;
  std::vector<uint32_t> by_key_;
  std::deque<std::string> decoded_keys_;  // escaped keys only (rare)
};

// Request-level facts applied to each event of the request.
struct EnrichContext {
  TimestampMs received_at;
  std::string_view received_at_iso;  // received_at formatted once per request (optional)
  std::string_view client_ip;        // already resolved through trusted proxies; may be empty
  const BatchDefaults* batch_context = nullptr;       // a batch's top-level context
  const BatchDefaults* batch_integrations = nullptr;  // a batch's top-level integrations
  std::string_view batch_sent_at = {};                // a batch's top-level sentAt, raw JSON
};

// Validates one event and writes the event to store into `out`. `text` is one event object as
// JSON text that a validating parser has accepted, `members` its top-level members
// (SplitObject/SplitBatchBody). `path_type` is the type the URL implies (/v1/track → track);
// nullopt for batch items, which must carry `type`. On success returns nullopt and sets
// `message_id`; otherwise returns why the event is not stored.
//
// The stored event is the client's text, member by member, byte for byte (numbers, strings and
// nested values exactly as sent), plus the server's fields (messageId when absent, receivedAt,
// sentAt, originalTimestamp, timestamp, type, context.ip) and the batch defaults merged under
// `context` and `integrations`; `writeKey` is dropped. Of duplicate top-level keys (compared
// decoded) the last is kept, as at each level of a merged context or integrations object.
// Cost: linear in `text` plus what is written (never quadratic in the number of members).
// The size limit applies first to `text` as sent, then to it with the batch defaults merged in.
// `out_members`, when given, receives the stored event's top-level members (as SplitObject would
// split `*out`; views into `*out`, valid until it changes), so a caller that reads the stored
// event (tracking plans) does not split it again.
std::optional<Rejection> ValidateAndEnrich(std::string_view text,
                                           std::span<const RawMember> members,
                                           std::optional<EventType> path_type,
                                           const EnrichContext& ctx, const Limits& limits,
                                           std::string* out, std::string* message_id,
                                           std::vector<RawMember>* out_members = nullptr);
// The same, splitting `text` itself; a `text` that is not an object is rejected (not_an_object).
std::optional<Rejection> ValidateAndEnrich(std::string_view text,
                                           std::optional<EventType> path_type,
                                           const EnrichContext& ctx, const Limits& limits,
                                           std::string* out, std::string* message_id);

// Appends `s` as a JSON string literal (quoted, escaped).
void AppendJsonString(std::string_view s, std::string* out);

// A random (version 4) UUID, e.g. "0f8fad5b-d9cb-469f-a165-70867728950e".
std::string NewMessageId();

}  // namespace sy::event
