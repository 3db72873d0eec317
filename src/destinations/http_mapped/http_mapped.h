// http (folder http_mapped): a destination configured entirely in YAML, for tools Switchyard
// has no folder for. Method, URL (path and query segments templated from the event, each
// URL-encoded), headers, auth (none, basic, bearer, or an HMAC-SHA256 signature of the body in a
// header, hex or base64), batching on or off with a batch envelope (`{{ events }}` marks where the
// events go), and per event type (`mappings: {track: {body: …}, identify: …}`) a body built from
// a mapping of output fields to event paths, literals and a few functions (mapping.h). A type
// without a mapping is skipped (counted as filtered, never an error).
//
// Everything is validated and compiled at config time: every path, function and key, errors
// naming the key ("destinations[2].settings.mappings.track.body.email: unknown function
// 'sha265'"). Per event: one parse of the message and one run of the compiled mapping.
//
// Secrets (`api_key`, `password`, `token`, `hmac_secret`) are secret settings, never shown or
// logged; headers, `username` and the envelope reach `api_key` as `{{ $api_key }}`.
//
// Classification: 2xx delivered; a status in `retry_statuses` retried, one in `reject_statuses`
// rejected; otherwise 401/403 an auth failure (the destination is held and probed slowly),
// 408/429/5xx and transport errors retried with Retry-After, any other status rejected with an
// excerpt of the response body as the reason.
#pragma once

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType HttpMappedType();

}  // namespace sy::destinations
