#include "destinations/kafka/kafka.h"

#include <librdkafka/rdkafka.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "base/logging.h"
#include "delivery/event_fields.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

std::shared_ptr<spdlog::logger> Logger() {
  static auto logger = ModuleLogger("kafka-destination");
  return logger;
}

struct KafkaSettings {
  std::string brokers;
  std::string topic;
  std::string client_id;
  std::string security_protocol;
  std::string sasl_mechanism;
  std::string username;
  std::string password;
  std::string ca_file;
  std::string compression;
  int64_t linger_ms = 0;
  int64_t message_timeout_ms = 0;
  int64_t max_message_bytes = 0;
};

// One librdkafka property and the setting it comes from (for errors naming the key).
struct Property {
  std::string name;
  std::string value;
  std::string setting;
};

// The producer's configuration. Idempotence implies acks=all, at most 5 requests in flight per
// connection and retries that neither duplicate nor reorder; acks=all is stated anyway.
std::vector<Property> PropertiesOf(const KafkaSettings& s) {
  std::vector<Property> p = {
      {"bootstrap.servers", s.brokers, "brokers"},
      {"client.id", s.client_id, "client_id"},
      {"enable.idempotence", "true", ""},
      {"acks", "all", ""},
      // The Java clients' partitioner: a key lands on the partition any Java producer picks.
      {"partitioner", "murmur2_random", ""},
      {"compression.codec", s.compression, "compression"},
      {"linger.ms", std::to_string(s.linger_ms), "linger"},
      {"message.timeout.ms", std::to_string(s.message_timeout_ms), "message_timeout"},
      {"message.max.bytes", std::to_string(s.max_message_bytes), "max_message_bytes"},
      // A broker that comes back is found within 2 s (the default backs off up to 10 s).
      {"reconnect.backoff.max.ms", "2000", ""},
      {"security.protocol", s.security_protocol, "security_protocol"},
  };
  if (s.security_protocol.starts_with("sasl")) {
    p.push_back({"sasl.mechanisms", s.sasl_mechanism, "sasl_mechanism"});
    p.push_back({"sasl.username", s.username, "username"});
    p.push_back({"sasl.password", s.password, "password"});
  }
  if (!s.ca_file.empty()) p.push_back({"ssl.ca.location", s.ca_file, "ca_file"});
  return p;
}

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

