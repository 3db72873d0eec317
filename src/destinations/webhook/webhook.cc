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

  delivery::EncodedBatch Encode(std::span<const delivery::StoredEvent> events) const override {
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

delivery::DestinationType WebhookType() {
  delivery::DestinationType t;
  t.type = "webhook";
  t.display_name = "Webhooks";
  t.description = "POSTs each event (or a JSON array of events) to a URL, optionally signed.";
  t.settings = {
      {"url", delivery::SettingType::kUrl, true, "", "where events are POSTed"},
      {"headers", delivery::SettingType::kStringMap, false, "", "extra request headers"},
      {"secret", delivery::SettingType::kSecret, false, "",
       "HMAC-SHA256 key: adds X-Signature: sha256=<hex HMAC of the body>"},
      {"batch", delivery::SettingType::kBool, false, "false",
       "send a JSON array of events per request instead of one event"},
      {"max_events", delivery::SettingType::kInt, false, "100",
       "events per request when batch is true"},
  };
  t.create = [](const delivery::Settings& s) -> Result<std::unique_ptr<delivery::Destination>> {
    if (s.Int("max_events") < 1 || s.Int("max_events") > 10'000)
      return InvalidArgument("max_events: out of range [1, 10000]");
    for (const auto& [k, v] : s.StringMap("headers")) {
      if (k.empty() || k.find_first_of(":\r\n ") != std::string::npos ||
          v.find_first_of("\r\n") != std::string::npos)
        return InvalidArgument("headers: invalid header '" + k + "'");
    }
    return std::unique_ptr<delivery::Destination>(
        new Webhook(s.String("url"), s.StringMap("headers"), s.String("secret"), s.Bool("batch"),
                    static_cast<size_t>(s.Int("max_events"))));
  };
  return t;
}

}  // namespace sy::destinations
