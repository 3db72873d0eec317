// webhook: POSTs events as JSON to a URL: one event per request (the stored event as-is), or
// with `batch: true` a JSON array of up to max_events events. Custom `headers`; with a `secret`,
// `X-Signature: sha256=<lowercase hex HMAC-SHA256 of the exact body bytes>`. Classification is
// the framework's default (2xx delivered; 408/429/5xx/transport retried; other 4xx rejected).
#pragma once

#include <string>
#include <string_view>

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType WebhookType();

// Lowercase hex HMAC-SHA256 (exposed for tests and docs).
std::string HmacSha256Hex(std::string_view key, std::string_view data);

}  // namespace sy::destinations
