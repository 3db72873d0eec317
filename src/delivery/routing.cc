#include "delivery/routing.h"

#include <string.h>

#include <boost/json.hpp>

#include "event/raw_json.h"

namespace sy::delivery {
namespace json = boost::json;
namespace {

// `payload` without the members of its top-level "properties" and "traits" objects whose key is
// in `drop`; every other byte as it was, so the client's numbers stay as sent (a parse and
// re-serialization wrote 9.99 as 9.99E0). nullopt when nothing is dropped. `payload` is JSON a
// validating parser accepted.
std::optional<std::string> DropProperties(std::string_view payload,
                                          const std::set<std::string, std::less<>>& drop) {
  std::vector<event::RawMember> top, members;
  std::string top_storage, storage;
  std::vector<std::string_view> top_keys, keys;
  if (!event::SplitObject(payload, &top)) return std::nullopt;
  event::DecodedKeys(top, &top_storage, &top_keys);
  std::string out;
  size_t copied = 0;  // payload bytes before this are in `out`
  for (size_t t = 0; t < top.size(); ++t) {
    if (top_keys[t] != "properties" && top_keys[t] != "traits") continue;
    if (event::KindOf(top[t].value) != event::RawKind::kObject) continue;
    if (!event::SplitObject(top[t].value, &members)) continue;
    event::DecodedKeys(members, &storage, &keys);
    std::string kept = "{";
    bool dropped = false;
    for (size_t i = 0; i < members.size(); ++i) {
      if (drop.contains(keys[i])) {
        dropped = true;
        continue;
      }
      if (kept.size() > 1) kept += ',';
      kept += '"';
      kept += members[i].key;
      kept += "\":";
      kept += members[i].value;
    }
    if (!dropped) continue;
    kept += '}';
    const size_t begin = static_cast<size_t>(top[t].value.data() - payload.data());
    out.append(payload.substr(copied, begin - copied));
    out += kept;
    copied = begin + top[t].value.size();
  }
  if (copied == 0) return std::nullopt;  // nothing dropped (a value never starts at byte 0)
  out.append(payload.substr(copied));
  return out;
}

}  // namespace

std::string_view RouteDecisionName(RouteDecision d) {
  switch (d) {
    case RouteDecision::kSend:
      return "send";
    case RouteDecision::kOtherSource:
      return "other_source";
    case RouteDecision::kIntegrationsOff:
      return "integrations_off";
    case RouteDecision::kDroppedEvent:
      return "drop_events";
    case RouteDecision::kUnparseable:
      return "unparseable";
    case RouteDecision::kBlockedByPlan:
      return "tracking_plan";
    case RouteDecision::kConsentDenied:
      return "consent";
  }
  return "?";
}

EventRouter::EventRouter(const config::DestinationConfig& config, std::string display_name,
                         bool integrations_preset)
    : sources_(config.sources.begin(), config.sources.end()),
      name_(config.name),
      display_name_(std::move(display_name)),
      drop_events_(config.drop_events.begin(), config.drop_events.end()),
      drop_properties_(config.drop_properties.begin(), config.drop_properties.end()),
      integrations_preset_(integrations_preset),
      consent_categories_(config.consent_categories),
      consent_deny_sources_(config.consent_deny_by_default_sources.begin(),
                            config.consent_deny_by_default_sources.end()) {}

bool EventRouter::ConsentAllows(const log::LogEntry& entry) const {
  if (consent_categories_.empty()) return true;
  std::optional<bool> granted = ConsentGrantsAll(entry.payload, consent_categories_);
  if (granted) return *granted;
  return !consent_deny_sources_.contains(entry.source);
}

namespace {

// true/false for a value of the integrations object: false and null switch off; anything else
// (true, an options object) switches on.
bool Enabled(const json::value& v) {
  if (v.is_bool()) return v.get_bool();
  return !v.is_null();
}

}  // namespace

std::optional<RouteDecision> EventRouter::DecideByRawIntegrations(std::string_view payload) const {
  // Without a \u escape, a raw key equals "integrations" exactly when its decoded text does
  // (any other escape decodes to a character the name does not contain). Duplicate keys: the
  // last one counts, as in Boost.JSON's parse below.
  if (!event::SplitObject(payload, &scratch_)) return std::nullopt;
  std::string_view integrations;
  for (const auto& m : scratch_) {
    if (m.key == "integrations") integrations = m.value;
  }
  if (integrations.empty() || event::KindOf(integrations) != event::RawKind::kObject) {
    return RouteDecision::kSend;
  }
  // Keys inside are compared with configured names: only when no escape can alter them.
  if (integrations.find('\\') != std::string_view::npos) return std::nullopt;
  if (!event::SplitObject(integrations, &scratch_)) return std::nullopt;
  std::string_view own, named, all;
  for (const auto& m : scratch_) {
    if (m.key == name_) own = m.value;
    if (m.key == display_name_) named = m.value;
    if (m.key == "All") all = m.value;
  }
  if (own.empty()) own = named;
  // false and null switch off; anything else (true, an options object) switches on.
  auto enabled = [](std::string_view v) { return v != "false" && v != "null"; };
  if (!own.empty()) return enabled(own) ? RouteDecision::kSend : RouteDecision::kIntegrationsOff;
  if (!all.empty() && !enabled(all)) return RouteDecision::kIntegrationsOff;
  return RouteDecision::kSend;
}

RouteDecision EventRouter::Decide(const log::LogEntry& entry,
                                  std::optional<std::string>* rewritten_payload) const {
  if (!sources_.empty() && !sources_.contains(entry.source)) return RouteDecision::kOtherSource;
  if (!entry.headers.empty() && log::FindHeader(entry.headers, log::kHeaderBlocked) != nullptr)
    return RouteDecision::kBlockedByPlan;
  if (!ConsentAllows(entry)) return RouteDecision::kConsentDenied;
  const std::string_view payload = entry.payload;
  if (integrations_preset_ && drop_events_.empty() && drop_properties_.empty()) {
    return RouteDecision::kSend;
  }
  if (drop_events_.empty() && drop_properties_.empty() &&
      payload.find("\\u") == std::string_view::npos) {
    // memmem, not string_view::find: find stops at every '"' (memchr on the first byte).
    static constexpr std::string_view kKey = "\"integrations\"";
    if (::memmem(payload.data(), payload.size(), kKey.data(), kKey.size()) == nullptr) {
      return RouteDecision::kSend;  // nothing in the event can say no: skip the parse
    }
    if (auto d = DecideByRawIntegrations(payload)) return *d;
  }
  boost::system::error_code ec;
  json::value doc = json::parse(payload, ec);
  if (ec || !doc.is_object()) return RouteDecision::kUnparseable;
  json::object& obj = doc.as_object();
  if (auto* integ = obj.if_contains("integrations"); integ && integ->is_object()) {
    const json::object& io = integ->as_object();
    const json::value* own = io.if_contains(name_);
    if (!own) own = io.if_contains(display_name_);
    if (own) {
      if (!Enabled(*own)) return RouteDecision::kIntegrationsOff;
    } else if (const json::value* all = io.if_contains("All"); all && !Enabled(*all)) {
      return RouteDecision::kIntegrationsOff;
    }
  }
  if (!drop_events_.empty()) {
    if (auto* ev = obj.if_contains("event"); ev && ev->is_string()) {
      if (drop_events_.contains(std::string_view(ev->get_string()))) {
        return RouteDecision::kDroppedEvent;
      }
    }
  }
  if (!drop_properties_.empty()) {
    if (auto kept = DropProperties(payload, drop_properties_))
      *rewritten_payload = std::move(*kept);
  }
  return RouteDecision::kSend;
}

RouteDecision EventRouter::Route(const log::LogEntry& entry, RoutedEvent* out) const {
  log::LogEntry copy = entry;
  return Route(std::move(copy), out);
}

RouteDecision EventRouter::Route(log::LogEntry&& entry, RoutedEvent* out) const {
  std::optional<std::string> rewritten;
  RouteDecision d = Decide(entry, &rewritten);
  if (d != RouteDecision::kSend) return d;
  out->offset = entry.offset;
  out->source = std::move(entry.source);
  out->message_id = std::move(entry.message_id);
  out->received_at = entry.received_at;
  out->payload = rewritten ? std::move(*rewritten) : std::move(entry.payload);
  out->headers = std::move(entry.headers);
  return RouteDecision::kSend;
}

std::string UserKeyOf(std::string_view payload) {
  boost::system::error_code ec;
  json::value doc = json::parse(payload, ec);
  if (ec || !doc.is_object()) return "";
  for (const char* k : {"userId", "anonymousId"}) {
    if (auto* v = doc.as_object().if_contains(k); v && v->is_string() && !v->get_string().empty())
      return std::string(v->get_string());
  }
  return "";
}

namespace {

// The value of the member named `key` in the JSON object `object` (decoded keys; the last of
// duplicates), or empty when absent or `object` is not an object.
std::string_view MemberValue(std::string_view object, std::string_view key) {
  std::vector<event::RawMember> members;
  if (!event::SplitObject(object, &members)) return {};
  std::string storage;
  std::vector<std::string_view> keys;
  event::DecodedKeys(members, &storage, &keys);
  std::string_view found;
  for (size_t i = 0; i < members.size(); ++i)
    if (keys[i] == key) found = members[i].value;
  return found;
}

}  // namespace

std::optional<bool> ConsentGrantsAll(std::string_view payload,
                                     const std::vector<std::string>& needed) {
  std::string_view v = payload;
  for (std::string_view key : {"context", "consent", "categoryPreferences"}) {
    v = MemberValue(v, key);
    if (v.empty() || event::KindOf(v) != event::RawKind::kObject) return std::nullopt;
  }
  std::vector<event::RawMember> members;
  if (!event::SplitObject(v, &members)) return std::nullopt;
  std::string storage;
  std::vector<std::string_view> keys;
  event::DecodedKeys(members, &storage, &keys);
  for (const auto& category : needed) {
    std::string_view value;
    for (size_t i = 0; i < members.size(); ++i)
      if (keys[i] == category) value = members[i].value;
    if (value != "true") return false;
  }
  return true;
}

}  // namespace sy::delivery
