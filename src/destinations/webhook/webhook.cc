#include "destinations/webhook/webhook.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <map>

namespace sy::destinations {
namespace {

class Webhook final : public delivery::Destination {
 public:
  Webhook(std::string url, std::map<std::string, std::string> headers, std::string secret,
          bool batch, size_t max_events)
      : url_(std::move(url)),
        headers_(std::move(headers)),
        secret_(std::move(secret)),
        batch_(batch),
        max_events_(batch ? max_events : 1) {}

  delivery::DestinationLimits limits() const override { return {max_events_, 4u << 20}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    if (batch_) {
      for (size_t start = 0; start < events.size(); start += max_events_) {
        size_t end = std::min(events.size(), start + max_events_);
        size_t bytes = 2;
        for (size_t i = start; i < end; ++i)
          bytes += events[i].payload.size() + 1;
        std::string body;
        body.reserve(bytes);  // one allocation for the whole array (bodies run to ~100 KB)
        body += "[";
        std::vector<size_t> idx;
        idx.reserve(end - start);
        for (size_t i = start; i < end; ++i) {
          if (i > start) body += ",";
          body += events[i].payload;
          idx.push_back(i);
        }
        body += "]";
        out.requests.push_back(Request(std::move(body), std::move(idx)));
      }
    } else {
      for (size_t i = 0; i < events.size(); ++i)
        out.requests.push_back(Request(events[i].payload, {i}));
    }
    return out;
  }

 private:
  delivery::HttpRequest Request(std::string body, std::vector<size_t> events) const {
    delivery::HttpRequest r;
    r.url = url_;
    r.headers.emplace_back("Content-Type", "application/json");
    for (const auto& [k, v] : headers_)
      r.headers.emplace_back(k, v);
    if (!secret_.empty())
      r.headers.emplace_back("X-Signature", "sha256=" + HmacSha256Hex(secret_, body));
    r.body = std::move(body);
    r.events = std::move(events);
    return r;
  }

  std::string url_;
  std::map<std::string, std::string> headers_;
  std::string secret_;
  bool batch_;
  size_t max_events_;
};

}  // namespace

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

namespace {

struct WebhookSettings {
  std::string url;
  std::map<std::string, std::string> headers;
  std::string secret;
  bool batch = false;
  int64_t max_events = 0;
};

}  // namespace

delivery::DestinationType WebhookType() {
  using S = WebhookSettings;
  auto t = delivery::MakeDestinationType<S>(
      "webhook", "Webhooks",
      "POSTs each event (or a JSON array of events) to a URL, optionally signed.",
      delivery::SettingsTable<S>()
          .Url("url", &S::url, "where events are POSTed")
          .Required()
          .Map("headers", &S::headers, "extra request headers")
          .Secret("secret", &S::secret,
                  "HMAC-SHA256 key: adds X-Signature: sha256=<hex HMAC of the body>")
          .Bool("batch", &S::batch, "send a JSON array of events per request instead of one event")
          .Default("false")
          .Int("max_events", &S::max_events, "events per request when batch is true")
          .Default("100")
          .Range(1, 10'000),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        for (const auto& [k, v] : s.headers) {
          if (k.empty() || k.find_first_of(":\r\n ") != std::string::npos ||
              v.find_first_of("\r\n") != std::string::npos)
            return InvalidArgument("headers: invalid header '" + k + "'");
        }
        return std::unique_ptr<delivery::Destination>(
            new Webhook(s.url, s.headers, s.secret, s.batch, static_cast<size_t>(s.max_events)));
      });
  t.support = {"all six, as stored", "optional (`batch: true`: a JSON array)",
               "messageId in the event (the receiver's to use)", "n/a"};
  return t;
}

}  // namespace sy::destinations
