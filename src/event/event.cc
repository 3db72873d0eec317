#include "event/event.h"

#include <array>
#include <charconv>
#include <random>

#include "base/time_format.h"
#include "event/raw_json.h"

namespace sy::event {

namespace json = boost::json;

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

namespace {

// Serialized length of each byte inside a JSON string: 1, 2 for the short escapes, 6 for \u00XX.
constexpr std::array<uint8_t, 256> MakeEscapeLengths() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[c] = c < 0x20 ? 6 : 1;
  for (int c : {'"', '\\', '\b', '\f', '\n', '\r', '\t'})
    t[c] = 2;
  return t;
}
constexpr auto kEscapeLengths = MakeEscapeLengths();

size_t StringJsonSize(std::string_view s) {
  size_t n = 2;
  for (unsigned char c : s)
    n += kEscapeLengths[c];
  return n;
}

// A present, non-empty identifier (string, or number as some libraries send).
bool HasId(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v) return false;
  if (v->is_string()) return !v->get_string().empty();
  return v->is_number();
}

std::optional<Rejection> CheckObjectField(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (v && !v->is_object() && !v->is_null()) {
    return Rejection{"invalid_field_type", std::string(key) + " must be an object"};
  }
  return std::nullopt;
}

// Parses an ISO-8601 string field. Absent or null → nullopt without error.
std::optional<Rejection> ReadTime(const json::value* v, std::string_view key,
                                  std::optional<TimestampMs>* out) {
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string())
    return Rejection{"invalid_timestamp", std::string(key) + " must be an ISO-8601 string"};
  auto t = ParseIso8601(v->get_string());
  if (!t)
    return Rejection{"invalid_timestamp", std::string(key) + " is not a valid ISO-8601 timestamp"};
  *out = t;
  return std::nullopt;
}

}  // namespace

size_t CompactJsonSize(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return 4;
    case json::kind::bool_:
      return v.get_bool() ? 4 : 5;
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return json::serialize(v).size();
    case json::kind::string:
      return StringJsonSize(v.get_string());
    case json::kind::array: {
      const auto& a = v.get_array();
      size_t n = 2 + (a.empty() ? 0 : a.size() - 1);
      for (const auto& e : a)
        n += CompactJsonSize(e);
      return n;
    }
    case json::kind::object: {
      const auto& o = v.get_object();
      size_t n = 2 + (o.empty() ? 0 : o.size() - 1);
      for (const auto& kv : o)
        n += StringJsonSize(kv.key()) + 1 + CompactJsonSize(kv.value());
      return n;
    }
  }
  return 0;
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

void MergeDefaults(json::object& target, const json::object& defaults) {
  for (const auto& kv : defaults) {
    auto* existing = target.if_contains(kv.key());
    if (!existing) {
      target.emplace(kv.key(), kv.value());
    } else if (existing->is_object() && kv.value().is_object()) {
      MergeDefaults(existing->get_object(), kv.value().get_object());
    }
  }
}

