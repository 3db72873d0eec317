#include "delivery/redrive.h"

namespace sy::delivery {
namespace {

struct SendResult {
  Outcome outcome;
  int status = 0;
  std::string response;
};

// One attempt at one event, as the stream would make it.
SendResult SendOne(const RoutedEvent& ev, Destination* destination, http::HttpClient* http,
                   bool allow_private_network) {
  SendResult r;
  std::vector<RoutedEvent> one{ev};
  if (auto direct = destination->DeliverInProcess(one)) {
    r.outcome = direct->empty() ? Outcome::Retry("no outcome") : (*direct)[0];
    return r;
  }
  EncodedBatch enc = destination->Encode(one);
  if (!enc.unmappable.empty()) {
    r.outcome = Outcome::Rejected("cannot encode: " + enc.unmappable[0].second);
  } else if (!enc.skipped.empty()) {
    // The vendor has no concept for the call: final, like a delivery (nothing to send).
    r.outcome = Outcome::Delivered();
  } else if (enc.requests.empty() || !http) {
    r.outcome = Outcome::Retry("nothing sent");
  } else {
    HttpResponse res = http->SendAndWait(enc.requests[0], http::SendOptions{allow_private_network});
    auto outcomes = destination->Classify(enc.requests[0], res);
    r.outcome = outcomes.empty() ? ClassifyByStatus(res) : outcomes[0];
    r.status = res.status;
    r.response = res.status ? res.body.substr(0, DeadLetterStore::kMaxResponseExcerpt) : res.error;
  }
  return r;
}

void Failed(DeadLetter* letter, const std::string& reason, int status, std::string response,
            Clock* clock) {
  letter->attempts++;
  letter->reason = "redrive: " + reason;
  letter->last_status = status;
  letter->last_response = std::move(response);
  letter->dead_lettered_at = clock->Now();
}

}  // namespace

Result<RedriveResult> RedriveDeadLetters(DeadLetterStore* store,
                                         const std::string& destination_name,
                                         Destination* destination, http::HttpClient* http,
                                         bool allow_private_network, Clock* clock,
                                         const std::function<bool(const DeadLetter&)>& select,
                                         EventTransform* transform) {
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
      std::vector<std::string> outputs;  // what today's functions made of it
      bool through_functions = false;
      if (transform && letter.before_functions) {
        std::vector<TransformResult> t = transform->Transform(std::span(&ev, 1));
        TransformResult r = t.empty() ? TransformResult{} : std::move(t[0]);
        if (r.kind == TransformResult::Kind::kDeadLetter ||
            r.kind == TransformResult::Kind::kRetry) {
          Failed(&letter, r.reason, 0, "", clock);
          keep.push_back(std::move(letter));
          result.kept++;
          continue;
        }
        if (r.kind == TransformResult::Kind::kEvents) {
          if (r.payloads.empty()) {
            result.dropped++;
            continue;
          }
          outputs = std::move(r.payloads);
          through_functions = true;
        }
      }
      if (!through_functions) outputs.push_back(letter.event);
      std::vector<DeadLetter> failed_parts;
      SendResult last;
      for (std::string& out : outputs) {
        RoutedEvent part = ev;
        part.payload = out;
        SendResult sent = SendOne(part, destination, http, allow_private_network);
        if (sent.outcome.kind == Outcome::Kind::kDelivered) continue;
        DeadLetter d = letter;
        d.event = std::move(out);
        d.before_functions = false;
        Failed(&d, sent.outcome.reason, sent.status, sent.response, clock);
        failed_parts.push_back(std::move(d));
        last = std::move(sent);
      }
      if (failed_parts.empty()) {
        result.delivered++;
      } else if (failed_parts.size() == outputs.size()) {
        // Nothing of it was delivered: the letter stays as it was stored.
        Failed(&letter, last.outcome.reason, last.status, last.response, clock);
        keep.push_back(std::move(letter));
        result.kept++;
      } else {
        result.kept += failed_parts.size();
        for (auto& d : failed_parts)
          keep.push_back(std::move(d));
      }
    }
    return keep;
  });
  if (!s.ok()) return s;
  return result;
}

}  // namespace sy::delivery
