// HTTP Basic authentication (RFC 7617), the client's side: the `Authorization` value that
// destinations such as segment and mixpanel send. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace sy::http {

// `Authorization` value for HTTP Basic auth: "Basic base64(user:password)".
std::string BasicAuthorization(std::string_view user, std::string_view password);

}  // namespace sy::http
