#include "tests/kafka/kafka_chain.h"

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sy::kafka_test {
namespace {

using Clock = std::chrono::steady_clock;

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using Handle = std::unique_ptr<rd_kafka_t, HandleDeleter>;

struct Conf {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  Conf() = default;
  Conf(const Conf&) = delete;
  Conf& operator=(const Conf&) = delete;
  ~Conf() {
    if (conf != nullptr) rd_kafka_conf_destroy(conf);
  }
  Status Set(const char* name, const std::string& value) {
    char err[512];
    if (rd_kafka_conf_set(conf, name, value.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      return InvalidArgument(std::string("librdkafka config ") + name + ": " + err);
    }
    return Status::Ok();
  }
};

// rd_kafka_new takes ownership of the conf only on success.
Result<Handle> NewHandle(rd_kafka_type_t type, Conf& conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.conf, err, sizeof(err));
  if (rk == nullptr) return Internal(std::string("rd_kafka_new: ") + err);
  conf.conf = nullptr;
  return Handle(rk);
}

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

std::string KeyName(int key) {
  return "user-" + std::to_string(key);
}

Status CreateTopic(const ChainOptions& o) {
  Conf conf;
  SY_RETURN_IF_ERROR(conf.Set("bootstrap.servers", o.brokers));
  SY_ASSIGN_OR_RETURN(Handle admin, NewHandle(RD_KAFKA_PRODUCER, conf));
  char err[512];
  rd_kafka_NewTopic_t* topic =
      rd_kafka_NewTopic_new(o.topic.c_str(), o.partitions, o.replication_factor, err, sizeof(err));
  if (topic == nullptr) return InvalidArgument(std::string("NewTopic: ") + err);
  for (const auto& [name, value] : o.topic_config) {
    if (rd_kafka_NewTopic_set_config(topic, name.c_str(), value.c_str()) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_NewTopic_destroy(topic);
      return InvalidArgument("NewTopic config " + name);
    }
  }
  rd_kafka_AdminOptions_t* opts =
      rd_kafka_AdminOptions_new(admin.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
  int timeout_ms = static_cast<int>(o.timeout.count());
  rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, err, sizeof(err));
  // Return only once the controller has created the topic, not when it accepted the request.
  rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, err, sizeof(err));
  rd_kafka_queue_t* queue = rd_kafka_queue_new(admin.get());
  rd_kafka_CreateTopics(admin.get(), &topic, 1, opts, queue);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, timeout_ms + 5000);
  Status status;
  if (ev == nullptr) {
    status = Unavailable("CreateTopics: no answer within the timeout");
  } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    status = Unavailable(std::string("CreateTopics: ") + rd_kafka_event_error_string(ev));
  } else {
    size_t n = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    if (n != 1) {
      status = Internal("CreateTopics: " + std::to_string(n) + " results for one topic");
    } else if (rd_kafka_topic_result_error(results[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* msg = rd_kafka_topic_result_error_string(results[0]);
      status = Unavailable("CreateTopics " + o.topic + ": " +
                           rd_kafka_err2str(rd_kafka_topic_result_error(results[0])) + " " +
                           (msg != nullptr ? msg : ""));
    }
  }
  if (ev != nullptr) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(queue);
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_NewTopic_destroy(topic);
  return status;
}

// What the delivery-report callback saw, per message index.
struct Deliveries {
  std::vector<int> reports;  // reports per message: exactly one each expected
  int delivered = 0;
  int failed = 0;
  std::string first_error;
  std::map<int32_t, int64_t> end_offsets;  // partition → last delivered offset + 1
};

void OnDelivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* m, void* opaque) {
  auto* d = static_cast<Deliveries*>(opaque);
  auto index = reinterpret_cast<intptr_t>(m->_private);
  if (index >= 0 && static_cast<size_t>(index) < d->reports.size()) ++d->reports[index];
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (d->failed++ == 0) d->first_error = rd_kafka_err2str(m->err);
    return;
  }
  ++d->delivered;
  int64_t& end = d->end_offsets[m->partition];
  if (m->offset + 1 > end) end = m->offset + 1;
}

