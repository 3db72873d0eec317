// Reading fields of a stored event (a Segment message as a Boost.JSON object), shared by the
// destinations' encoders so no destination carries its own copy. Pure functions; thread-safe.
#pragma once

#include <boost/json.hpp>

#include <initializer_list>
#include <string>
#include <string_view>

namespace sy::delivery {

// The value at a path of object keys ({"context", "page", "url"}), or nullptr when a key is
// missing or an intermediate value is not an object.
const boost::json::value* FieldAt(const boost::json::object& o,
                                  std::initializer_list<std::string_view> path);

// The string at a path, or "" when absent or not a string.
std::string FieldString(const boost::json::object& o, std::initializer_list<std::string_view> path);

// Sets o[key] = value unless value is empty.
void SetIfNotEmpty(boost::json::object& o, std::string_view key, const std::string& value);

}  // namespace sy::delivery
