#include "event/event.h"

#include <array>
#include <charconv>
#include <random>

#include "base/time_format.h"

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

}  // namespace sy::event
