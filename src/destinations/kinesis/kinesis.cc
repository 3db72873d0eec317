#include "destinations/kinesis/kinesis.h"

#include <boost/json.hpp>
#include <cctype>
#include <ctime>

#include "base/base64.h"
#include "delivery/event_fields.h"
#include "http/sigv4.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

constexpr size_t kMaxPartitionKey = 256;  // Kinesis: 1 to 256 Unicode characters

// "20150830T123600Z" for SigV4's X-Amz-Date.
std::string AmzDate(TimestampMs t) {
  std::time_t s = static_cast<std::time_t>(t.value() / 1000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// The first `max` Unicode characters of UTF-8 text (never cuts a character in two).
std::string FirstChars(const std::string& s, size_t max) {
  size_t chars = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (chars == max) break;
      ++chars;
    }
  }
  return s.substr(0, i);
}

std::string PartitionKeyOf(const delivery::RoutedEvent& event) {
  boost::system::error_code ec;
  json::value doc = json::parse(event.payload, ec);
  std::string key;
  if (!ec && doc.is_object()) {
    key = delivery::FieldString(doc.as_object(), {"anonymousId"});
    if (key.empty()) key = delivery::FieldString(doc.as_object(), {"userId"});
  }
  if (key.empty()) key = event.message_id;
  if (key.empty()) key = std::to_string(event.offset.value());
  return FirstChars(key, kMaxPartitionKey);
}

class Kinesis final : public delivery::Destination {
 public:
  Kinesis(std::string endpoint, std::string stream, std::string region, std::string key_id,
          std::string secret, std::string session_token, const Clock* clock)
      : stream_(std::move(stream)),
        region_(std::move(region)),
        key_id_(std::move(key_id)),
        secret_(std::move(secret)),
        session_token_(std::move(session_token)),
        clock_(clock) {
    while (!endpoint.empty() && endpoint.back() == '/')
      endpoint.pop_back();
    url_ = endpoint + "/";
    const size_t scheme = url_.find("://") + 3;
    const size_t slash = url_.find('/', scheme);
    host_ = url_.substr(scheme, slash - scheme);
    path_ = url_.substr(slash);
  }

  // PutRecords: ≤ 500 records, ≤ 5 MiB per request with Data counted decoded; base64 on the
  // wire makes it 4/3 larger, so 3 MiB of stored events keeps the body within 5 MiB too.
  delivery::DestinationLimits limits() const override { return {500, 3u << 20}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    if (events.empty()) return out;
    json::array records;
    delivery::HttpRequest r;
    for (size_t i = 0; i < events.size(); ++i) {
      records.push_back(json::object{{"Data", Base64Encode(events[i].payload)},
                                     {"PartitionKey", PartitionKeyOf(events[i])}});
      r.events.push_back(i);
    }
    json::object body{{"StreamName", stream_}, {"Records", std::move(records)}};
    r.url = url_;
    r.body = json::serialize(body);
    const std::string date = AmzDate(clock_->Now());
    http::SigV4Request sig;
    sig.method = "POST";
    sig.canonical_uri = path_;
    sig.headers = {{"content-type", "application/x-amz-json-1.1"},
                   {"host", host_},
                   {"x-amz-date", date},
                   {"x-amz-target", "Kinesis_20131202.PutRecords"}};
    if (!session_token_.empty()) sig.headers.emplace_back("x-amz-security-token", session_token_);
    sig.payload_hash = http::Sha256Hex(r.body);
    const std::string auth =
        http::SigV4Authorization(sig, {key_id_, secret_, region_, "kinesis", date});
    r.headers = {{"Content-Type", "application/x-amz-json-1.1"},
                 {"X-Amz-Date", date},
                 {"X-Amz-Target", "Kinesis_20131202.PutRecords"}};
    if (!session_token_.empty()) r.headers.emplace_back("X-Amz-Security-Token", session_token_);
    r.headers.emplace_back("Authorization", auth);
    out.requests.push_back(std::move(r));
    return out;
  }

  std::vector<delivery::Outcome> Classify(const delivery::HttpRequest& request,
                                          const delivery::HttpResponse& response) const override {
    const size_t n = request.events.size();
    if (response.status == 200) return RecordOutcomes(n, response);
    delivery::Outcome o = delivery::ClassifyByStatus(response);
    const std::pair<std::string, std::string> error = ErrorOf(response);
    const std::string& type = error.first;
    const std::string& message = error.second;
    const std::string text = "kinesis: " + (type.empty() ? "http " + std::to_string(response.status)
                                                         : type + ": " + message);
    static constexpr std::string_view kAuth[] = {
        "UnrecognizedClientException", "InvalidSignatureException",
        "AccessDeniedException",       "IncompleteSignature",
        "MissingAuthenticationToken",  "MissingAuthenticationTokenException",
        "ExpiredTokenException",       "InvalidClientTokenId",
        "KMSAccessDeniedException",    "SignatureDoesNotMatch"};
    static constexpr std::string_view kThrottle[] = {"ProvisionedThroughputExceededException",
                                                     "LimitExceededException",
                                                     "ThrottlingException",
                                                     "KMSThrottlingException",
                                                     "ServiceUnavailable",
                                                     "InternalFailure"};
    auto in = [&](auto& list) {
      for (std::string_view t : list)
        if (type == t) return true;
      return false;
    };
    if (response.status == 401 || response.status == 403 || in(kAuth)) {
      o = delivery::Outcome::AuthFailure(text);
    } else if (in(kThrottle)) {
      o = delivery::Outcome::Retry(text, delivery::RetryAfterMs(response));
    } else if (o.kind == delivery::Outcome::Kind::kRejected && response.status != 0) {
      o = delivery::Outcome::Rejected(text);
    } else if (o.kind == delivery::Outcome::Kind::kRetry) {
      o.reason = text;
    }
    return std::vector<delivery::Outcome>(n, o);
  }

