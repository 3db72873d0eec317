// segment: forwards events to any Segment-compatible Tracking API — Segment itself or another
// Switchyard — as `POST <endpoint>/v1/batch` with `Authorization: Basic base64(<write_key>:)`.
// Events are forwarded as stored (messageId kept, so the receiver dedupes).
//
// Classification: 2xx delivered, except events named in a `rejected` array of the response
// (Switchyard's partial success: `{"success":false,"rejected":[{"index":i,…}]}`), which are
// rejected with the receiver's code and reason; a 400 naming every event likewise; the rest
// per the framework's convention.
#pragma once

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType SegmentType();

}  // namespace sy::destinations
