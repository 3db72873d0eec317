// The ids an event is matched by for a privacy request (privacy/user_set.h): its top-level
// `userId` and `anonymousId`, read from the stored JSON text without a DOM. Shared by every copy
// that erases a user's events from stored JSON (the archive, the dead letters, the warehouse's
// discards of refused events), so all of them read the ids the same way.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace sy::event {

struct EventUserIds {
  std::string user_id;       // "" when absent or null
  std::string anonymous_id;  // "" when absent or null
};

// The decoded value of the last top-level "userId" and "anonymousId" members of `event_json`
// (a JSON parser keeps the last of duplicate keys): a string's content with its escapes decoded
// ("\u0061" → "a"), null as "", and any other value as its JSON text (`42` → "42", the rule of
// privacy/user_set.h). Keys are compared decoded too. False when `event_json` is not a JSON
// object (then both ids are ""). Text a validating parser never accepted gives unspecified ids
// (memory-safe: event/raw_json.h).
bool ReadEventUserIds(std::string_view event_json, EventUserIds* out);

}  // namespace sy::event