Status Produce(const ChainOptions& o, Deliveries& d) {
  Conf conf;
  SY_RETURN_IF_ERROR(conf.Set("bootstrap.servers", o.brokers));
  SY_RETURN_IF_ERROR(conf.Set("client.id", "switchyard-kafka-chain"));
  // What ingest will run: no duplicates or reordering from internal retries, every replica in
  // the ISR holds a message before its report says delivered.
  SY_RETURN_IF_ERROR(conf.Set("enable.idempotence", "true"));
  SY_RETURN_IF_ERROR(conf.Set("acks", "all"));
  // The Java clients' partitioner, so a key lands in the same partition whoever produces it.
  SY_RETURN_IF_ERROR(conf.Set("partitioner", "murmur2_random"));
  SY_RETURN_IF_ERROR(conf.Set("linger.ms", "5"));
  SY_RETURN_IF_ERROR(conf.Set("message.timeout.ms", std::to_string(o.timeout.count())));
  rd_kafka_conf_set_dr_msg_cb(conf.conf, OnDelivery);
  rd_kafka_conf_set_opaque(conf.conf, &d);
  SY_ASSIGN_OR_RETURN(Handle producer, NewHandle(RD_KAFKA_PRODUCER, conf));

  d.reports.assign(o.messages, 0);
  std::vector<int> next_seq(o.keys, 0);
  auto deadline = Clock::now() + o.timeout;
  for (int i = 0; i < o.messages; ++i) {
    int key = i % o.keys;
    std::string key_name = KeyName(key);
    std::string value = key_name + ":" + std::to_string(next_seq[key]++);
    for (;;) {
      // librdkafka's RD_KAFKA_V_* macros are C and cast C-style.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer.get(), RD_KAFKA_V_TOPIC(o.topic.c_str()),
          RD_KAFKA_V_KEY(key_name.data(), key_name.size()),
          RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<intptr_t>(i))), RD_KAFKA_V_END);
#pragma GCC diagnostic pop
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || RemainingMs(deadline) == 0) {
        return Unavailable("produce: " + std::string(rd_kafka_err2str(err)));
      }
      rd_kafka_poll(producer.get(), 10);  // serve delivery reports to make room
    }
    rd_kafka_poll(producer.get(), 0);
  }
  // message.timeout.ms bounds every message's life, so each one gets its report by then; the
  // margin covers the last messages, enqueued just before the deadline.
  rd_kafka_flush(producer.get(), RemainingMs(deadline) + 5000);
  char err[512];
  if (rd_kafka_fatal_error(producer.get(), err, sizeof(err)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Internal(std::string("idempotent producer fatal error: ") + err);
  }
  if (int left = rd_kafka_outq_len(producer.get()); left > 0) {
    return Unavailable(std::to_string(left) + " messages still queued after the timeout");
  }
  if (d.failed > 0) {
    return Unavailable(std::to_string(d.failed) + " messages failed, first: " + d.first_error);
  }
  for (int i = 0; i < o.messages; ++i) {
    if (d.reports[i] != 1) {
      return Internal("message " + std::to_string(i) + " got " + std::to_string(d.reports[i]) +
                      " delivery reports");
    }
  }
  if (d.delivered != o.messages) {
    return Internal(std::to_string(d.delivered) + " of " + std::to_string(o.messages) +
                    " delivered");
  }
  return Status::Ok();
}

