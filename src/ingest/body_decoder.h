// Request body decoding: Content-Encoding gzip/deflate/identity, with the decompressed size
// capped so a gzip bomb is cut off as soon as it crosses the cap, never inflated into memory.
// Thread-safe (no shared state).
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace sy::ingest {

// Returns the decoded body. Errors: kResourceExhausted when the decoded size would exceed
// `max_bytes`; kInvalidArgument for corrupt compressed data; kFailedPrecondition for an
// unsupported encoding.
Result<std::string> DecodeBody(std::string_view content_encoding, std::string&& body,
                               size_t max_bytes);

}  // namespace sy::ingest
