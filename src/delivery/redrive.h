// Redrive: sends a destination's dead letters again (`switchyard dlq redrive`, and the admin
// API's POST …/dlq/redrive). Each letter gets one attempt; delivered letters leave the store, the
// others stay with their attempt count and last response updated. Runs under the store's lock,
// so a running server's appends wait. Blocking; for the CLI thread or the admin API's slow one.
#pragma once

#include <cstddef>
#include <functional>

#include "base/clock.h"
#include "delivery/dead_letter_store.h"
#include "delivery/destination.h"
#include "delivery/transform.h"
#include "http/client.h"

namespace sy::delivery {

struct RedriveResult {
  size_t delivered = 0;  // letters whose every event was delivered: they leave the store
  size_t kept = 0;       // letters (or, of a fan-out, failed parts) kept in the store
  size_t dropped = 0;    // letters today's functions dropped: final, they leave the store
};

// `select` (optional) picks the letters to send; the others stay as they are.
//
// `transform` (optional: the destination's function chain, used on the calling thread only)
// runs on each letter whose event is from before the functions (DeadLetter::before_functions):
// today's functions decide what is sent. Dropped → the letter leaves the store. A function error
// or RetryError → the letter stays, with the new reason. Outputs → each is sent; all delivered →
// the letter leaves; none delivered → the letter stays as it was (before functions: the next
// redrive runs the functions again); some delivered → the failed outputs stay as letters of
// their own, after functions (the delivered ones are not sent again). Other letters are sent as
// they are.
Result<RedriveResult> RedriveDeadLetters(
    DeadLetterStore* store, const std::string& destination_name, Destination* destination,
    http::HttpClient* http, bool allow_private_network, Clock* clock,
    const std::function<bool(const DeadLetter&)>& select = nullptr,
    EventTransform* transform = nullptr);

}  // namespace sy::delivery
