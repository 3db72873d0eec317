// mixpanel: track, page and screen events → `POST <endpoint>/import?strict=1` (a JSON array of
// up to 2,000 events, Basic auth with `api_secret`), `$insert_id` = messageId so Mixpanel
// dedupes; identify → `POST <endpoint>/engage#profile-set` with `$set` of the traits (needs
// `project_token`; without it identifies are rejected as unmappable); group and alias are
// unmappable. Mapping per ../shared/reference/destinations.md.
//
// Classification: 2xx delivered; a 400 with `failed_records` (strict mode's partial success)
// rejects exactly the events named by index and delivers the rest; otherwise the framework's
// convention (429/5xx retried, other 4xx rejected).
#pragma once

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType MixpanelType();

}  // namespace sy::destinations
