// amplitude: HTTP V2 API — `POST <endpoint>/2/httpapi` with
// `{"api_key": …, "events": [...], "options": {"min_id_length": N}}`, up to 2,000 events and
// < 1 MB per request. Mapping per ../shared/reference/destinations.md: user_id ← userId,
// device_id ← anonymousId, event_type ← event (page → "Viewed <name> Page" / "Loaded a Page",
// screen likewise, identify → "$identify" with user_properties {"$set": traits}), time ← timestamp
// (ms), insert_id ← messageId, event_properties ← properties, ip, os_name, device_model,
// language ← context.locale, app_version, library. group/alias are unmappable.
//
// Classification: a 400 names invalid events (`events_with_invalid_fields`,
// `events_with_missing_fields`: field → [indexes]); Amplitude ingests nothing of such a batch,
// so the named events are rejected and the others retried (they go again without them).
// Otherwise the framework's convention.
#pragma once

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType AmplitudeType();

}  // namespace sy::destinations
