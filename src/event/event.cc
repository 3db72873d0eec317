#include "event/event.h"

#include <algorithm>
#include <random>

#include "base/time_format.h"
#include "event/raw_json.h"

namespace sy::event {

std::optional<EventType> ParseEventType(std::string_view name) {
  if (name == "track") return EventType::kTrack;
  if (name == "identify") return EventType::kIdentify;
  if (name == "page") return EventType::kPage;
  if (name == "screen") return EventType::kScreen;
  if (name == "group") return EventType::kGroup;
  if (name == "alias") return EventType::kAlias;
  return std::nullopt;
}

std::string_view EventTypeName(EventType type) {
  switch (type) {
    case EventType::kTrack:
      return "track";
    case EventType::kIdentify:
      return "identify";
    case EventType::kPage:
      return "page";
    case EventType::kScreen:
      return "screen";
    case EventType::kGroup:
      return "group";
    case EventType::kAlias:
      return "alias";
  }
  return "unknown";
}

BatchDefaults::BatchDefaults(std::string_view object_text) : text_(object_text) {
  Add(object_text);
}

int32_t BatchDefaults::Add(std::string_view object_text) {
  std::vector<RawMember> split;
  SplitObject(object_text, &split);
  std::string storage;
  std::vector<std::string_view> keys;
  DecodedKeys(split, &storage, &keys);
  std::vector<uint8_t> shadowed;
  MarkShadowedKeys(keys, &shadowed);
  const auto index = static_cast<int32_t>(objects_.size());
  objects_.push_back(Object{});
  Object o;
  o.first = static_cast<uint32_t>(members_.size());
  for (size_t i = 0; i < split.size(); ++i) {
    if (shadowed[i]) continue;
    std::string_view key = keys[i];
    if (split[i].key.find('\\') != std::string_view::npos) {
      key = decoded_keys_.emplace_back(key);
    }
    members_.push_back(Member{key, split[i].key, split[i].value, -1});
  }
  o.count = static_cast<uint32_t>(members_.size()) - o.first;
  // Nested objects, after this object's members so that its range stays contiguous.
  for (uint32_t i = o.first; i < o.first + o.count; ++i) {
    if (KindOf(members_[i].value) == RawKind::kObject) {
      const int32_t child = Add(members_[i].value);
      members_[i].child = child;
    }
  }
  o.sorted_first = static_cast<uint32_t>(by_key_.size());
  for (uint32_t i = o.first; i < o.first + o.count; ++i)
    by_key_.push_back(i);
  std::sort(by_key_.begin() + o.sorted_first, by_key_.end(),
            [this](uint32_t a, uint32_t b) { return members_[a].key < members_[b].key; });
  objects_[static_cast<size_t>(index)] = o;
  return index;
}

int64_t BatchDefaults::Find(int32_t obj, std::string_view key) const {
  const Object& o = object(obj);
  auto first = by_key_.begin() + o.sorted_first;
  auto last = first + o.count;
  auto it = std::lower_bound(
      first, last, key, [this](uint32_t m, std::string_view k) { return members_[m].key < k; });
  if (it == last || members_[*it].key != key) return -1;
  return *it;
}

std::string NewMessageId() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   (static_cast<uint64_t>(std::random_device{}()) << 32)};
  uint64_t a = rng(), b = rng();
  a = (a & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull;  // version 4
  b = (b & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // variant 10
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  auto put = [&](uint64_t v, int from_nibble, int count) {
    for (int i = from_nibble; i < from_nibble + count; ++i)
      s.push_back(kHex[(v >> (60 - 4 * i)) & 15]);
  };
  put(a, 0, 8);
  s.push_back('-');
  put(a, 8, 4);
  s.push_back('-');
  put(a, 12, 4);
  s.push_back('-');
  put(b, 0, 4);
  s.push_back('-');
  put(b, 4, 12);
  return s;
}

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  // Most strings here (messageIds, addresses) need no escaping: append them in one piece.
  bool plain = true;
  for (unsigned char ch : s) {
    if (ch < 0x20 || ch == '"' || ch == '\\') {
      plain = false;
      break;
    }
  }
  if (plain) {
    out->push_back('"');
    out->append(s);
    out->push_back('"');
    return;
  }
  out->push_back('"');
  for (unsigned char ch : s) {
    switch (ch) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        if (ch < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[ch >> 4]);
          out->push_back(kHex[ch & 15]);
        } else {
          out->push_back(static_cast<char>(ch));
        }
    }
  }
  out->push_back('"');
}

