// DeadLetterAdmin: the admin API's dead-letter routes (admin/dead_letter_api.h) over the store
// and the redrive that `switchyard dlq list|redrive` use (delivery/dead_letter_store.h,
// delivery/redrive.h): one code path for both.
//
// A letter's id (DeadLetterId) is a digest of what identifies it and never changes while it is
// stored — source, messageId, log offset, receivedAt — not its position in the file, which a
// redrive or purge rewrites; two identical letters (the same event dead-lettered twice) share
// one id and are selected together.
//
// A redrive runs under the store's lock (as the CLI's does): the destination's live stream
// appends new letters only before or after it, never into a half-rewritten file. It sends
// through its own instance of the destination built from the current configuration (file ⊕
// overlay), as the CLI builds one from the file.
//
// Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "admin/dead_letter_api.h"
#include "base/clock.h"
#include "config/config.h"
#include "delivery/dead_letter_store.h"
#include "delivery/transform.h"
#include "http/client.h"

namespace sy::app {

std::string DeadLetterId(const delivery::DeadLetter& letter);

class DeadLetterAdmin final : public admin::DeadLetterApi {
 public:
  struct Options {
    delivery::DeadLetterStore* store = nullptr;
    http::HttpClient* http = nullptr;
    Clock* clock = nullptr;
    std::string config_file;  // for destination settings that name files relative to it
    // The destination's current configuration; false when there is none.
    std::function<bool(std::string_view name, config::DestinationConfig* out)> find;
    // The destination's function chain for a redrive (null: it has none): letters a function
    // failed on run through today's functions (delivery/redrive.h). Used on the calling thread.
    std::function<std::unique_ptr<delivery::EventTransform>(const config::DestinationConfig&)>
        make_transform;
  };
  explicit DeadLetterAdmin(Options options) : options_(std::move(options)) {}

  admin::ApiResult ListDeadLetters(std::string_view destination, size_t limit,
                                   std::string_view after, bool show_payloads) override;
  admin::ApiResult RedriveDeadLetters(const admin::Actor& actor, std::string_view destination,
                                      const std::vector<std::string>* ids) override;
  admin::ApiResult PurgeDeadLetters(const admin::Actor& actor, std::string_view destination,
                                    const std::vector<std::string>& ids) override;

 private:
  Options options_;
};

}  // namespace sy::app
