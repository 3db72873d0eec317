// EventTransform: the hook through which a destination stream runs user functions
// (src/functions implements it; docs/functions.md). Delivery knows only this interface, so a
// destination without functions has no transform (null) and pays nothing: no engine on its path.
//
// Threads: called only on the stream's thread (SpiderMonkey contexts are per thread);
// ThreadDone() is that thread's last call, so an implementation can destroy per-thread engines
// there.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "delivery/destination.h"

namespace sy::delivery {

// What the functions made of one routed event.
struct TransformResult {
  enum class Kind {
    kKeep,        // deliver the event as routed
    kEvents,      // deliver `payloads` instead: none = dropped, several = fanned out
    kDeadLetter,  // a function failed on it (error, timeout, invalid output): `reason`
    kRetry,       // a function asked to retry later (Segment's RetryError): `reason`
  };
  Kind kind = Kind::kKeep;
  std::vector<std::string> payloads;
  // "function <name>: <kind>: <message>" and, for errors, the JavaScript stack on the next lines.
  std::string reason;
};

class EventTransform {
 public:
  virtual ~EventTransform() = default;
  // One result per event of `events`, in order.
  virtual std::vector<TransformResult> Transform(std::span<const RoutedEvent> events) = 0;
  // The stream's thread is about to end.
  virtual void ThreadDone() {}
};

}  // namespace sy::delivery