namespace {

// The members the rules look at, by index into the member list (-1: absent). Of duplicate keys
// the last counts.
struct Known {
  int type = -1, user_id = -1, anonymous_id = -1, event = -1, group_id = -1, previous_id = -1,
      message_id = -1, timestamp = -1, original_timestamp = -1, sent_at = -1, received_at = -1,
      write_key = -1, context = -1, integrations = -1, properties = -1, traits = -1;
};

bool RawHasId(std::span<const RawMember> m, int i) {
  if (i < 0) return false;
  RawKind k = KindOf(m[static_cast<size_t>(i)].value);
  if (k == RawKind::kString) return m[static_cast<size_t>(i)].value.size() > 2;
  return k == RawKind::kNumber;
}

// The content of a raw string value: a view of the text when it has no escapes, else decoded
// into `storage`.
std::string_view StringContent(std::string_view value, std::string* storage) {
  std::string_view plain;
  if (PlainString(value, &plain)) return plain;
  storage->clear();
  UnescapeJsonString(value.substr(1, value.size() - 2), storage);
  return *storage;
}

// Reads an optional ISO-8601 value (raw JSON; empty or null: absent).
std::optional<Rejection> RawTime(std::string_view v, std::string_view key,
                                 std::optional<TimestampMs>* out) {
  RawKind k = KindOf(v);
  if (v.empty() || k == RawKind::kNull) return std::nullopt;
  if (k != RawKind::kString) {
    return Rejection{"invalid_timestamp", std::string(key) + " must be an ISO-8601 string"};
  }
  thread_local std::string storage;
  auto t = ParseIso8601(StringContent(v, &storage));
  if (!t)
    return Rejection{"invalid_timestamp", std::string(key) + " is not a valid ISO-8601 timestamp"};
  *out = t;
  return std::nullopt;
}

// Per-depth scratch for MergeUnder (it recurses; each level keeps its own).
struct MergeLevel {
  std::vector<RawMember> members;
  std::string key_storage;
  std::vector<std::string_view> keys;
  std::vector<uint8_t> shadowed;
  std::vector<uint8_t> taken;  // defaults members the event has
};

// Writes `event_object` (an object's raw text) with the defaults object `node` merged under it:
// the event's members in their order (each merged with the default of the same key when both
// are objects), then the defaults it lacks, in their order. Stops with false once `out` holds
// more than `budget` bytes. Work: the event object's text plus what is written.
bool MergeUnder(std::string_view event_object, const BatchDefaults& d, int32_t node, size_t depth,
                size_t budget, std::string* out) {
  thread_local std::deque<MergeLevel> levels;
  if (levels.size() <= depth) levels.resize(depth + 1);
  MergeLevel& l = levels[depth];
  SplitObject(event_object, &l.members);
  DecodedKeys(l.members, &l.key_storage, &l.keys);
  MarkShadowedKeys(l.keys, &l.shadowed);
  const BatchDefaults::Object& o = d.object(node);
  l.taken.assign(o.count, 0);
  out->push_back('{');
  bool first = true;
  auto begin_member = [&](std::string_view raw_key) {
    if (!first) out->push_back(',');
    first = false;
    out->push_back('"');
    out->append(raw_key);
    out->append("\":");
  };
  for (size_t i = 0; i < l.members.size(); ++i) {
    if (l.shadowed[i]) continue;
    // `l` may move while a deeper level grows `levels`: a deque keeps its elements in place.
    const int64_t j = d.Find(node, l.keys[i]);
    begin_member(l.members[i].key);
    if (j >= 0) {
      l.taken[static_cast<size_t>(j) - o.first] = 1;
      const auto& dm = d.member(static_cast<uint32_t>(j));
      if (dm.child >= 0 && KindOf(l.members[i].value) == RawKind::kObject) {
        if (!MergeUnder(l.members[i].value, d, dm.child, depth + 1, budget, out)) return false;
        continue;
      }
    }
    out->append(l.members[i].value);
    if (out->size() > budget) return false;
  }
  for (uint32_t j = 0; j < o.count; ++j) {
    if (l.taken[j]) continue;
    const auto& dm = d.member(o.first + j);
    begin_member(dm.raw_key);
    out->append(dm.value);
    if (out->size() > budget) return false;
  }
  out->push_back('}');
  return out->size() <= budget;
}

// The object a batch default yields for an event member (`own`: its raw value, empty if absent):
// the defaults when the event has none (absent or null), the merge when it has an object, the
// event's own value otherwise. The result is `own`, the defaults' text, or `storage`.
// False: the merge grew past `budget`.
bool WithDefaults(std::string_view own, const BatchDefaults* defaults, size_t budget,
                  std::string* storage, std::string_view* result) {
  *result = own;
  if (defaults == nullptr) return true;
  RawKind kind = KindOf(own);
  if (own.empty() || kind == RawKind::kNull) {
    *result = defaults->text();
    return true;
  }
  if (kind != RawKind::kObject) return true;
  storage->clear();
  if (!MergeUnder(own, *defaults, 0, 0, budget, storage)) return false;
  *result = *storage;
  return true;
}

}  // namespace