// The librdkafka configuration, or the first property it refuses (naming the setting).
Result<ConfPtr> BuildConf(const std::vector<Property>& props) {
  ConfPtr conf(rd_kafka_conf_new());
  char err[512];
  for (const auto& p : props) {
    if (rd_kafka_conf_set(conf.get(), p.name.c_str(), p.value.c_str(), err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
      return InvalidArgument((p.setting.empty() ? p.name : p.setting) + ": " + err);
    }
  }
  return conf;
}

bool IsTopicName(const std::string& t) {
  if (t.empty() || t.size() > 249 || t == "." || t == "..") return false;
  for (char c : t) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool IsAuthError(int code) {
  switch (static_cast<rd_kafka_resp_err_t>(code)) {
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM:
      return true;
    default:
      return false;
  }
}

// Errors no resend can cure: the record or the topic is wrong.
bool IsRecordOrTopicError(int code) {
  switch (static_cast<rd_kafka_resp_err_t>(code)) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return true;
    default:
      return false;
  }
}

class Kafka final : public delivery::Destination {
 public:
  Kafka(std::string topic, std::vector<Property> props, int64_t message_timeout_ms)
      : topic_(std::move(topic)),
        props_(std::move(props)),
        message_timeout_ms_(message_timeout_ms) {}

  ~Kafka() override { DestroyProducer(); }

  // One DeliverInProcess call blocks the stream until every record of it has its report; 1,000
  // records (16 MB) per call keeps that short. Kafka itself has no per-request count.
  delivery::DestinationLimits limits() const override { return {1000, 16u << 20}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent>) const override {
    return {};  // never called: every batch goes through DeliverInProcess
  }

  std::optional<std::vector<delivery::Outcome>> DeliverInProcess(
      std::span<const delivery::RoutedEvent> batch) override {
    if (batch.empty()) return std::vector<delivery::Outcome>();
    if (rk_ == nullptr) {
      Status made = CreateProducer();
      if (!made.ok()) {
        return std::vector<delivery::Outcome>(batch.size(),
                                              delivery::Outcome::Retry("kafka: " + made.message()));
      }
    }
    std::vector<std::optional<delivery::Outcome>> outcomes(batch.size());
    std::vector<size_t> all(batch.size());
    for (size_t i = 0; i < batch.size(); ++i)
      all[i] = i;
    std::vector<size_t> too_large = ProduceAndWait(batch, all, outcomes);
    // The broker's size limit (the topic's max.message.bytes) applies to a whole record batch:
    // its refusal of a batch of several records says nothing about each. Each is sent alone
    // then, for its own verdict (as delivery splits an HTTP 413).
    if (too_large.size() > 1 || (too_large.size() == 1 && batch.size() > 1)) {
      for (size_t i : too_large)
        ProduceAndWait(batch, {i}, outcomes);
    }
    std::vector<delivery::Outcome> out;
    out.reserve(batch.size());
    for (auto& o : outcomes) {
      out.push_back(o ? std::move(*o)
                      : delivery::Outcome::Retry("kafka: no delivery report within "
                                                 "message_timeout"));
    }
    char fatal[512];
    if (rd_kafka_fatal_error(rk_, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // The idempotent producer cannot go on (e.g. its sequence was lost): a new one, next time.
      Logger()->warn("kafka producer fatal error, recreating it: {}", fatal);
      DestroyProducer();
    }
    return out;
  }

 private:
  // Produces batch[indexes] and waits for their reports, filling outcomes[index]. Returns the
  // indexes the broker refused as too large (a delivery report's MSG_SIZE_TOO_LARGE).
  std::vector<size_t> ProduceAndWait(std::span<const delivery::RoutedEvent> batch,
                                     const std::vector<size_t>& indexes,
                                     std::vector<std::optional<delivery::Outcome>>& outcomes) {
    current_ = &outcomes;
    too_large_.clear();
    auth_error_.clear();
    brokers_down_.clear();
    waiting_ = 0;
    const uint64_t first_seq = next_seq_;
    for (size_t i : indexes) {
      KafkaRecord r = KafkaRecordFor(batch[i]);
      const uint64_t seq = next_seq_++;
      slots_[seq] = i;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"  // librdkafka's RD_KAFKA_V_* macros
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk_, RD_KAFKA_V_TOPIC(topic_.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_KEY(r.key.data(), r.key.size()),
          RD_KAFKA_V_VALUE(r.value.data(), r.value.size()),
          RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(seq)), RD_KAFKA_V_END);
#pragma GCC diagnostic pop
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {  // refused by the client: this record's own verdict
        slots_.erase(seq);
        outcomes[i] = KafkaOutcomeFor(err, "");
      } else {
        waiting_++;
      }
    }
    // Wait for every report: librdkafka reports each record by message_timeout at the latest
    // (the margin covers a report being served late). When every broker is down, the records
    // still queued in the client were never sent: purge them (reported _PURGE_QUEUE, retried)
    // rather than wait for the timeout. Records in flight keep waiting for their answer.
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(message_timeout_ms_ + 5000);
    bool purged = false;
    while (waiting_ > 0 && std::chrono::steady_clock::now() < deadline) {
      rd_kafka_poll(rk_, 50);
      if (!brokers_down_.empty() && !purged) {
        rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE);
        purged = true;
      }
    }
    for (uint64_t seq = first_seq; seq < next_seq_; ++seq)
      slots_.erase(seq);  // a report arriving later is for nobody
    current_ = nullptr;
    return std::move(too_large_);
  }

  Status CreateProducer() {
    SY_ASSIGN_OR_RETURN(ConfPtr conf, BuildConf(props_));
    rd_kafka_conf_set_opaque(conf.get(), this);
    rd_kafka_conf_set_dr_msg_cb(conf.get(), &Kafka::OnDelivery);
    rd_kafka_conf_set_error_cb(conf.get(), &Kafka::OnError);
    rd_kafka_conf_set_log_cb(conf.get(), &Kafka::OnLog);
    char err[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof(err));
    if (rk == nullptr) return Unavailable(std::string("cannot create the producer: ") + err);
    conf.release();  // rd_kafka_new took it
    rk_ = rk;
    return Status::Ok();
  }

  void DestroyProducer() {
    if (rk_ == nullptr) return;
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk_, 0);
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
  }

  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<Kafka*>(opaque);
    auto it = self->slots_.find(reinterpret_cast<uint64_t>(m->_private));
    if (it == self->slots_.end() || self->current_ == nullptr) return;
    delivery::Outcome o;
    if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE && self->auth_error_.empty()) {
      o = delivery::Outcome::Retry("kafka: no broker reachable (" + self->brokers_down_ + ")");
    } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      o = KafkaOutcomeFor(m->err, self->auth_error_);
    }
    if (m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) self->too_large_.push_back(it->second);
    (*self->current_)[it->second] = std::move(o);
    self->slots_.erase(it);
    self->waiting_--;
  }

  // Client-wide errors (served by rd_kafka_poll, on the stream's thread): authentication and
  // "all brokers down" shape the outcome of the records of the current call.
  static void OnError(rd_kafka_t*, int err, const char* reason, void* opaque) {
    auto* self = static_cast<Kafka*>(opaque);
    if (IsAuthError(err) || err == RD_KAFKA_RESP_ERR__SSL) {
      self->auth_error_ = reason;
    } else if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__RESOLVE) {
      self->brokers_down_ = reason;
    }
    static LogRateLimiter limiter;
    uint64_t suppressed = 0;
    if (limiter.Allow(&suppressed)) {
      Logger()->warn("kafka: {} ({} similar lines suppressed)", reason, suppressed);
    }
  }

  static void OnLog(const rd_kafka_t*, int level, const char* facility, const char* message) {
    if (level > 4) return;  // syslog levels: warnings and worse
    static LogRateLimiter limiter;
    uint64_t suppressed = 0;
    if (limiter.Allow(&suppressed)) {
      Logger()->warn("librdkafka {}: {} ({} similar lines suppressed)", facility, message,
                     suppressed);
    }
  }

  const std::string topic_;
  const std::vector<Property> props_;
  const int64_t message_timeout_ms_;
  rd_kafka_t* rk_ = nullptr;
  // Reports of the call in progress: record sequence → index into *current_.
  std::map<uint64_t, size_t> slots_;
  std::vector<std::optional<delivery::Outcome>>* current_ = nullptr;
  size_t waiting_ = 0;
  std::vector<size_t> too_large_;  // reported MSG_SIZE_TOO_LARGE during the current round
  uint64_t next_seq_ = 1;
  std::string auth_error_;    // during the current call
  std::string brokers_down_;  // during the current call
};

}  // namespace

