#include "event/user_ids.h"

#include <vector>

#include "event/raw_json.h"

namespace sy::event {
namespace {

void DecodeId(std::string_view raw, std::string* out) {
  out->clear();
  switch (KindOf(raw)) {
    case RawKind::kNull:
      return;
    case RawKind::kString: {
      std::string_view plain;
      if (PlainString(raw, &plain)) {
        out->assign(plain);
      } else if (raw.size() >= 2) {
        UnescapeJsonString(raw.substr(1, raw.size() - 2), out);
      }
      return;
    }
    default:
      out->assign(raw);
  }
}

}  // namespace

bool ReadEventUserIds(std::string_view event_json, EventUserIds* out) {
  out->user_id.clear();
  out->anonymous_id.clear();
  thread_local std::vector<RawMember> members;
  members.clear();
  if (!SplitObject(event_json, &members)) return false;
  const RawMember* user = nullptr;
  const RawMember* anonymous = nullptr;
  std::string decoded;
  for (const RawMember& m : members) {
    std::string_view key = m.key;
    if (key.find('\\') != std::string_view::npos) {  // an escaped key ("userI\u0064")
      decoded.clear();
      UnescapeJsonString(key, &decoded);
      key = decoded;
    }
    if (key == "userId") {
      user = &m;
    } else if (key == "anonymousId") {
      anonymous = &m;
    }
  }
  if (user) DecodeId(user->value, &out->user_id);
  if (anonymous) DecodeId(anonymous->value, &out->anonymous_id);
  return true;
}

}  // namespace sy::event
