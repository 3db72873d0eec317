// The user identifiers of a Segment message as vendor encoders send them: where Segment keeps the
// email and phone (traits, context.traits, properties), and the normalisation and SHA-256 that
// conversion APIs (Meta, TikTok, Pinterest) require of them — one definition, so every
// destination hashes the same address to the same digest. Pure functions; thread-safe.
#pragma once

#include <boost/json.hpp>

#include <string>
#include <string_view>

namespace sy::delivery {

// The user's email: `traits.email` (identify), else `context.traits.email`, else
// `properties.email`; "" when none is a string.
std::string UserEmail(const boost::json::object& event);
// The user's phone, from the same places (`phone`).
std::string UserPhone(const boost::json::object& event);
// A trait by name from `traits`, else `context.traits`; "" when neither holds a string.
std::string UserTrait(const boost::json::object& event, std::string_view name);

// Trimmed of ASCII whitespace and lowercased (ASCII): how Meta, TikTok, Pinterest, Mailchimp and
// Klaviyo compare emails and names.
std::string TrimAndLowercase(std::string_view s);
// Digits only, without the leading zeros of an international prefix ("+44 20 7946 0958" and
// "0044 20 7946 0958" → "442079460958"): the conversion APIs' phone form (E.164 digits, which
// must include the country code — a number written without one cannot be completed here).
std::string PhoneDigits(std::string_view s);
// 64 lowercase hex digits: already a SHA-256 digest (senders that hash before sending).
bool IsSha256Hex(std::string_view s);
// Lowercase hex SHA-256 of `normalized`; "" for ""; a value that is already a digest passes
// unchanged (hashing it again would make it match nobody).
std::string Sha256Identifier(std::string_view normalized);
// Lowercase hex MD5 (Mailchimp names a list member by the MD5 of the lowercased email).
std::string Md5Hex(std::string_view data);

}  // namespace sy::delivery