 private:
  // PutRecords' answer: Records[i] pairs with the request's i-th record; a failed one has an
  // ErrorCode (ProvisionedThroughputExceededException or InternalFailure): retried.
  static std::vector<delivery::Outcome> RecordOutcomes(size_t n,
                                                       const delivery::HttpResponse& response) {
    boost::system::error_code ec;
    json::value doc = json::parse(response.body, ec);
    const json::value* records =
        !ec && doc.is_object() ? doc.as_object().if_contains("Records") : nullptr;
    if (records == nullptr || !records->is_array() || records->as_array().size() != n) {
      return std::vector<delivery::Outcome>(
          n, delivery::Outcome::Retry("kinesis: PutRecords answer without one result per record"));
    }
    std::vector<delivery::Outcome> out;
    out.reserve(n);
    for (const json::value& r : records->as_array()) {
      const std::string code =
          r.is_object() ? delivery::FieldString(r.as_object(), {"ErrorCode"}) : "";
      if (code.empty()) {
        out.push_back(delivery::Outcome::Delivered());
      } else {
        out.push_back(delivery::Outcome::Retry(
            "kinesis: " + code + ": " + delivery::FieldString(r.as_object(), {"ErrorMessage"})));
      }
    }
    return out;
  }

  // AWS JSON 1.1 errors: {"__type": "[prefix#]ResourceNotFoundException", "message": "..."}.
  static std::pair<std::string, std::string> ErrorOf(const delivery::HttpResponse& r) {
    boost::system::error_code ec;
    json::value doc = json::parse(r.body, ec);
    if (ec || !doc.is_object()) return {};
    std::string type = delivery::FieldString(doc.as_object(), {"__type"});
    if (size_t hash = type.rfind('#'); hash != std::string::npos) type = type.substr(hash + 1);
    std::string message = delivery::FieldString(doc.as_object(), {"message"});
    if (message.empty()) message = delivery::FieldString(doc.as_object(), {"Message"});
    return {type, message};
  }

  std::string url_, host_, path_;
  std::string stream_, region_, key_id_, secret_, session_token_;
  const Clock* clock_;
};

struct KinesisSettings {
  std::string stream_name;
  std::string region;
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  std::string endpoint;
};

bool IsStreamName(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

bool IsRegion(const std::string& s) {
  if (s.empty() || s.size() > 32) return false;
  for (char c : s) {
    if (!std::islower(static_cast<unsigned char>(c)) &&
        !std::isdigit(static_cast<unsigned char>(c)) && c != '-') {
      return false;
    }
  }
  return true;
}

}  // namespace

delivery::DestinationType KinesisType(const Clock* clock) {
  using S = KinesisSettings;
  auto t = delivery::MakeDestinationType<S>(
      "kinesis", "Amazon Kinesis",
      "Puts every routed event (the Segment message JSON) as a record on an Amazon Kinesis "
      "Data Stream (PutRecords), partitioned by the user.",
      delivery::SettingsTable<S>()
          .String("stream_name", &S::stream_name, "the data stream (it must exist)")
          .Required()
          .String("region", &S::region, "the stream's AWS region (us-east-1, eu-west-1, …)")
          .Required()
          .String("access_key_id", &S::access_key_id,
                  "access key of an IAM identity allowed kinesis:PutRecords on the stream")
          .Required()
          .Secret("secret_access_key", &S::secret_access_key, "its secret key")
          .Required()
          .Secret("session_token", &S::session_token,
                  "session token of temporary credentials (X-Amz-Security-Token), if any")
          .Url("endpoint", &S::endpoint,
               "API endpoint (empty: https://kinesis.<region>.amazonaws.com; VPC endpoints, "
               "emulators)"),
      [clock](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (!IsStreamName(s.stream_name)) {
          return InvalidArgument("stream_name: 1 to 128 of a-z A-Z 0-9 _ . -");
        }
        if (!IsRegion(s.region)) return InvalidArgument("region: not an AWS region name");
        if (s.access_key_id.empty()) return InvalidArgument("access_key_id: must not be empty");
        if (s.secret_access_key.empty()) {
          return InvalidArgument("secret_access_key: must not be empty");
        }
        std::string endpoint =
            s.endpoint.empty() ? "https://kinesis." + s.region + ".amazonaws.com" : s.endpoint;
        return std::unique_ptr<delivery::Destination>(
            new Kinesis(endpoint, s.stream_name, s.region, s.access_key_id, s.secret_access_key,
                        s.session_token, clock));
      });
  t.support = {"all six, as the Segment message JSON (partition key: the user)",
               "≤ 500 records, 5 MiB per request", "none (Kinesis has no dedupe key)",
               "not forwarded (records expire with the stream's retention)"};
  return t;
}

}  // namespace sy::destinations
