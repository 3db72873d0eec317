#include "governance/violations.h"

#include <boost/json.hpp>

#include <charconv>
#include <future>
#include <unordered_map>

#include "base/time_format.h"
#include "event/raw_json.h"

namespace sy::governance {
namespace json = boost::json;
namespace {

constexpr size_t kReadRecords = 4096;
constexpr size_t kReadBytes = 8 << 20;
constexpr size_t kAppendChunk = 1000;  // records per Append call of a release

std::optional<uint64_t> ParseOffset(const std::string& s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// The type and (track) event name of a stored event.
void TypeAndName(std::string_view payload, std::string* type, std::string* name) {
  std::vector<event::RawMember> members;
  if (!event::SplitObject(payload, &members)) return;
  for (const auto& m : members) {
    if (event::KindOf(m.value) != event::RawKind::kString) continue;
    std::string* out = m.key == "type" ? type : m.key == "event" ? name : nullptr;
    if (out == nullptr) continue;
    out->clear();
    event::UnescapeJsonString(m.value.substr(1, m.value.size() - 2), out);
  }
  if (*type != "track") name->clear();
}

}  // namespace

Result<std::vector<BlockedEvent>> ScanBlocked(log::EventLog* log, const BlockedFilter& filter) {
  SY_ASSIGN_OR_RETURN(auto reader, log->OpenReader());
  std::vector<BlockedEvent> blocked;
  std::unordered_map<uint64_t, uint64_t> copies;  // original offset → copy offset
  while (true) {
    SY_ASSIGN_OR_RETURN(auto batch, reader->Read(kReadRecords, kReadBytes));
    if (batch.empty()) break;
    for (auto& e : batch) {
      if (e.headers.empty()) continue;
      if (const std::string* from = log::FindHeader(e.headers, log::kHeaderReleasedFrom)) {
        if (auto o = ParseOffset(*from)) copies.emplace(*o, e.offset.value());
        continue;
      }
      const std::string* plan = log::FindHeader(e.headers, log::kHeaderBlocked);
      if (plan == nullptr) continue;
      if (!filter.plan.empty() && *plan != filter.plan) continue;
      if (!filter.offsets.empty() && std::find(filter.offsets.begin(), filter.offsets.end(),
                                               e.offset.value()) == filter.offsets.end())
        continue;
      BlockedEvent b;
      TypeAndName(e.payload, &b.type, &b.event);
      if (!filter.event.empty() && filter.event != (b.type == "track" ? b.event : b.type)) continue;
      b.plan = *plan;
      if (const std::string* v = log::FindHeader(e.headers, log::kHeaderViolations))
        b.violations = *v;
      b.entry = std::move(e);
      blocked.push_back(std::move(b));
    }
  }
  for (auto& b : blocked) {
    auto it = copies.find(b.entry.offset.value());
    if (it != copies.end()) b.released_as = it->second;
  }
  return blocked;
}

std::string BlockedEventJson(const BlockedEvent& b) {
  json::object o;
  o["offset"] = b.entry.offset.value();
  o["source"] = b.entry.source;
  o["messageId"] = b.entry.message_id;
  o["receivedAt"] = FormatIso8601(b.entry.received_at);
  o["plan"] = b.plan;
  o["type"] = b.type;
  if (b.type == "track") o["event"] = b.event;
  boost::system::error_code ec;
  json::value violations = json::parse(b.violations, ec);
  o["violations"] = ec ? json::value(json::array()) : std::move(violations);
  o["released"] = b.released_as.has_value();
  if (b.released_as) o["releasedAs"] = *b.released_as;
  return json::serialize(o);
}

std::string ReleaseReportJson(const ReleaseReport& r) {
  json::object o;
  o["released"] = r.released;
  o["alreadyReleased"] = r.already_released;
  o["stillBlocked"] = r.still_blocked;
  json::array offsets;
  for (uint64_t x : r.still_blocked_offsets)
    offsets.emplace_back(x);
  o["stillBlockedOffsets"] = std::move(offsets);
  return json::serialize(o);
}

Result<ReleaseReport> ReleaseBlocked(log::EventLog* log, const TrackingPlans* plans,
                                     const BlockedFilter& filter, bool force) {
  SY_ASSIGN_OR_RETURN(auto blocked, ScanBlocked(log, filter));
  ReleaseReport report;
  std::vector<log::LogRecord> copies;
  for (auto& b : blocked) {
    if (b.released_as) {
      ++report.already_released;
      continue;
    }
    std::string payload = std::move(b.entry.payload);
    log::LogRecord r{b.entry.source, b.entry.message_id, b.entry.received_at, std::string()};
    if (!force && plans != nullptr) {
      PlanVerdict v = plans->Judge(b.entry.source, payload);
      if (!v.violations.empty() && v.action == config::PlanAction::kBlock) {
        ++report.still_blocked;
        if (report.still_blocked_offsets.size() < 100)
          report.still_blocked_offsets.push_back(b.entry.offset.value());
        continue;
      }
      if (!v.violations.empty() && v.action == config::PlanAction::kFlag) {
        std::string json_violations = ViolationsJson(v.violations);
        payload = WithContextViolations(payload, json_violations);
        r.headers.push_back({std::string(log::kHeaderPlan), std::string(v.plan)});
        r.headers.push_back({std::string(log::kHeaderViolations), std::move(json_violations)});
      }
    }
    r.payload = std::move(payload);
    r.headers.push_back(
        {std::string(log::kHeaderReleasedFrom), std::to_string(b.entry.offset.value())});
    copies.push_back(std::move(r));
  }
  // In chunks, each waited for: a copy is released once it is durable.
  for (size_t at = 0; at < copies.size(); at += kAppendChunk) {
    const size_t n = std::min(kAppendChunk, copies.size() - at);
    std::vector<log::LogRecord> chunk(std::make_move_iterator(copies.begin() + at),
                                      std::make_move_iterator(copies.begin() + at + n));
    std::promise<Status> done;
    auto f = done.get_future();
    log->Append(std::move(chunk),
                [&done](const log::AppendResult& r) { done.set_value(r.status); });
    if (Status s = f.get(); !s.ok()) return s;  // a rerun finds what was appended
    report.released += n;
  }
  return report;
}

}  // namespace sy::governance
