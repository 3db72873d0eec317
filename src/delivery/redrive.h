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
#include "http/client.h"

namespace sy::delivery {

struct RedriveResult {
  size_t delivered = 0;
  size_t kept = 0;
};

// `select` (optional) picks the letters to send; the others stay as they are.
Result<RedriveResult> RedriveDeadLetters(
    DeadLetterStore* store, const std::string& destination_name, Destination* destination,
    http::HttpClient* http, bool allow_private_network, Clock* clock,
    const std::function<bool(const DeadLetter&)>& select = nullptr);

}  // namespace sy::delivery
