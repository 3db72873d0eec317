// slack: one message per event to a Slack incoming webhook: `POST <webhook_url>` with
// `{"text": <template rendered over the event>}`. The template replaces `{{path}}` with the
// event's value at a dotted path (`{{event}}`, `{{userId}}`, `{{properties.plan}}`): strings as
// they are, other values as JSON, missing values as "". An event whose message renders empty is
// rejected (unmappable). Slack answers 429 with Retry-After; the framework honours it.
#pragma once

#include <string>
#include <string_view>

#include "delivery/destination.h"

namespace sy::destinations {

delivery::DestinationType SlackType();

// Renders `tmpl` over the event JSON `event` (exposed for tests).
std::string RenderSlackTemplate(std::string_view tmpl, std::string_view event);

}  // namespace sy::destinations
