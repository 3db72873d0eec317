#include "app/dead_letter_admin.h"

#include <boost/json.hpp>

#include <set>

#include "base/hash.h"
#include "base/logging.h"
#include "base/time_format.h"
#include "delivery/redrive.h"
#include "destinations/registry.h"

namespace sy::app {

namespace json = boost::json;

namespace {

std::shared_ptr<spdlog::logger> Logger() {
  static auto l = ModuleLogger("app");
  return l;
}

admin::ApiResult Answer(int status, std::string body) {
  admin::ApiResult r;
  r.http_status = status;
  r.body = std::move(body);
  return r;
}

admin::ApiResult ErrorAnswer(int status, std::string_view code, std::string_view message,
                             std::string_view field = {}) {
  json::object e{{"code", code}, {"message", message}};
  if (!field.empty()) e["field"] = field;
  return Answer(status, json::serialize(json::object{{"error", std::move(e)}}));
}

admin::ApiResult StoreError(const Status& s) {
  Logger()->error("dead-letter store failed status={}", s.ToString());
  return ErrorAnswer(500, "internal", "the dead-letter store failed; see the server log");
}

// One entry of the DlqPage: the letter's fields, then (with payloads) the stored event byte for
// byte when it is a JSON object — numbers stay as the client sent them.
std::string EntryJson(const delivery::DeadLetter& d, bool show_payload) {
  json::object o{{"id", DeadLetterId(d)},
                 {"message_id", d.message_id},
                 {"source", d.source},
                 {"offset", d.offset.value()},
                 {"received_at", FormatIso8601(d.received_at)},
                 {"dead_lettered_at", FormatIso8601(d.dead_lettered_at)},
                 {"attempts", d.attempts},
                 {"last_status", d.last_status},
                 {"reason", d.reason},
                 {"last_response", d.last_response}};
  std::string out = json::serialize(o);
  if (!show_payload) return out;
  boost::system::error_code ec;
  json::value v = json::parse(d.event, ec);
  out.pop_back();  // '}'
  out += ",\"payload\":";
  out += (!ec && v.is_object()) ? d.event : json::serialize(json::value(d.event));
  out += '}';
  return out;
}

}  // namespace

std::string DeadLetterId(const delivery::DeadLetter& d) {
  std::string who = d.source;
  who += '\0';
  who += d.message_id;
  Hash128 h =
      HashPair(who, std::to_string(d.offset.value()) + ":" + std::to_string(d.received_at.value()));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i) {
    id[static_cast<size_t>(i)] = kHex[h.lo & 0xf];
    h.lo >>= 4;
  }
  return id;
}

admin::ApiResult DeadLetterAdmin::ListDeadLetters(std::string_view destination, size_t limit,
                                                  std::string_view after, bool show_payloads) {
  config::DestinationConfig d;
  if (!options_.find(destination, &d))
    return ErrorAnswer(404, "not_found", "no destination '" + std::string(destination) + "'");
  auto scan = options_.store->Scan(destination);
  if (!scan.ok()) return StoreError(scan.status());
  const auto& letters = scan->letters;
  size_t start = 0;
  if (!after.empty()) {
    size_t i = 0;
    while (i < letters.size() && DeadLetterId(letters[i]) != after)
      ++i;
    if (i == letters.size()) {
      return ErrorAnswer(400, "invalid_value",
                         "after: no letter with that id (redriven or purged meanwhile?)", "after");
    }
    start = i + 1;
  }
  const size_t end = std::min(letters.size(), start + limit);
  std::string out = "{\"entries\":[";
  for (size_t i = start; i < end; ++i) {
    if (i > start) out += ',';
    out += EntryJson(letters[i], show_payloads);
  }
  out += "],\"total\":" + std::to_string(letters.size()) + ",\"next_after\":";
  out += end < letters.size() && end > start
             ? json::serialize(json::value(DeadLetterId(letters[end - 1])))
             : std::string("null");
  uint64_t skipped = scan->corrupt_bytes;
  for (const auto& u : scan->unreadable)
    skipped += u.size();
  out += ",\"skipped_bytes\":" + std::to_string(skipped) + "}";
  return Answer(200, std::move(out));
}

admin::ApiResult DeadLetterAdmin::RedriveDeadLetters(const admin::Actor& actor,
                                                     std::string_view destination,
                                                     const std::vector<std::string>* ids) {
  config::DestinationConfig d;
  if (!options_.find(destination, &d))
    return ErrorAnswer(404, "not_found", "no destination '" + std::string(destination) + "'");
  auto instance = destinations::CreateDestination(d, options_.config_file);
  if (!instance.ok()) {
    return ErrorAnswer(
        409, "destination_unusable",
        "cannot build the destination to send with: " + instance.status().ToString());
  }
  std::set<std::string, std::less<>> wanted, seen;
  if (ids) wanted.insert(ids->begin(), ids->end());
  std::function<bool(const delivery::DeadLetter&)> select;
  if (ids) {
    select = [&](const delivery::DeadLetter& letter) {
      std::string id = DeadLetterId(letter);
      if (!wanted.contains(id)) return false;
      seen.insert(std::move(id));
      return true;
    };
  }
  Logger()->info("dlq redrive destination={} by={} letters={}", destination, actor.name,
                 ids ? std::to_string(ids->size()) : std::string("all"));
  // Made and destroyed on this thread (its engine is this thread's JavaScript context).
  std::unique_ptr<delivery::EventTransform> transform =
      options_.make_transform ? options_.make_transform(d) : nullptr;
  auto r = delivery::RedriveDeadLetters(options_.store, std::string(destination), instance->get(),
                                        options_.http, d.allow_private_network, options_.clock,
                                        select, transform.get());
  if (transform) transform->ThreadDone();
  if (!r.ok()) return StoreError(r.status());
  json::array not_found;
  for (const auto& id : wanted)
    if (!seen.contains(id)) not_found.push_back(json::value(id));
  return Answer(200, json::serialize(json::object{{"delivered", r->delivered},
                                                  {"kept", r->kept},
                                                  {"dropped", r->dropped},
                                                  {"not_found", std::move(not_found)}}));
}

admin::ApiResult DeadLetterAdmin::PurgeDeadLetters(const admin::Actor& actor,
                                                   std::string_view destination,
                                                   const std::vector<std::string>& ids) {
  config::DestinationConfig d;
  if (!options_.find(destination, &d))
    return ErrorAnswer(404, "not_found", "no destination '" + std::string(destination) + "'");
  std::set<std::string, std::less<>> wanted(ids.begin(), ids.end()), seen;
  size_t purged = 0;
  Status s = options_.store->Rewrite(destination, [&](std::vector<delivery::DeadLetter> letters) {
    std::vector<delivery::DeadLetter> keep;
    for (auto& letter : letters) {
      std::string id = DeadLetterId(letter);
      if (wanted.contains(id)) {
        seen.insert(std::move(id));
        ++purged;
        continue;
      }
      keep.push_back(std::move(letter));
    }
    return keep;
  });
  if (!s.ok() && s.code() != StatusCode::kNotFound) return StoreError(s);
  Logger()->info("dlq purge destination={} by={} purged={}", destination, actor.name, purged);
  json::array not_found;
  for (const auto& id : wanted)
    if (!seen.contains(id)) not_found.push_back(json::value(id));
  return Answer(
      200, json::serialize(json::object{{"purged", purged}, {"not_found", std::move(not_found)}}));
}

}  // namespace sy::app
