// Base64 encoding (RFC 4648). Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace sy {

// Standard base64 with padding (RFC 4648 §4), e.g. for HTTP Basic auth (http/basic_auth.h).
std::string Base64Encode(std::string_view in);

}  // namespace sy
