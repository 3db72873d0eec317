#include "delivery/destination.h"

namespace sy::delivery {

Outcome ClassifyByStatus(const HttpResponse& r) {
  if (r.status >= 200 && r.status < 300) return Outcome::Delivered();
  std::string reason = r.status == 0 ? (r.refused_by_guard ? "refused: " : "transport: ") + r.error
                                     : "http " + std::to_string(r.status);
  if (http::IsTransientFailure(r)) return Outcome::Retry(reason, http::RetryAfterMs(r));
  // The receiver refuses the destination's credentials: no event is at fault.
  if (r.status == 401 || r.status == 403)
    return Outcome::AuthFailure(reason + " (credentials refused)");
  return Outcome::Rejected(reason);
}

std::vector<Outcome> Destination::Classify(const HttpRequest& request,
                                           const HttpResponse& response) const {
  return std::vector<Outcome>(request.events.size(), ClassifyByStatus(response));
}

}  // namespace sy::delivery