std::optional<Rejection> ValidateAndEnrich(json::object& ev, std::optional<EventType> path_type,
                                           const EnrichContext& ctx, const Limits& limits,
                                           std::string* message_id) {
  // Type: the URL decides for single calls; batch items must say.
  EventType type;
  if (path_type) {
    type = *path_type;
  } else {
    auto* t = ev.if_contains("type");
    if (!t || !t->is_string() || t->get_string().empty()) {
      return Rejection{"missing_type", "type is required on every batch item"};
    }
    auto parsed = ParseEventType(t->get_string());
    if (!parsed) {
      return Rejection{"invalid_type",
                       "type must be one of identify, track, page, screen, group, alias"};
    }
    type = *parsed;
  }

  // The request's writeKey authenticates; it is never stored with the event.
  ev.erase("writeKey");

  if (!HasId(ev, "userId") && !HasId(ev, "anonymousId")) {
    return Rejection{"missing_user_id", "userId or anonymousId is required"};
  }
  switch (type) {
    case EventType::kTrack: {
      auto* e = ev.if_contains("event");
      if (!e || !e->is_string() || e->get_string().empty()) {
        return Rejection{"missing_event", "track requires a non-empty string event"};
      }
      break;
    }
    case EventType::kGroup:
      if (!HasId(ev, "groupId")) return Rejection{"missing_group_id", "group requires groupId"};
      break;
    case EventType::kAlias:
      if (!HasId(ev, "previousId"))
        return Rejection{"missing_previous_id", "alias requires previousId"};
      if (!HasId(ev, "userId")) return Rejection{"missing_user_id", "alias requires userId"};
      break;
    default:
      break;
  }
  for (std::string_view key : {"context", "integrations", "properties", "traits"}) {
    if (auto r = CheckObjectField(ev, key)) return r;
  }

  // messageId: kept when given (a string of at most 100 characters), generated otherwise.
  if (auto* m = ev.if_contains("messageId"); m && !m->is_null()) {
    if (!m->is_string()) return Rejection{"invalid_message_id", "messageId must be a string"};
    if (m->get_string().empty()) {
      *m = NewMessageId();
    } else if (m->get_string().size() > limits.max_message_id_chars) {
      return Rejection{"message_id_too_long", "messageId is longer than " +
                                                  std::to_string(limits.max_message_id_chars) +
                                                  " characters"};
    }
  } else {
    ev["messageId"] = NewMessageId();
  }

  // Batch-level defaults. Null values count as absent.
  if (ctx.batch_context) {
    auto* c = ev.if_contains("context");
    if (!c || c->is_null()) {
      ev["context"] = *ctx.batch_context;
    } else {
      MergeDefaults(c->get_object(), *ctx.batch_context);
    }
  }
  if (ctx.batch_integrations) {
    auto* i = ev.if_contains("integrations");
    if (!i || i->is_null()) {
      ev["integrations"] = *ctx.batch_integrations;
    } else {
      MergeDefaults(i->get_object(), *ctx.batch_integrations);
    }
  }

  // The size limit applies to the event as the client sent it (after batch defaults), before
  // the server's own additions, so a client that pre-splits at 32 KB is never refused.
  size_t size = CompactJsonSize(ev);
  if (size > limits.max_event_bytes) {
    return Rejection{"event_too_large", "event is " + std::to_string(size) +
                                            " bytes; the limit is " +
                                            std::to_string(limits.max_event_bytes)};
  }

  // Time: originalTimestamp is the client's clock at the event; timestamp is corrected for
  // the client's clock skew as receivedAt − (sentAt − originalTimestamp).
  std::optional<TimestampMs> given_ts, given_orig, sent_at;
  if (auto r = ReadTime(ev.if_contains("timestamp"), "timestamp", &given_ts)) return r;
  if (auto r = ReadTime(ev.if_contains("originalTimestamp"), "originalTimestamp", &given_orig))
    return r;
  const json::value* sent = ev.if_contains("sentAt");
  if (!sent || sent->is_null()) sent = ctx.batch_sent_at;
  if (auto r = ReadTime(sent, "sentAt", &sent_at)) return r;

  std::string iso;
  auto set_time = [&](std::string_view key, TimestampMs t) {
    if (t == ctx.received_at && !ctx.received_at_iso.empty()) {
      ev[key] = ctx.received_at_iso;
      return;
    }
    iso.clear();
    AppendIso8601(t, &iso);
    ev[key] = iso;
  };
  std::optional<TimestampMs> original = given_orig ? given_orig : given_ts;
  set_time("receivedAt", ctx.received_at);
  if (sent_at) set_time("sentAt", *sent_at);
  if (original) {
    set_time("originalTimestamp", *original);
    if (sent_at) {
      set_time("timestamp",
               TimestampMs(ctx.received_at.value() - (sent_at->value() - original->value())));
    } else {
      set_time("timestamp", *original);
    }
  } else {
    set_time("timestamp", ctx.received_at);
  }
  ev["type"] = EventTypeName(type);

  // context.ip from the connection, unless the client set it.
  if (!ctx.client_ip.empty()) {
    auto* c = ev.if_contains("context");
    if (!c || !c->is_object()) {
      ev["context"] = json::object();
      c = ev.if_contains("context");
    }
    auto& co = c->get_object();
    if (!co.contains("ip")) co["ip"] = ctx.client_ip;
  }

  *message_id = std::string(ev.at("messageId").get_string());
  return std::nullopt;
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

// The members the fast path looks at, by index into the member list (-1: absent).
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

// Reads an optional ISO-8601 member. Sets *needs_dom for an escaped string.
std::optional<Rejection> RawTime(std::span<const RawMember> m, int i, std::string_view key,
                                 std::optional<TimestampMs>* out, bool* needs_dom) {
  if (i < 0) return std::nullopt;
  std::string_view v = m[static_cast<size_t>(i)].value;
  RawKind k = KindOf(v);
  if (k == RawKind::kNull) return std::nullopt;
  if (k != RawKind::kString) {
    return Rejection{"invalid_timestamp", std::string(key) + " must be an ISO-8601 string"};
  }
  std::string_view s;
  if (!PlainString(v, &s)) {
    *needs_dom = true;
    return std::nullopt;
  }
  auto t = ParseIso8601(s);
  if (!t)
    return Rejection{"invalid_timestamp", std::string(key) + " is not a valid ISO-8601 timestamp"};
  *out = t;
  return std::nullopt;
}

}  // namespace

