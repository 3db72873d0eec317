#include "governance/tracking_plans.h"

// valijson reports a schema it cannot compile by throwing; without this it would abort().
#ifndef VALIJSON_USE_EXCEPTIONS
#define VALIJSON_USE_EXCEPTIONS 1
#endif

#include <valijson/adapters/boost_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "event/event.h"
#include "event/raw_json.h"
#include "governance/compiled_schema.h"

namespace sy::governance {
namespace json = boost::json;
namespace {

constexpr std::string_view kUnplannedLabel = "__unplanned__";
// Nesting valijson's DOM accepts: ingest's own cap (ingest.max_json_depth) is at most this.
constexpr size_t kMaxEventDepth = 1024;
// The first block of an event's DOM (a 32 KB event needs more; the resource then allocates).
constexpr size_t kDomArenaBytes = 64 << 10;

// Keywords valijson implements with std::regex. libstdc++'s regex matcher recurses once per
// character: a 16 KB string from a client against `^(a|b)*$` — or a 32 KB run of digits against
// the `date` format's own expression — overflows an 8 MB thread stack (measured on this
// machine), and a backtracking pattern can take exponential time. An event string comes from a
// hostile client, so a schema that would run a regular expression over it is refused.
// `maxLength`, `enum` and `const` express most of what plans check with patterns.
std::string RegexKeyword(const json::value& v, size_t depth) {
  if (depth > kMaxSchemaDepth) return "";
  if (v.is_array()) {
    for (const auto& e : v.as_array())
      if (auto k = RegexKeyword(e, depth + 1); !k.empty()) return k;
    return "";
  }
  if (!v.is_object()) return "";
  for (const auto& m : v.as_object()) {
    const std::string_view key = m.key();
    // A keyword holds a string (pattern, format) or an object of schemas (patternProperties); a
    // property *named* "pattern" holds a schema object, so it is told apart by the value.
    if (key == "pattern" && m.value().is_string()) return "pattern";
    if (key == "patternProperties" && m.value().is_object()) return "patternProperties";
    // Not a regular expression, but as hostile: valijson compares every pair of items, so a
    // 32 KB array of 16,000 numbers costs 128 M comparisons on an I/O thread.
    if (key == "uniqueItems" && m.value().is_bool() && m.value().get_bool()) return "uniqueItems";
    if (key == "format" && m.value().is_string()) {
      const std::string_view f = m.value().get_string();
      if (f == "date" || f == "time" || f == "date-time") return "format: " + std::string(f);
    }
    if (auto k = RegexKeyword(m.value(), depth + 1); !k.empty()) return k;
  }
  return "";
}

// A `$ref` that points at the schema itself or an ancestor ("#", "#/definitions/a" inside a)
// would make validation recurse without end on the first event; valijson does not guard it.
// Refs are allowed only into `definitions` (or `$defs`), and no definition may reach itself.
bool RefTarget(std::string_view ref, std::string* name) {
  for (std::string_view prefix : {"#/definitions/", "#/$defs/"}) {
    if (ref.starts_with(prefix) && ref.size() > prefix.size() &&
        ref.find('/', prefix.size()) == std::string_view::npos) {
      *name = std::string(prefix.substr(2)) + std::string(ref.substr(prefix.size()));
      return true;
    }
  }
  return false;
}

void CollectRefs(const json::value& v, size_t depth, std::vector<std::string>* refs,
                 std::string* bad) {
  if (depth > kMaxSchemaDepth || !bad->empty()) return;
  if (v.is_array()) {
    for (const auto& e : v.as_array())
      CollectRefs(e, depth + 1, refs, bad);
  } else if (v.is_object()) {
    for (const auto& m : v.as_object()) {
      if (m.key() == "$ref" && m.value().is_string()) {
        std::string target;
        if (!RefTarget(m.value().get_string(), &target)) {
          *bad = "$ref '" + std::string(m.value().get_string()) +
                 "' is not supported (only #/definitions/NAME and #/$defs/NAME)";
          return;
        }
        refs->push_back(std::move(target));
      } else {
        CollectRefs(m.value(), depth + 1, refs, bad);
      }
    }
  }
}

// "" when every $ref of `doc` is local to its definitions and no definition reaches itself.
std::string CheckRefs(const json::value& doc) {
  std::string bad;
  std::vector<std::string> root_refs;
  CollectRefs(doc, 0, &root_refs, &bad);
  if (!bad.empty()) return bad;
  if (root_refs.empty()) return "";
  // definitions/NAME → the definitions it refers to.
  std::unordered_map<std::string, std::vector<std::string>> edges;
  for (const char* section : {"definitions", "$defs"}) {
    const json::object* root = doc.if_object();
    const json::value* defs = root != nullptr ? root->if_contains(section) : nullptr;
    if (defs == nullptr || !defs->is_object()) continue;
    for (const auto& m : defs->as_object()) {
      std::vector<std::string> refs;
      CollectRefs(m.value(), 0, &refs, &bad);
      if (!bad.empty()) return bad;
      edges[std::string(section) + "/" + std::string(m.key())] = std::move(refs);
    }
  }
  // Depth-first search for a cycle (0 unseen, 1 on the stack, 2 done).
  std::unordered_map<std::string, int> state;
  std::function<bool(const std::string&)> cycle = [&](const std::string& n) {
    int& s = state[n];
    if (s == 1) return true;
    if (s == 2) return false;
    s = 1;
    auto it = edges.find(n);
    if (it != edges.end())
      for (const auto& next : it->second)
        if (cycle(next)) return true;
    state[n] = 2;
    return false;
  };
  for (const auto& [name, refs] : edges)
    if (cycle(name)) return "$ref cycle through '#/" + name + "'";
  return "";
}

// The rule (JSON Schema keyword) behind one of valijson's messages, so metrics and the
// warehouse group by a bounded set. Its messages are fixed sentences (validation_visitor.hpp).
std::string_view RuleOf(std::string_view message) {
  struct Prefix {
    std::string_view text;
    std::string_view rule;
  };
  static constexpr Prefix kPrefixes[] = {
      {"Missing required property", "required"},
      {"Value type not permitted", "type"},
      {"Failed to match against any enum", "enum"},
      {"Failed to match expected value set by 'const'", "const"},
      {"String should be no more than", "maxLength"},
      {"String should be no fewer than", "minLength"},
      {"Expected number less than", "maximum"},
      {"Expected number greater than", "minimum"},
      {"Array should contain no more than", "maxItems"},
      {"Array should contain no fewer than", "minItems"},
      {"Object should have no more than", "maxProperties"},
      {"Object should have no fewer than", "minProperties"},
      {"Object contains a property", "additionalProperties"},
      {"Value should be a multiple of", "multipleOf"},
      {"Failed to validate against any schemas allowed by anyOf", "anyOf"},
      {"Failed to validate against exactly one", "oneOf"},
      {"Failed to validate against any child schemas allowed by oneOf", "oneOf"},
      {"Failed to validate against child schema", "allOf"},
      {"Target value and comparison value are not equal", "not"},
      {"Elements at indexes", "uniqueItems"},
      {"Missing dependency", "dependencies"},
      {"Failed to validate against a conditional schema", "if"},
      {"Failed to any values against subschema in 'contains'", "contains"},
      {"Array contains more items than allowed", "additionalItems"},
  };
  for (const auto& p : kPrefixes)
    if (message.starts_with(p.text)) return p.rule;
  return "schema";
}

// Messages valijson adds for a container whose member failed (the member's own message says
// what is wrong): not shown, as Segment shows only the failing fields.
bool IsContainerMessage(std::string_view message) {
  return message.starts_with("Failed to validate item #") ||
         message.starts_with("Failed to validate against schema associated with property") ||
         message.starts_with("Failed to validate against schema associated with pattern") ||
         message.starts_with("Failed to validate against additional properties schema") ||
         message.starts_with("Cannot validate item #");
}

// valijson's context ["<root>", "[properties]", "[price]"] → "properties.price".
std::string PathOf(const std::vector<std::string>& context) {
  std::string path;
  for (const auto& c : context) {
    if (c == "<root>") continue;
    std::string_view part = c;
    if (part.size() >= 2 && part.front() == '[' && part.back() == ']')
      part = part.substr(1, part.size() - 2);
    if (!path.empty()) path += '.';
    path += part;
  }
  return path;
}

std::string Cut(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
    --n;  // not inside a UTF-8 sequence
  return std::string(s.substr(0, n)) + "…";
}

}  // namespace

// Lets the plans' maps be searched with a view of the event's text.
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

struct TrackingPlans::Plan {
  std::string name;
  config::PlanAction unplanned = config::PlanAction::kAllow;
  config::PlanAction violations = config::PlanAction::kFlag;
  // Track events by name, and other types by type; the keys own the label strings.
  std::unordered_map<std::string, std::unique_ptr<EventSchema>, NameHash, std::equal_to<>> events;
  std::unordered_map<std::string, std::unique_ptr<EventSchema>, NameHash, std::equal_to<>> types;
};

TrackingPlans::~TrackingPlans() = default;

namespace {

// Reads and compiles one schema file; "" and `*out` set, or the problem.
std::string LoadSchema(const std::filesystem::path& file, std::unique_ptr<EventSchema>* out) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (ec) return "cannot read: " + ec.message();
  if (size > kMaxSchemaFileBytes)
    return "schema is " + std::to_string(size) + " bytes; the limit is " +
           std::to_string(kMaxSchemaFileBytes);
  std::ifstream in(file, std::ios::binary);
  if (!in) return "cannot read the file";
  std::string text(static_cast<size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (static_cast<size_t>(in.gcount()) != size) return "cannot read the file";
  return EventSchema::FromText(text, out);
}

// valijson's errors as the compiled checker words them: the context as a dotted path.
void ValijsonErrors(const valijson::ValidationResults& results, std::vector<SchemaError>* out) {
  for (const auto& error : results)
    out->push_back(SchemaError{PathOf(error.context), error.description});
}

// What Judge reports for an event that failed its schema: Segment shows the failing fields, so
// container messages are left out; a rule per message; at most kMaxViolationsPerEvent.
std::vector<Violation> ViolationsOf(const std::vector<SchemaError>& errors) {
  std::vector<Violation> violations;
  size_t more = 0;
  for (const auto& error : errors) {
    if (IsContainerMessage(error.message)) continue;
    if (violations.size() >= kMaxViolationsPerEvent) {
      ++more;
      continue;
    }
    Violation x;
    x.rule = std::string(RuleOf(error.message));
    x.path = error.path;
    if (x.rule == "required") {
      // "Missing required property 'sku'." names the field; the context is its parent.
      const auto open = error.message.find('\'');
      const auto close = error.message.rfind('\'');
      if (open != std::string::npos && close > open) {
        if (!x.path.empty()) x.path += '.';
        x.path += error.message.substr(open + 1, close - open - 1);
      }
    }
    x.message = Cut(error.message, 300);
    violations.push_back(std::move(x));
  }
  if (more > 0) violations.back().message += " (and " + std::to_string(more) + " more)";
  if (violations.empty()) {
    // Only container messages (keep the first), or none at all: a `false` schema says nothing.
    violations.push_back(errors.empty()
                             ? Violation{"", "schema", "the schema allows no value here"}
                             : Violation{"", "schema", Cut(errors.front().message, 300)});
  }
  return violations;
}

}  // namespace

EventSchema::~EventSchema() = default;

std::string EventSchema::FromText(std::string_view text, std::unique_ptr<EventSchema>* out) {
  std::error_code ec;
  json::parse_options popts;
  popts.max_depth = kMaxSchemaDepth;
  json::value doc = json::parse(text, ec, {}, popts);
  if (ec) {
    if (ec == json::error::too_deep)
      return "not JSON: nested deeper than " + std::to_string(kMaxSchemaDepth);
    return "not JSON: " + ec.message();
  }
  if (!doc.is_object() && !doc.is_bool()) return "a schema must be a JSON object";
  if (auto k = RegexKeyword(doc, 0); !k.empty())
    return "'" + k +
           "' is not supported: on a long string or array from a client it could crash or stall "
           "the server (use maxLength, maxItems, enum or const)";
  if (auto bad = CheckRefs(doc); !bad.empty()) return bad;
  std::unique_ptr<EventSchema> schema(new EventSchema());
  schema->valijson_ = std::make_unique<valijson::Schema>();
  try {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::BoostJsonAdapter adapter(doc);
    parser.populateSchema(adapter, *schema->valijson_);
  } catch (const std::exception& e) {
    return std::string("not a valid JSON Schema (draft-07): ") + e.what();
  }
  // Only what valijson accepted is compiled, so a schema error is always valijson's words.
  schema->compiled_ = CompiledSchema::Compile(doc, &schema->not_compiled_);
  *out = std::move(schema);
  return "";
}

std::optional<std::vector<Violation>> EventSchema::Check(std::string_view event,
                                                         std::span<const event::RawMember> members,
                                                         Engine engine) const {
  std::vector<SchemaError> errors;
  if (engine != Engine::kValijson && compiled_ != nullptr) {
    const CheckOutcome outcome = compiled_->Check(event, members, &errors);
    if (outcome == CheckOutcome::kValid) return std::vector<Violation>();
    if (outcome == CheckOutcome::kInvalid) return ViolationsOf(errors);
    errors.clear();
  }
  if (engine == Engine::kCompiled) return std::nullopt;
  // valijson over a Boost.JSON DOM of the event. The DOM lives only for this call: its nodes
  // come from one monotonic buffer (a per-node heap allocation was a large part of the cost).
  thread_local std::unique_ptr<unsigned char[]> arena(new unsigned char[kDomArenaBytes]);
  json::monotonic_resource memory(arena.get(), kDomArenaBytes);
  boost::system::error_code ec;
  // Ingest caps nesting (ingest.max_json_depth, at most 1024); Boost.JSON's own default of 32
  // would refuse a deeper event, which was then judged valid unseen.
  json::parse_options popts;
  popts.max_depth = kMaxEventDepth;
  json::value doc = json::parse(event, ec, &memory, popts);
  if (ec) {  // not expected: ingest validated the event
    return std::vector<Violation>{
        Violation{"", "schema", "the event could not be read: " + ec.message()}};
  }
  valijson::ValidationResults results;
  try {
    valijson::Validator validator;
    valijson::adapters::BoostJsonAdapter target(doc);
    if (validator.validate(*valijson_, target, &results)) return std::vector<Violation>();
  } catch (const std::exception& e) {
    // Not expected (schemas are checked at compile time); judged as a violation, not a crash.
    return std::vector<Violation>{
        Violation{"", "schema", std::string("validator error: ") + e.what()}};
  }
  ValijsonErrors(results, &errors);
  return ViolationsOf(errors);
}

Result<std::shared_ptr<const TrackingPlans>> TrackingPlans::Compile(const config::Config& config) {
  std::shared_ptr<TrackingPlans> plans(new TrackingPlans());
  std::string errors;
  const std::filesystem::path base = std::filesystem::path(config.file).parent_path();
  auto load = [&](const std::string& where, const std::string& file,
                  std::unique_ptr<EventSchema>* out) {
    std::filesystem::path p(file);
    if (p.is_relative()) p = base / p;
    if (std::string problem = LoadSchema(p, out); !problem.empty())
      errors += config.file + ": " + where + ".schema: " + p.string() + ": " + problem + "\n";
  };
  for (size_t i = 0; i < config.tracking_plans.size(); ++i) {
    const auto& pc = config.tracking_plans[i];
    const std::string where = "tracking_plans[" + std::to_string(i) + "]";
    auto plan = std::make_unique<Plan>();
    plan->name = pc.name;
    plan->unplanned = pc.unplanned;
    plan->violations = pc.violations;
    for (const auto& [event, file] : pc.events)
      load(where + ".events." + event, file, &plan->events[event]);
    for (const auto& [type, file] : pc.types)
      load(where + "." + type, file, &plan->types[type]);
    for (const auto& s : pc.sources)
      plans->by_source_[s] = plan.get();
    plans->plans_.push_back(std::move(plan));
  }
  if (!errors.empty()) return InvalidArgument(errors);
  return std::shared_ptr<const TrackingPlans>(std::move(plans));
}

bool TrackingPlans::HasPlan(std::string_view source) const {
  return by_source_.contains(std::string(source));
}

PlanVerdict TrackingPlans::Judge(std::string_view source, std::string_view stored_event) const {
  if (!HasPlan(source)) return PlanVerdict();
  thread_local std::vector<event::RawMember> members;
  if (!event::SplitObject(stored_event, &members)) {
    PlanVerdict v;
    v.plan = by_source_.find(std::string(source))->second->name;
    return v;
  }
  return Judge(source, stored_event, members);
}

PlanVerdict TrackingPlans::Judge(std::string_view source, std::string_view stored_event,
                                 std::span<const event::RawMember> members) const {
  PlanVerdict v;
  auto pit = by_source_.find(std::string(source));
  if (pit == by_source_.end()) return v;
  const Plan& plan = *pit->second;
  v.plan = plan.name;
  // The type and event name from the top-level members, which the compiled checker then reuses.
  // Views of the text when unescaped (the usual case), decoded copies otherwise.
  std::string_view type, name;
  std::string type_storage, name_storage;
  auto content = [](std::string_view raw, std::string* storage) {
    std::string_view plain;
    if (event::PlainString(raw, &plain)) return plain;
    storage->clear();
    event::UnescapeJsonString(raw.substr(1, raw.size() - 2), storage);
    return std::string_view(*storage);
  };
  for (const auto& m : members) {
    if (m.key == "type" && event::KindOf(m.value) == event::RawKind::kString) {
      type = content(m.value, &type_storage);
    } else if (m.key == "event" && event::KindOf(m.value) == event::RawKind::kString) {
      name = content(m.value, &name_storage);
    }
  }
  const EventSchema* schema = nullptr;
  if (type == "track") {
    auto it = plan.events.find(name);
    if (it == plan.events.end()) {
      v.event_label = kUnplannedLabel;
      if (plan.unplanned == config::PlanAction::kAllow) return v;
      v.action = plan.unplanned;
      v.violations.push_back(
          Violation{"event", "unplanned",
                    "event '" + Cut(name, 200) + "' is not in tracking plan '" + plan.name + "'"});
      return v;
    }
    v.event_label = it->first;
    schema = it->second.get();
  } else {
    auto it = plan.types.find(type);
    v.planned = true;
    if (it == plan.types.end()) {
      static constexpr std::string_view kTypes[] = {"identify", "group", "page", "screen", "alias"};
      v.event_label = "other";
      for (std::string_view t : kTypes)
        if (t == type) v.event_label = t;
      return v;  // no schema for the type: nothing to check
    }
    v.event_label = it->first;
    schema = it->second.get();
  }
  v.planned = true;
  v.violations = std::move(*schema->Check(stored_event, members));
  if (!v.violations.empty()) v.action = plan.violations;
  return v;
}

std::string ViolationsJson(std::span<const Violation> violations) {
  // Written directly (a DOM and its serializer cost more than the check on a flagged event).
  std::string out = "[";
  for (size_t i = 0; i < violations.size(); ++i) {
    const Violation& x = violations[i];
    out += i == 0 ? "{\"path\":" : ",{\"path\":";
    event::AppendJsonString(x.path, &out);
    out += ",\"rule\":";
    event::AppendJsonString(x.rule, &out);
    out += ",\"message\":";
    event::AppendJsonString(x.message, &out);
    out += '}';
  }
  out += ']';
  return out;
}

std::string WithContextViolations(std::string_view stored_event, std::string_view violations_json) {
  std::vector<event::RawMember> top;
  if (!event::SplitObject(stored_event, &top)) return std::string(stored_event);
  return WithContextViolations(stored_event, violations_json, top);
}

std::string WithContextViolations(std::string_view stored_event, std::string_view violations_json,
                                  std::span<const event::RawMember> top) {
  std::string out;
  // The last "context" counts (duplicate keys: the last wins).
  std::string_view context;
  for (const auto& m : top)
    if (m.key == "context") context = m.value;
  if (!context.empty() && event::KindOf(context) == event::RawKind::kObject) {
    // Insert before the context's closing brace, after its last member if it has one.
    const size_t close =
        static_cast<size_t>(context.data() - stored_event.data()) + context.size() - 1;
    const size_t first = context.find_first_not_of(" \t\r\n", 1);
    const bool has_members = first != std::string_view::npos && context[first] != '}';
    out.reserve(stored_event.size() + violations_json.size() + 16);
    out.append(stored_event.substr(0, close));
    out += has_members ? ",\"violations\":" : "\"violations\":";
    out += violations_json;
    out.append(stored_event.substr(close));
    return out;
  }
  // No context object: add one as the last member (a later key wins over a non-object one).
  const size_t close = stored_event.rfind('}');
  out.reserve(stored_event.size() + violations_json.size() + 32);
  out.append(stored_event.substr(0, close));
  out += top.empty() ? "\"context\":{\"violations\":" : ",\"context\":{\"violations\":";
  out += violations_json;
  out += "}}";
  return out;
}

PlanMetrics::PlanMetrics(MetricsRegistry* metrics) {
  events_ = metrics->Counters(
      "switchyard_plan_events_total",
      "Events judged by a tracking plan, by plan, event (a name of the plan, the type, or "
      "__unplanned__) and outcome (valid, flagged, blocked, allowed).",
      {"plan", "event", "outcome"});
  violations_ = metrics->Counters(
      "switchyard_plan_violations_total",
      "Violations found by tracking plans, by plan, event and rule (the JSON Schema keyword, "
      "or unplanned).",
      {"plan", "event", "rule"});
}

void PlanMetrics::Count(const PlanVerdict& v) {
  if (v.plan.empty()) return;
  std::string_view outcome = v.planned ? "valid" : "allowed";
  if (!v.violations.empty()) {
    outcome = v.action == config::PlanAction::kBlock  ? "blocked"
              : v.action == config::PlanAction::kFlag ? "flagged"
                                                      : "allowed";
  }
  events_->WithCached({v.plan, v.event_label, outcome})->Inc();
  for (const auto& x : v.violations)
    violations_->WithCached({v.plan, v.event_label, x.rule})->Inc();
}

}  // namespace sy::governance
