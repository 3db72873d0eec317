// Tracking plans (docs/governance.md): JSON Schema (draft-07; a compiled checker, valijson for
// what it does not compile) per track event name and per event type, per source; each event of a
// planned source is judged at ingest on the event as stored, and the plan's action decides what
// happens to it: allow (stored and delivered as is), flag (stored and delivered with
// `context.violations`), block (stored with the log header `sy-blocked`, kept out of every
// destination until `switchyard violations release`).
//
// Who calls it: app/ compiles the plans at start and at every config change (Compile; an error
// names the file and the problem, and nothing is applied), ingest/ judges each event on its I/O
// thread (Judge), the CLI re-judges released events.
//
// Thread safety: a compiled TrackingPlans is immutable; Judge is const and may run on any number
// of threads at once. PlanMetrics is thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/metrics.h"
#include "base/status.h"
#include "config/config.h"
#include "event/raw_json.h"

namespace valijson {
class Schema;
}

namespace sy::governance {

// Why a schema file is refused: its size is capped so a config cannot make the server read and
// compile a huge document at every reload (real plans' schemas are a few KB).
inline constexpr size_t kMaxSchemaFileBytes = 1 << 20;
// Nesting of a schema document (JSON objects and arrays); deeper is refused.
inline constexpr size_t kMaxSchemaDepth = 64;
// Violations kept per event (the rest are counted in the last one's message): an event from a
// hostile client could break every rule of a large schema.
inline constexpr size_t kMaxViolationsPerEvent = 20;

// One thing wrong with an event: `path` the field in the event (dotted, "properties.price"),
// `rule` the JSON Schema keyword that refused it ("required", "type", … or "unplanned"),
// `message` what the validator said.
struct Violation {
  std::string path;
  std::string rule;
  std::string message;
};

// [{"path":…,"rule":…,"message":…}, …] — what `context.violations` and the header
// `sy-violations` hold.
std::string ViolationsJson(std::span<const Violation> violations);

// The judgement of one event.
struct PlanVerdict {
  // kAllow: store and deliver unchanged (valid, no plan, or the plan allows what is wrong).
  config::PlanAction action = config::PlanAction::kAllow;
  // The plan that judged (empty: the source has none) and the metric label of the event: a name
  // of the plan's `events`, the type for other types, or "__unplanned__" — a bounded set,
  // whatever the client sent.
  std::string_view plan;
  std::string_view event_label;
  bool planned = false;  // a schema applied (or the type has none, which is not "unplanned")
  std::vector<Violation> violations;
};

class CompiledSchema;

// One schema file, compiled twice: by valijson, and into the compiled checker's program
// (compiled_schema.h) when it uses only the keywords the program compiles. Events are checked by
// the program; valijson checks them when the schema is not compiled, or when the program leaves an
// event to it (a duplicate key in a checked object, an integer above 2^63 - 1, U+0000 in a
// checked string). Both report the same violations (compiled_schema_test.cc compares them).
// Immutable; Check runs on any number of threads at once.
class EventSchema {
 public:
  enum class Engine { kAuto, kValijson, kCompiled };
  ~EventSchema();
  // Compiles a schema document: "" and `*out` set, or the problem (not JSON, too deep, a refused
  // keyword, a $ref that is not local or is cyclic, what valijson refuses).
  static std::string FromText(std::string_view text, std::unique_ptr<EventSchema>* out);
  // The keyword (or construct) that keeps the schema from being compiled; "" when compiled.
  const std::string& not_compiled() const { return not_compiled_; }
  // The violations of `event`, a JSON object ingest validated, `members` its top-level members
  // (event::SplitObject); empty when it is valid. kCompiled answers nullopt when the program does
  // not decide (not compiled, or an event left to valijson); the others always answer.
  std::optional<std::vector<Violation>> Check(std::string_view event,
                                              std::span<const event::RawMember> members,
                                              Engine engine = Engine::kAuto) const;

 private:
  EventSchema() = default;
  std::unique_ptr<valijson::Schema> valijson_;
  std::unique_ptr<CompiledSchema> compiled_;
  std::string not_compiled_;
};

class TrackingPlans {
 public:
  ~TrackingPlans();
  // Reads and compiles every schema file of `config.tracking_plans` (relative paths against the
  // config file's directory). Errors, all of them, one per line:
  // "<config file>: tracking_plans[i].events.<name>.schema: <schema file>: <problem>".
  static Result<std::shared_ptr<const TrackingPlans>> Compile(const config::Config& config);

  // True when no source has a plan (ingest skips judging).
  bool empty() const { return by_source_.empty(); }
  bool HasPlan(std::string_view source) const;

  // Judges one event as stored (`stored_event` is JSON ingest validated) of `source`.
  PlanVerdict Judge(std::string_view source, std::string_view stored_event) const;
  // The same, given the stored event's top-level members (as event::SplitObject splits it;
  // ingest has them from event::ValidateAndEnrich), so the event is not split again.
  PlanVerdict Judge(std::string_view source, std::string_view stored_event,
                    std::span<const event::RawMember> stored_members) const;

 private:
  struct Plan;
  TrackingPlans() = default;
  std::vector<std::unique_ptr<Plan>> plans_;
  std::unordered_map<std::string, const Plan*> by_source_;
};

// The stored event with `"violations":<violations_json>` as the last member of its `context`
// object (a `context` is added when the event has none or it is not an object, replacing it),
// every other byte as it was (the client's numbers stay as sent). `stored_event` is a JSON
// object ingest validated.
std::string WithContextViolations(std::string_view stored_event, std::string_view violations_json);
// The same, given the stored event's top-level members (event::SplitObject's split of it).
std::string WithContextViolations(std::string_view stored_event, std::string_view violations_json,
                                  std::span<const event::RawMember> stored_members);

// Metrics of the plans, one vocabulary (docs/metrics.md):
// switchyard_plan_events_total{plan, event, outcome} (outcome: valid, flagged, blocked, allowed)
// and switchyard_plan_violations_total{plan, event, rule}.
class PlanMetrics {
 public:
  explicit PlanMetrics(MetricsRegistry* metrics);
  void Count(const PlanVerdict& verdict);

 private:
  CounterFamily* events_;
  CounterFamily* violations_;
};

}  // namespace sy::governance