FastOutcome FastValidateAndEnrich(std::string_view text, std::optional<EventType> path_type,
                                  const EnrichContext& ctx, const Limits& limits, std::string* out,
                                  std::string* message_id, std::optional<Rejection>* rejection) {
  if (ctx.batch_context != nullptr || ctx.batch_integrations != nullptr)
    return FastOutcome::kNeedsDom;
  thread_local std::vector<RawMember> members;
  if (!SplitObject(text, &members)) return FastOutcome::kNeedsDom;
  return FastValidateAndEnrich(text, members, path_type, ctx, limits, out, message_id, rejection);
}

FastOutcome FastValidateAndEnrich(std::string_view text, std::span<const RawMember> m,
                                  std::optional<EventType> path_type, const EnrichContext& ctx,
                                  const Limits& limits, std::string* out, std::string* message_id,
                                  std::optional<Rejection>* rejection) {
  if (ctx.batch_context != nullptr || ctx.batch_integrations != nullptr)
    return FastOutcome::kNeedsDom;
  Known k;
  for (size_t i = 0; i < m.size(); ++i) {
    std::string_view key = m[i].key;
    if (key.find('\\') != std::string_view::npos) return FastOutcome::kNeedsDom;
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
    if (slot != nullptr) {
      *slot = static_cast<int>(i);
    }
  }
  // Duplicate keys: the DOM path keeps the last of each; let it decide.
  for (size_t i = 0; i < m.size(); ++i)
    for (size_t j = i + 1; j < m.size(); ++j)
      if (m[i].key == m[j].key) return FastOutcome::kNeedsDom;

  auto reject = [&](std::string_view code, std::string message) {
    *rejection = Rejection{code, std::move(message)};
    return FastOutcome::kRejected;
  };
  auto value = [&](int i) { return m[static_cast<size_t>(i)].value; };

  EventType type;
  if (path_type) {
    type = *path_type;
  } else {
    std::string_view t;
    if (k.type < 0 || KindOf(value(k.type)) != RawKind::kString || value(k.type).size() <= 2) {
      return reject("missing_type", "type is required on every batch item");
    }
    if (!PlainString(value(k.type), &t)) return FastOutcome::kNeedsDom;
    auto parsed = ParseEventType(t);
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
  if (k.message_id >= 0 && KindOf(value(k.message_id)) != RawKind::kNull) {
    if (KindOf(value(k.message_id)) != RawKind::kString) {
      return reject("invalid_message_id", "messageId must be a string");
    }
    if (!PlainString(value(k.message_id), &given_id)) return FastOutcome::kNeedsDom;
    if (given_id.size() > limits.max_message_id_chars) {
      return reject("message_id_too_long", "messageId is longer than " +
                                               std::to_string(limits.max_message_id_chars) +
                                               " characters");
    }
  }
  if (text.size() > limits.max_event_bytes) {
    return reject("event_too_large", "event is " + std::to_string(text.size()) +
                                         " bytes; the limit is " +
                                         std::to_string(limits.max_event_bytes));
  }
  bool needs_dom = false;
  std::optional<TimestampMs> given_ts, given_orig, sent_at;
  if (auto r = RawTime(m, k.timestamp, "timestamp", &given_ts, &needs_dom))
    return reject(r->code, r->message);
  if (auto r = RawTime(m, k.original_timestamp, "originalTimestamp", &given_orig, &needs_dom)) {
    return reject(r->code, r->message);
  }
  bool own_sent_at = k.sent_at >= 0 && KindOf(value(k.sent_at)) != RawKind::kNull;
  if (own_sent_at) {
    if (auto r = RawTime(m, k.sent_at, "sentAt", &sent_at, &needs_dom))
      return reject(r->code, r->message);
  } else if (ctx.batch_sent_at != nullptr) {
    if (auto r = ReadTime(ctx.batch_sent_at, "sentAt", &sent_at))
      return reject(r->code, r->message);
  }
  if (needs_dom) return FastOutcome::kNeedsDom;

  // context.ip: inserted unless the client set it.
  bool add_ip = !ctx.client_ip.empty();
  std::string_view context_rest;  // the context object's text after its '{', when inserting
  bool context_empty = true;
  if (add_ip && k.context >= 0 && KindOf(value(k.context)) == RawKind::kObject) {
    thread_local std::vector<RawMember> cm;
    SplitObject(value(k.context), &cm);
    for (const auto& member : cm) {
      if (member.key.find('\\') != std::string_view::npos) return FastOutcome::kNeedsDom;
      if (member.key == "ip") add_ip = false;
    }
    context_empty = cm.empty();
    std::string_view raw = value(k.context);
    context_rest = raw.substr(raw.find('{') + 1);
  }

  std::optional<TimestampMs> original = given_orig ? given_orig : given_ts;
  out->clear();
  out->reserve(text.size() + 256);
  out->push_back('{');
  auto begin_member = [&](std::string_view key) {
    if (out->size() > 1) out->push_back(',');
    out->push_back('"');
    out->append(key);
    out->append("\":");
  };
  for (size_t i = 0; i < m.size(); ++i) {
    int idx = static_cast<int>(i);
    if (idx == k.write_key || idx == k.received_at || idx == k.timestamp || idx == k.type ||
        idx == k.message_id || (idx == k.original_timestamp && original) ||
        (idx == k.sent_at && sent_at)) {
      continue;
    }
    if (idx == k.context && add_ip) {
      begin_member("context");
      out->append("{\"ip\":");
      AppendJsonString(ctx.client_ip, out);
      if (context_empty) {
        out->push_back('}');
      } else {
        out->push_back(',');
        out->append(context_rest);
      }
      add_ip = false;
      continue;
    }
    begin_member(m[i].key);
    out->append(m[i].value);
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
  if (add_ip) {  // no context object to insert into: absent or null
    begin_member("context");
    out->append("{\"ip\":");
    AppendJsonString(ctx.client_ip, out);
    out->push_back('}');
  }
  out->push_back('}');
  return FastOutcome::kStored;
}

}  // namespace sy::event
