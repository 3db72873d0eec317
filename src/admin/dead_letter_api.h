// The dead-letter side of the admin API (GET/DELETE /api/v1/destinations/{name}/dlq, POST
// …/dlq/redrive; docs/admin-api.md "Dead letters"). Implemented by the application
// (app/dead_letter_admin.h) over the dead-letter store and the redrive that `switchyard dlq`
// uses, so the admin module includes no delivery code.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "admin/config_api.h"

namespace sy::admin {

class DeadLetterApi {
 public:
  virtual ~DeadLetterApi() = default;
  // A page of `destination`'s letters, oldest first, starting after the letter `after` ("" from
  // the first): the DlqPage JSON (openapi.json). Payloads only when `show_payloads`. 404 for a
  // destination that is not configured; 400 (field "after") for an id not in the store.
  virtual ApiResult ListDeadLetters(std::string_view destination, size_t limit,
                                    std::string_view after, bool show_payloads) = 0;
  // Sends the letters again (`ids` null: every one), one attempt each: DlqRedriven JSON.
  // Blocking (one HTTP exchange per letter): call it off the admin worker.
  virtual ApiResult RedriveDeadLetters(const Actor& actor, std::string_view destination,
                                       const std::vector<std::string>* ids) = 0;
  // Removes the letters named: DlqPurged JSON.
  virtual ApiResult PurgeDeadLetters(const Actor& actor, std::string_view destination,
                                     const std::vector<std::string>& ids) = 0;
};

}  // namespace sy::admin