KafkaRecord KafkaRecordFor(const delivery::RoutedEvent& event) {
  KafkaRecord r;
  r.value = event.payload;
  boost::system::error_code ec;
  json::value doc = json::parse(event.payload, ec);
  if (!ec && doc.is_object()) {
    const json::object& o = doc.as_object();
    r.key = delivery::FieldString(o, {"anonymousId"});
    if (r.key.empty()) r.key = delivery::FieldString(o, {"userId"});
  }
  if (r.key.empty()) r.key = event.message_id;
  return r;
}

delivery::Outcome KafkaOutcomeFor(int error_code, const std::string& auth_error) {
  const std::string text = rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(error_code));
  if (IsAuthError(error_code)) return delivery::Outcome::AuthFailure("kafka: " + text);
  if (IsRecordOrTopicError(error_code)) return delivery::Outcome::Rejected("kafka: " + text);
  if (!auth_error.empty()) return delivery::Outcome::AuthFailure("kafka: " + auth_error);
  return delivery::Outcome::Retry("kafka: " + text);
}

delivery::DestinationType KafkaType() {
  using S = KafkaSettings;
  auto t = delivery::MakeDestinationType<S>(
      "kafka", "Kafka",
      "Produces every routed event (the Segment message JSON) to a topic of your Kafka cluster, "
      "keyed by the user so each user's events keep their order.",
      delivery::SettingsTable<S>()
          .String("brokers", &S::brokers, "bootstrap servers, host:port[,host:port…]")
          .Required()
          .String("topic", &S::topic, "the topic every event goes to (it must exist)")
          .Required()
          .String("client_id", &S::client_id, "client.id the brokers see")
          .Default("switchyard")
          .Enum("security_protocol", &S::security_protocol,
                {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"},
                "how to reach the brokers (security.protocol)")
          .Default("plaintext")
          .Enum("sasl_mechanism", &S::sasl_mechanism, {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"},
                "SASL mechanism (sasl_* protocols)")
          .Default("PLAIN")
          .String("username", &S::username, "SASL username (sasl_* protocols)")
          .Secret("password", &S::password, "SASL password (sasl_* protocols)")
          .String("ca_file", &S::ca_file,
                  "PEM file of the CA that signed the brokers' certificates (ssl, sasl_ssl; "
                  "empty: the system's)")
          .Enum("compression", &S::compression, {"none", "gzip", "snappy", "lz4", "zstd"},
                "compression of record batches (compression.codec)")
          .Default("none")
          .Duration("linger", &S::linger_ms,
                    "how long the client waits to fill a record batch (linger.ms)")
          .Default("5ms")
          .Range(0, 900'000)
          .Duration("message_timeout", &S::message_timeout_ms,
                    "how long the client keeps trying one produce before delivery retries it "
                    "(message.timeout.ms)")
          .Default("30s")
          .Range(1000, 900'000)
          .Int("max_message_bytes", &S::max_message_bytes,
               "largest record the client sends (message.max.bytes); larger events are "
               "dead-lettered")
          .Default("1000000")
          .Range(1000, 100'000'000),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (s.brokers.empty()) return InvalidArgument("brokers: must not be empty");
        if (!IsTopicName(s.topic)) {
          return InvalidArgument(
              "topic: not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -, not . or ..)");
        }
        const bool sasl = s.security_protocol.starts_with("sasl");
        const bool tls = s.security_protocol.ends_with("ssl");
        if (sasl && (s.username.empty() || s.password.empty())) {
          return InvalidArgument("username, password: required with security_protocol " +
                                 s.security_protocol);
        }
        if (!sasl && (!s.username.empty() || !s.password.empty())) {
          return InvalidArgument("username, password: only with a sasl_* security_protocol");
        }
        if (!s.ca_file.empty()) {
          if (!tls) return InvalidArgument("ca_file: only with security_protocol ssl or sasl_ssl");
          if (FILE* f = std::fopen(s.ca_file.c_str(), "r")) {
            std::fclose(f);
          } else {
            return InvalidArgument("ca_file: cannot read " + s.ca_file);
          }
        }
        std::vector<Property> props = PropertiesOf(s);
        SY_ASSIGN_OR_RETURN(ConfPtr checked, BuildConf(props));  // librdkafka's own checks
        return std::unique_ptr<delivery::Destination>(
            new Kafka(s.topic, std::move(props), s.message_timeout_ms));
      });
  t.support = {"all six, as the Segment message JSON (key: the user)",
               "in-process: ≤ 1,000 records per produce round", "none (idempotent producer)",
               "not forwarded (Kafka has no user-deletion API)"};
  return t;
}

}  // namespace sy::destinations