std::optional<Rejection> ValidateAndEnrich(std::string_view text,
                                           std::optional<EventType> path_type,
                                           const EnrichContext& ctx, const Limits& limits,
                                           std::string* out, std::string* message_id) {
  thread_local std::vector<RawMember> members;
  if (!SplitObject(text, &members)) {
    return Rejection{"not_an_object", "each event must be a JSON object"};
  }
  return ValidateAndEnrich(text, members, path_type, ctx, limits, out, message_id);
}

std::optional<Rejection> ValidateAndEnrich(std::string_view text, std::span<const RawMember> m,
                                           std::optional<EventType> path_type,
                                           const EnrichContext& ctx, const Limits& limits,
                                           std::string* out, std::string* message_id,
                                           std::vector<RawMember>* out_members) {
  auto too_large = [&](size_t size) {
    return Rejection{"event_too_large", "event is " + std::to_string(size) +
                                            " bytes; the limit is " +
                                            std::to_string(limits.max_event_bytes)};
  };
  // Size first: every later step is linear in the event, and a bounded event bounds them.
  if (text.size() > limits.max_event_bytes) return too_large(text.size());

  thread_local std::string key_storage;
  thread_local std::vector<std::string_view> keys;
  thread_local std::vector<uint8_t> shadowed;
  DecodedKeys(m, &key_storage, &keys);
  const bool has_duplicates = MarkShadowedKeys(keys, &shadowed);
  Known k;
  for (size_t i = 0; i < m.size(); ++i) {
    std::string_view key = keys[i];
    int* slot = nullptr;
    if (key == "type")
      slot = &k.type;
    else if (key == "userId")
      slot = &k.user_id;
    else if (key == "anonymousId")
      slot = &k.anonymous_id;
    else if (key == "event")
      slot = &k.event;
    else if (key == "groupId")
      slot = &k.group_id;
    else if (key == "previousId")
      slot = &k.previous_id;
    else if (key == "messageId")
      slot = &k.message_id;
    else if (key == "timestamp")
      slot = &k.timestamp;
    else if (key == "originalTimestamp")
      slot = &k.original_timestamp;
    else if (key == "sentAt")
      slot = &k.sent_at;
    else if (key == "receivedAt")
      slot = &k.received_at;
    else if (key == "writeKey")
      slot = &k.write_key;
    else if (key == "context")
      slot = &k.context;
    else if (key == "integrations")
      slot = &k.integrations;
    else if (key == "properties")
      slot = &k.properties;
    else if (key == "traits")
      slot = &k.traits;
    if (slot != nullptr) *slot = static_cast<int>(i);  // the last of duplicates wins
  }

  auto reject = [](std::string_view code, std::string message) {
    return Rejection{code, std::move(message)};
  };
  auto value = [&](int i) { return m[static_cast<size_t>(i)].value; };

  EventType type;
  if (path_type) {
    type = *path_type;
  } else {
    if (k.type < 0 || KindOf(value(k.type)) != RawKind::kString || value(k.type).size() <= 2) {
      return reject("missing_type", "type is required on every batch item");
    }
    thread_local std::string type_storage;
    auto parsed = ParseEventType(StringContent(value(k.type), &type_storage));
    if (!parsed) {
      return reject("invalid_type",
                    "type must be one of identify, track, page, screen, group, alias");
    }
    type = *parsed;
  }
  if (!RawHasId(m, k.user_id) && !RawHasId(m, k.anonymous_id)) {
    return reject("missing_user_id", "userId or anonymousId is required");
  }
  switch (type) {
    case EventType::kTrack:
      if (k.event < 0 || KindOf(value(k.event)) != RawKind::kString || value(k.event).size() <= 2) {
        return reject("missing_event", "track requires a non-empty string event");
      }
      break;
    case EventType::kGroup:
      if (!RawHasId(m, k.group_id)) return reject("missing_group_id", "group requires groupId");
      break;
    case EventType::kAlias:
      if (!RawHasId(m, k.previous_id))
        return reject("missing_previous_id", "alias requires previousId");
      if (!RawHasId(m, k.user_id)) return reject("missing_user_id", "alias requires userId");
      break;
    default:
      break;
  }
  for (auto [i, key] : {std::pair{k.context, "context"}, std::pair{k.integrations, "integrations"},
                        std::pair{k.properties, "properties"}, std::pair{k.traits, "traits"}}) {
    if (i < 0) continue;
    RawKind kind = KindOf(value(i));
    if (kind != RawKind::kObject && kind != RawKind::kNull) {
      return reject("invalid_field_type", std::string(key) + " must be an object");
    }
  }
  std::string_view given_id;
  thread_local std::string id_storage;
  if (k.message_id >= 0 && KindOf(value(k.message_id)) != RawKind::kNull) {
    if (KindOf(value(k.message_id)) != RawKind::kString) {
      return reject("invalid_message_id", "messageId must be a string");
    }
    given_id = StringContent(value(k.message_id), &id_storage);
    if (given_id.size() > limits.max_message_id_chars) {
      return reject("message_id_too_long", "messageId is longer than " +
                                               std::to_string(limits.max_message_id_chars) +
                                               " characters");
    }
  }

  // Batch defaults: the event's context and integrations as stored, and the event's size with
  // them (the limit applies to the event as the client meant it, before the server's fields).
  std::string_view own_context = k.context >= 0 ? value(k.context) : std::string_view();
  std::string_view own_integrations =
      k.integrations >= 0 ? value(k.integrations) : std::string_view();
  std::string_view context = own_context, integrations = own_integrations;
  if (ctx.batch_context != nullptr || ctx.batch_integrations != nullptr) {
    thread_local std::string merged_context, merged_integrations;
    const size_t budget = limits.max_event_bytes + 1;
    if (!WithDefaults(own_context, ctx.batch_context, budget, &merged_context, &context) ||
        !WithDefaults(own_integrations, ctx.batch_integrations, budget, &merged_integrations,
                      &integrations)) {
      return Rejection{"event_too_large",
                       "event with the batch's context and integrations merged in is over the "
                       "limit of " +
                           std::to_string(limits.max_event_bytes) + " bytes"};
    }
    size_t size = text.size() - own_context.size() - own_integrations.size() + context.size() +
                  integrations.size();
    if (own_context.empty() && !context.empty()) size += sizeof(",\"context\":") - 1;
    if (own_integrations.empty() && !integrations.empty()) size += sizeof(",\"integrations\":") - 1;
    if (size > limits.max_event_bytes) return too_large(size);
  }
  if (KindOf(context) != RawKind::kObject) context = {};  // absent or null

  std::optional<TimestampMs> given_ts, given_orig, sent_at;
  if (k.timestamp >= 0) {
    if (auto r = RawTime(value(k.timestamp), "timestamp", &given_ts)) return r;
  }
  if (k.original_timestamp >= 0) {
    if (auto r = RawTime(value(k.original_timestamp), "originalTimestamp", &given_orig)) return r;
  }
  bool own_sent_at = k.sent_at >= 0 && KindOf(value(k.sent_at)) != RawKind::kNull;
  if (auto r = RawTime(own_sent_at ? value(k.sent_at) : ctx.batch_sent_at, "sentAt", &sent_at)) {
    return r;
  }

  // context.ip: inserted unless the client (or the batch context) set it.
  bool add_ip = !ctx.client_ip.empty();
  if (add_ip && !context.empty()) {
    thread_local std::vector<RawMember> cm;
    thread_local std::string cm_storage;
    thread_local std::vector<std::string_view> cm_keys;
    SplitObject(context, &cm);
    DecodedKeys(cm, &cm_storage, &cm_keys);
    add_ip = std::find(cm_keys.begin(), cm_keys.end(), "ip") == cm_keys.end();
  }

  std::optional<TimestampMs> original = given_orig ? given_orig : given_ts;
  out->clear();
  out->reserve(text.size() + 256);
  out->push_back('{');
  // Offsets of each member's key and value in `*out` (for `out_members`): a value ends where the
  // next member, or the object, begins.
  struct MemberOffsets {
    size_t key, key_size, value, value_end;
  };
  thread_local std::vector<MemberOffsets> offsets;
  offsets.clear();
  auto end_member = [&]() {
    if (!offsets.empty()) offsets.back().value_end = out->size();
  };
  auto begin_member = [&](std::string_view key) {
    end_member();
    if (out->size() > 1) out->push_back(',');
    out->push_back('"');
    const size_t key_at = out->size();
    out->append(key);
    out->append("\":");
    offsets.push_back(MemberOffsets{key_at, key.size(), out->size(), 0});
  };
  bool context_written = false;
  auto write_context = [&]() {
    context_written = true;
    if (context.empty() && !add_ip) {
      if (k.context >= 0) {  // `"context": null` as sent
        begin_member(m[static_cast<size_t>(k.context)].key);
        out->append(value(k.context));
      }
      return;
    }
    begin_member("context");
    if (!add_ip) {
      out->append(context);
      return;
    }
    out->append("{\"ip\":");
    AppendJsonString(ctx.client_ip, out);
    std::string_view rest =
        context.empty() ? std::string_view("}") : context.substr(context.find('{') + 1);
    size_t body = rest.find_first_not_of(" \t\r\n");
    if (body != std::string_view::npos && rest[body] != '}') out->push_back(',');
    out->append(rest);
  };
  for (size_t i = 0; i < m.size(); ++i) {
    int idx = static_cast<int>(i);
    if ((has_duplicates && shadowed[i]) || idx == k.write_key || idx == k.received_at ||
        idx == k.timestamp || idx == k.type || idx == k.message_id ||
        (idx == k.original_timestamp && original) || (idx == k.sent_at && sent_at)) {
      continue;
    }
    if (idx == k.context) {
      write_context();
      continue;
    }
    if (idx == k.integrations && integrations.data() != own_integrations.data()) {
      begin_member("integrations");
      out->append(integrations);
      continue;
    }
    begin_member(m[i].key);
    out->append(m[i].value);
  }
  if (k.integrations < 0 && !integrations.empty()) {  // from the batch alone
    begin_member("integrations");
    out->append(integrations);
  }
  begin_member("messageId");
  if (given_id.empty()) {
    *message_id = NewMessageId();
  } else {
    message_id->assign(given_id);
  }
  AppendJsonString(*message_id, out);
  auto put_time = [&](std::string_view key, TimestampMs t) {
    begin_member(key);
    out->push_back('"');
    if (t == ctx.received_at && !ctx.received_at_iso.empty()) {
      out->append(ctx.received_at_iso);
    } else {
      AppendIso8601(t, out);
    }
    out->push_back('"');
  };
  put_time("receivedAt", ctx.received_at);
  if (sent_at) put_time("sentAt", *sent_at);
  if (original) {
    put_time("originalTimestamp", *original);
    put_time("timestamp",
             sent_at ? TimestampMs(ctx.received_at.value() - (sent_at->value() - original->value()))
                     : *original);
  } else {
    put_time("timestamp", ctx.received_at);
  }
  begin_member("type");
  out->push_back('"');
  out->append(EventTypeName(type));
  out->push_back('"');
  if (!context_written) write_context();  // no context member: absent from the event
  end_member();
  out->push_back('}');
  if (out_members != nullptr) {
    out_members->clear();
    const std::string_view stored = *out;
    for (const auto& o : offsets)
      out_members->push_back(RawMember{stored.substr(o.key, o.key_size),
                                       stored.substr(o.value, o.value_end - o.value)});
  }
  return std::nullopt;
}

}  // namespace sy::event
