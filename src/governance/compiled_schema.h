// The compiled checker of tracking plans (docs/governance.md, "How events are checked"): a
// JSON Schema (draft-07) compiled at config load into a tree of checks, run over an event's text
// without building a DOM. It walks the raw JSON that ingest's simdjson pass already validated,
// splitting only the objects and arrays the schema looks into (the SSE2 splitters of
// event/raw_json.h), so a valid event costs about one pass over the members a schema names.
//
// It reports exactly what valijson reports for the same schema and event — the same messages,
// with the same context paths, in the same order (valijson's constraint order, its sorted
// `properties` and `required`) — and a differential test holds it to that
// (compiled_schema_test.cc). Where matching valijson exactly would need more than a walk over the
// text (a duplicate key inside a checked object, an integer above 2^63 - 1, a "\u0000" inside a
// checked string or key) the check answers kUndecided and the caller asks valijson.
//
// Compiled keywords: type, required, properties, additionalProperties (boolean or schema), enum
// and const (of strings, numbers, booleans, null), minimum, maximum, exclusiveMinimum,
// exclusiveMaximum, minLength and maxLength (in code points), minItems, maxItems, items (one
// schema), allOf, anyOf, oneOf, $ref into the document's definitions, boolean schemas, and the
// annotations valijson ignores. A schema using any other keyword valijson implements is not
// compiled (Compile names the keyword) and valijson checks it.
//
// Thread safety: a CompiledSchema is immutable; Check is const and runs on any number of threads
// at once (its scratch memory is per thread).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "event/raw_json.h"

namespace boost::json {
class value;
}

namespace sy::governance {

// One failed check as valijson words it: `path` the dotted context ("properties.items.0"; keys
// decoded, "" for the event itself) and valijson's `message` (container messages included; the
// caller filters them).
struct SchemaError {
  std::string path;
  std::string message;
};

enum class CheckOutcome { kValid, kInvalid, kUndecided };

class CompiledSchema {
 public:
  ~CompiledSchema();
  // The program of `schema` (a document valijson accepted, with only local, acyclic $refs), or
  // nullptr with `*not_compiled` naming the keyword (or the construct) it does not compile.
  static std::unique_ptr<CompiledSchema> Compile(const boost::json::value& schema,
                                                 std::string* not_compiled);

  // Checks `event`, a JSON object ingest validated, whose top-level members are `members` (as
  // event::SplitObject gives them). kInvalid appends the errors to `*errors`, in valijson's
  // order; kUndecided (see above) leaves `*errors` unspecified. Linear in the event's size for a
  // given schema: each schema level that looks into a value splits that value once.
  CheckOutcome Check(std::string_view event, std::span<const event::RawMember> members,
                     std::vector<SchemaError>* errors) const;

  struct Node;

 private:
  CompiledSchema() = default;
  std::vector<std::unique_ptr<Node>> nodes_;  // nodes_[0] is the root
};

}  // namespace sy::governance
