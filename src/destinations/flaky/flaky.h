// flaky: a test destination whose answers follow a configured pattern, per event attempt. With
// `pattern: [retry, retry, ok]` each event is retried twice then delivered; `reject` rejects.
// The last entry repeats. In-process (no HTTP), so framework tests need no server.
#pragma once

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType FlakyType();

}  // namespace sy::destinations
