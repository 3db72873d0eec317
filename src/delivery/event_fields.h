// Reading stored events (Segment messages as Boost.JSON objects) in the destinations' encoders,
// shared so no destination carries its own copy: the per-event preamble every vendor encoder
// starts with (MapEachEvent), and field accessors. Pure functions; thread-safe.
#pragma once

#include <boost/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "delivery/destination.h"

namespace sy::delivery {

// The value at a path of object keys ({"context", "page", "url"}), or nullptr when a key is
// missing or an intermediate value is not an object.
const boost::json::value* FieldAt(const boost::json::object& o,
                                  std::initializer_list<std::string_view> path);

// The string at a path, or "" when absent or not a string.
std::string FieldString(const boost::json::object& o, std::initializer_list<std::string_view> path);

// Sets o[key] = value unless value is empty.
void SetIfNotEmpty(boost::json::object& o, std::string_view key, const std::string& value);

// A number, or a string that reads wholly as one ("9.99": clients send prices both ways), as a
// double; nullopt for anything else (and for nullptr).
std::optional<double> NumberOf(const boost::json::value* v);

// NumberOf as a whole count (quantity: 2, "2", 2.0), or nullopt when it is not a whole number
// within ±2^53 (a client's 1e300 must not reach a float-to-integer conversion).
std::optional<int64_t> CountOf(const boost::json::value* v);

// An identifier given as a string or an integer (order_id: "A1" or 1001), as text; "" otherwise.
std::string IdText(const boost::json::value* v);

// Whether `s` may stand as one segment of a URL path a setting names (a pixel, ad account or
// list ID): letters, digits, '-', '_' and '.', not empty, "." or "..".
bool IsPathSegment(std::string_view s);

// Boost.JSON (1.81) reads a zero written with a huge exponent (`0e400`, `-0.0E999`) as NaN and
// would write it back as `NaN`, which is not JSON. Ingest stores such numbers as sent — they are
// zeros, within range — so every NaN in a stored event read by Boost.JSON is one of them (JSON
// has no NaN, and numbers beyond a double's range are refused at ingest). Sets each back to 0.
// Returns how many it set.
size_t RestoreZerosReadAsNaN(boost::json::value& v);

// What a vendor's mapping says about one event: mapped (it went into a request being built),
// unmappable with the reason that the dead-letter store will show, or skipped — a call the
// vendor has no concept for, final and counted as filtered (EncodedBatch::skipped).
struct EventMapping {
  std::string unmappable_reason;  // "" = mapped (or skipped)
  std::string skip_reason;        // "" = not skipped
  static EventMapping Mapped() { return {}; }
  static EventMapping Unmappable(std::string reason) { return {std::move(reason), {}}; }
  static EventMapping Skip(std::string reason) { return {{}, std::move(reason)}; }
};

// The preamble of every vendor encoder: parses each event of `batch` as a JSON object and calls
// `map(index, event, type)` (type: the Segment `type` field, "" when absent), in batch order.
// An event that is not a JSON object, or that `map` answers Unmappable, goes to
// `out->unmappable` with the reason, one it answers Skip to `out->skipped`; `map` adds the
// events it maps to the requests it builds.
template <typename MapFn>
void MapEachEvent(std::span<const RoutedEvent> batch, EncodedBatch* out, MapFn&& map) {
  for (size_t i = 0; i < batch.size(); ++i) {
    boost::system::error_code ec;
    boost::json::value doc = boost::json::parse(batch[i].payload, ec);
    if (ec || !doc.is_object()) {
      out->unmappable.emplace_back(i, "not a JSON object");
      continue;
    }
    RestoreZerosReadAsNaN(doc);
    const boost::json::object& event = doc.as_object();
    const boost::json::value* type = event.if_contains("type");
    std::string_view type_name =
        type && type->is_string() ? std::string_view(type->as_string()) : std::string_view();
    EventMapping m = map(i, event, type_name);
    if (!m.unmappable_reason.empty()) {
      out->unmappable.emplace_back(i, std::move(m.unmappable_reason));
    } else if (!m.skip_reason.empty()) {
      out->skipped.emplace_back(i, std::move(m.skip_reason));
    }
  }
}

}  // namespace sy::delivery
