// Small encoders shared by destinations (kept here so destinations never share code directly).
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace sy::delivery {

// Standard base64 with padding (RFC 4648 §4), e.g. for Basic auth.
std::string Base64Encode(std::string_view in);

// `Authorization` value for HTTP Basic auth: "Basic base64(user:password)".
std::string BasicAuth(std::string_view user, std::string_view password);

}  // namespace sy::delivery