Status ConsumeAndCheck(const ChainOptions& o, const Deliveries& d, ChainReport& report) {
  Conf conf;
  SY_RETURN_IF_ERROR(conf.Set("bootstrap.servers", o.brokers));
  SY_RETURN_IF_ERROR(conf.Set("client.id", "switchyard-kafka-chain"));
  SY_RETURN_IF_ERROR(conf.Set("group.id", o.topic + "-group"));
  // What delivery workers will run: incremental rebalances (a joining worker does not stop the
  // others), only committed transactions' messages, and offsets committed by the code itself.
  SY_RETURN_IF_ERROR(conf.Set("partition.assignment.strategy", "cooperative-sticky"));
  SY_RETURN_IF_ERROR(conf.Set("isolation.level", "read_committed"));
  SY_RETURN_IF_ERROR(conf.Set("enable.auto.commit", "false"));
  SY_RETURN_IF_ERROR(conf.Set("auto.offset.reset", "earliest"));
  // The broker's minimum (group.min.session.timeout.ms): a member that died without leaving
  // (or one the group still remembers after a coordinator failover) holds a rebalance for at
  // most this long, instead of the default 45 s.
  SY_RETURN_IF_ERROR(conf.Set("session.timeout.ms", "6000"));
  SY_ASSIGN_OR_RETURN(Handle consumer, NewHandle(RD_KAFKA_CONSUMER, conf));
  rd_kafka_poll_set_consumer(consumer.get());

  rd_kafka_topic_partition_list_t* subscription = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(subscription, o.topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer.get(), subscription);
  rd_kafka_topic_partition_list_destroy(subscription);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Internal(std::string("subscribe: ") + rd_kafka_err2str(err));
  }

  std::vector<int> next_seq(o.keys, 0);
  Status order;
  std::string last_error;
  auto deadline = Clock::now() + o.timeout;
  while (report.consumed < o.messages && order.ok() && RemainingMs(deadline) > 0) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer.get(), 100);
    if (m == nullptr) continue;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) last_error = rd_kafka_message_errstr(m);
      rd_kafka_message_destroy(m);
      continue;
    }
    std::string key(static_cast<const char*>(m->key), m->key_len);
    std::string value(static_cast<const char*>(m->payload), m->len);
    rd_kafka_message_destroy(m);
    // value is "user-K:seq"; the key must match and seq must be the next one for that key.
    size_t colon = value.rfind(':');
    int k = -1;
    int seq = -1;
    if (colon != std::string::npos && value.compare(0, colon, key) == 0 && key.size() > 5) {
      k = std::atoi(key.c_str() + 5);
      seq = std::atoi(value.c_str() + colon + 1);
    }
    if (k < 0 || k >= o.keys || KeyName(k) != key) {
      order = DataLoss("unexpected message key=" + key + " value=" + value);
    } else if (seq != next_seq[k]) {
      order = DataLoss("key " + key + ": got seq " + std::to_string(seq) + ", expected " +
                       std::to_string(next_seq[k]) + " (lost, duplicated or reordered)");
    } else {
      ++next_seq[k];
      ++report.consumed;
    }
  }
  const char* protocol = rd_kafka_rebalance_protocol(consumer.get());
  report.rebalance_protocol = protocol != nullptr ? protocol : "";

  Status status = order;
  if (status.ok() && report.consumed < o.messages) {
    status = Unavailable("consumed " + std::to_string(report.consumed) + " of " +
                         std::to_string(o.messages) + " within the timeout" +
                         (last_error.empty() ? "" : ", last error: " + last_error));
  }
  if (status.ok()) {
    // Manual commit of the positions reached, then read them back: every partition's committed
    // offset must be the end its delivery reports named.
    err = rd_kafka_commit(consumer.get(), nullptr, /*async=*/0);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      status = Unavailable(std::string("commit: ") + rd_kafka_err2str(err));
    }
  }
  if (status.ok()) {
    rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(o.partitions);
    for (int p = 0; p < o.partitions; ++p) {
      rd_kafka_topic_partition_list_add(parts, o.topic.c_str(), p);
    }
    err = rd_kafka_committed(consumer.get(), parts, RemainingMs(deadline) + 5000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      status = Unavailable(std::string("committed: ") + rd_kafka_err2str(err));
    }
    for (int i = 0; status.ok() && i < parts->cnt; ++i) {
      const rd_kafka_topic_partition_t& tp = parts->elems[i];
      auto it = d.end_offsets.find(tp.partition);
      int64_t want = it == d.end_offsets.end() ? RD_KAFKA_OFFSET_INVALID : it->second;
      if (tp.offset != want) {
        status = Internal("partition " + std::to_string(tp.partition) + ": committed " +
                          std::to_string(tp.offset) + ", end " + std::to_string(want));
      }
    }
    rd_kafka_topic_partition_list_destroy(parts);
  }
  rd_kafka_consumer_close(consumer.get());
  return status;
}

}  // namespace

Status CreateTopicOnly(const ChainOptions& options) {
  return CreateTopic(options);
}

Result<ChainReport> RunChain(const ChainOptions& options) {
  if (options.messages <= 0 || options.keys <= 0 || options.partitions <= 0) {
    return InvalidArgument("messages, keys and partitions must be positive");
  }
  if (options.create_topic) SY_RETURN_IF_ERROR(CreateTopic(options));
  Deliveries deliveries;
  SY_RETURN_IF_ERROR(Produce(options, deliveries));
  ChainReport report;
  report.delivered = deliveries.delivered;
  SY_RETURN_IF_ERROR(ConsumeAndCheck(options, deliveries, report));
  return report;
}

}  // namespace sy::kafka_test
