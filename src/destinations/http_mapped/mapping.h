// The mapped HTTP destination's mapping language, compiled once at config time into a small
// program and run per event without parsing the mapping again.
//
// A template is a JSON tree (from YAML). Strings holding `{{ expression }}` are templates: a
// string that is exactly one `{{ … }}` yields the expression's value with its JSON type (a number
// stays a number, `{{ properties }}` an object); text around or between them makes a string. Every
// other value is a literal. An object key starting with `...` spreads its value (an object) into
// the enclosing object at that point; later keys override earlier ones.
//
// Expressions:
//   a path into the Segment message: `properties.total`, `context.traits.email`,
//     `properties.products.0.id` (a number indexes a list); the first key must be one of the
//     message's top-level fields (kTopLevelFields), so a misspelt root fails at config time;
//   what the destination knows beside the message: `$message_id`, `$received_at` (Unix ms),
//     `$source`, `$api_key` (the `api_key` secret setting);
//   literals: 'text' or "text", numbers, true, false, null;
//   calls: sha256(x), md5(x) (lowercase hex of the UTF-8 text), lowercase(x), uppercase(x),
//     trim(x), digits(x) (only 0-9: phone numbers before hashing), to_unix_seconds(x),
//     to_unix_millis(x) (from ISO-8601 text), to_iso8601(x) (from ISO-8601 text or Unix ms),
//     concat(x, …), default(x, y, …) (the first that is present, not null and not "").
// A value is missing when its path is absent; a call with a missing (or null) argument is missing,
// except default. An object key whose value is missing is left out; an interpolated string with
// a missing part is missing; a missing list item is left out.
//
// Cost per event: linear in the event's size and the mapping's size. Plain values; a compiled
// program is immutable and shared between threads.
#pragma once

#include <boost/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sy::destinations::http_mapped {

// What an expression can read besides the message.
struct Scope {
  const boost::json::object* event = nullptr;  // null: outside an event (headers, envelope)
  std::string_view message_id;
  int64_t received_at_ms = 0;
  std::string_view source;
  std::string_view api_key;
};

struct Expr;  // mapping.cc

// One `{{ … }}`-bearing string, compiled.
class StringTemplate {
 public:
  StringTemplate();
  ~StringTemplate();
  StringTemplate(StringTemplate&&) noexcept;
  StringTemplate& operator=(StringTemplate&&) noexcept;

  // Compiles `text`; the problem on failure ("unknown function 'sha265'").
  static std::optional<std::string> Compile(std::string_view text, StringTemplate* out);

  bool has_expressions() const;
  bool reads_event() const;  // some expression reads the message or what comes with it
  // The value, or nullopt when missing (see the header comment). `url_encode`: each expression's
  // text is percent-encoded (RFC 3986 unreserved characters kept), for URL templates.
  std::optional<boost::json::value> Evaluate(const Scope& scope, bool url_encode = false) const;
  // Evaluate, as text (a string's own text; other values as JSON). nullopt when missing.
  std::optional<std::string> EvaluateText(const Scope& scope, bool url_encode = false) const;

 private:
  struct Part;
  std::vector<Part> parts_;
};

// A compiled JSON template (the body of a mapping, a batch envelope).
class TreeTemplate {
 public:
  TreeTemplate();
  ~TreeTemplate();
  TreeTemplate(TreeTemplate&&) noexcept;
  TreeTemplate& operator=(TreeTemplate&&) noexcept;

  // Compiles `tree`; problems are appended to `errors` as "<prefix>.<key path>: <problem>".
  // `allow_events_marker`: the string `{{ events }}` marks where a batch's events go (the batch
  // envelope); elsewhere it is an error.
  static TreeTemplate Compile(const boost::json::value& tree, const std::string& prefix,
                              bool allow_events_marker, std::vector<std::string>* errors);

  // The value, or nullopt when the whole tree is missing. The envelope's `{{ events }}` marker
  // evaluates to the string kEventsMarker.
  std::optional<boost::json::value> Evaluate(const Scope& scope) const;
  // Some expression reads the message or what comes with it (all but $api_key): such a tree
  // cannot be evaluated outside an event.
  bool reads_event() const;
  // How many strings are the marker `{{ events }}` (compiled only with allow_events_marker).
  size_t events_markers() const;

  // What the `{{ events }}` marker evaluates to: a string no JSON from YAML holds.
  static constexpr std::string_view kEventsMarker = "\x01switchyard-events\x01";

 private:
  struct Node;
  static void CompileNode(const boost::json::value& v, const std::string& path, bool allow_marker,
                          Node* out, std::vector<std::string>* errors);
  std::unique_ptr<Node> root_;
};

// The Segment message's top-level fields a path may start with.
extern const char* const kTopLevelFields[];

}  // namespace sy::destinations::http_mapped
