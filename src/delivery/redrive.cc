#include "delivery/redrive.h"

namespace sy::delivery {

Result<RedriveResult> RedriveDeadLetters(DeadLetterStore* store,
                                         const std::string& destination_name,
                                         Destination* destination, http::HttpClient* http,
                                         bool allow_private_network, Clock* clock,
                                         const std::function<bool(const DeadLetter&)>& select) {
  RedriveResult result;
  Status s = store->Rewrite(destination_name, [&](std::vector<DeadLetter> letters) {
    std::vector<DeadLetter> keep;
    for (auto& letter : letters) {
      if (select && !select(letter)) {
        keep.push_back(std::move(letter));
        continue;
      }
      RoutedEvent ev{letter.offset, letter.source, letter.message_id, letter.received_at,
                     letter.event};
      std::vector<RoutedEvent> one{ev};
      Outcome outcome;
      int status = 0;
      std::string response;
      if (auto direct = destination->DeliverInProcess(one)) {
        outcome = direct->empty() ? Outcome::Retry("no outcome") : (*direct)[0];
      } else {
        EncodedBatch enc = destination->Encode(one);
        if (!enc.unmappable.empty()) {
          outcome = Outcome::Rejected("cannot encode: " + enc.unmappable[0].second);
        } else if (!enc.skipped.empty()) {
          // The vendor has no concept for the call: final, like a delivery (nothing to send).
          outcome = Outcome::Delivered();
        } else if (enc.requests.empty() || !http) {
          outcome = Outcome::Retry("nothing sent");
        } else {
          HttpResponse res =
              http->SendAndWait(enc.requests[0], http::SendOptions{allow_private_network});
          auto outcomes = destination->Classify(enc.requests[0], res);
          outcome = outcomes.empty() ? ClassifyByStatus(res) : outcomes[0];
          status = res.status;
          response =
              res.status ? res.body.substr(0, DeadLetterStore::kMaxResponseExcerpt) : res.error;
        }
      }
      if (outcome.kind == Outcome::Kind::kDelivered) {
        result.delivered++;
        continue;
      }
      letter.attempts++;
      letter.reason = "redrive: " + outcome.reason;
      letter.last_status = status;
      letter.last_response = response;
      letter.dead_lettered_at = clock->Now();
      keep.push_back(std::move(letter));
      result.kept++;
    }
    return keep;
  });
  if (!s.ok()) return s;
  return result;
}

}  // namespace sy::delivery
