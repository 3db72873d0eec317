// Content codings a client accepts (RFC 9110 §12.5.3), for servers of precompressed bytes (the
// console's assets, the browser endpoints' script).
#pragma once

#include <string_view>

namespace sy::http {

// True when an Accept-Encoding value admits gzip: a "gzip" (any case) or "*" coding without
// q=0. Linear in the value's length.
bool AcceptsGzip(std::string_view accept_encoding);

}  // namespace sy::http
