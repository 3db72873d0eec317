#include "log/kafka/kafka_log.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "base/logging.h"
#include "base/thread_name.h"

namespace sy::log {
namespace {

using SteadyClock = std::chrono::steady_clock;

std::shared_ptr<spdlog::logger> Logger() {
  static auto l = ModuleLogger("kafka");
  return l;
}

constexpr std::string_view kHeaderSource = "sy-source";
constexpr std::string_view kHeaderMessageId = "sy-message-id";
constexpr std::string_view kHeaderReceivedAt = "sy-received-at";

// A librdkafka configuration being built; rd_kafka_new takes it over only on success.
class Conf {
 public:
  Conf() : conf_(rd_kafka_conf_new()) {}
  Conf(const Conf&) = delete;
  Conf& operator=(const Conf&) = delete;
  ~Conf() {
    if (conf_ != nullptr) rd_kafka_conf_destroy(conf_);
  }
  // Values are not named in errors: some are secrets.
  Status Set(const std::string& name, const std::string& value) {
    char err[512];
    if (rd_kafka_conf_set(conf_, name.c_str(), value.c_str(), err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
      return InvalidArgument("kafka client property " + name + ": " + err);
    }
    return Status::Ok();
  }
  rd_kafka_conf_t* get() { return conf_; }
  Result<rd_kafka_t*> New(rd_kafka_type_t type) {
    char err[512];
    rd_kafka_t* rk = rd_kafka_new(type, conf_, err, sizeof(err));
    if (rk == nullptr) return Internal(std::string("kafka client: ") + err);
    conf_ = nullptr;
    return rk;
  }

 private:
  rd_kafka_conf_t* conf_;
};

Status CommonConf(const KafkaLogOptions& o, Conf& c) {
  SY_RETURN_IF_ERROR(c.Set("bootstrap.servers", o.brokers));
  SY_RETURN_IF_ERROR(c.Set("client.id", o.client_id));
  // A broker that comes back is found within a second, not librdkafka's default 10 s.
  SY_RETURN_IF_ERROR(c.Set("reconnect.backoff.max.ms", "1000"));
  SY_RETURN_IF_ERROR(c.Set("log.connection.close", "false"));
  for (const auto& [k, v] : o.client_properties)
    SY_RETURN_IF_ERROR(c.Set(k, v));
  return Status::Ok();
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch())
      .count();
}

// Runs one admin request on `rk` and waits for its result event (bounded).
template <class Start>
Result<rd_kafka_event_t*> RunAdmin(rd_kafka_t* rk, rd_kafka_admin_op_t op, int timeout_ms,
                                   Start start) {
  char err[512];
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk, op);
  rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, err, sizeof(err));
  if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS)
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, err, sizeof(err));
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  start(opts, queue);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, timeout_ms + 2000);
  rd_kafka_queue_destroy(queue);
  rd_kafka_AdminOptions_destroy(opts);
  if (ev == nullptr) return Unavailable("kafka admin request: no answer within the timeout");
  if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::string what = rd_kafka_event_error_string(ev);
    rd_kafka_event_destroy(ev);
    return Unavailable("kafka admin request: " + what);
  }
  return ev;
}

Status CreateTopic(rd_kafka_t* rk, const KafkaLogOptions& o, const std::string& topic) {
  char err[512];
  rd_kafka_NewTopic_t* t =
      rd_kafka_NewTopic_new(topic.c_str(), o.partitions, o.replication_factor, err, sizeof(err));
  if (t == nullptr) return InvalidArgument(std::string("kafka topic ") + topic + ": " + err);
  rd_kafka_NewTopic_set_config(t, "min.insync.replicas",
                               std::to_string(o.min_insync_replicas).c_str());
  const int timeout_ms = std::max(o.ack_timeout_ms, 10000);
  auto ev = RunAdmin(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms,
                     [&](rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* q) {
                       rd_kafka_CreateTopics(rk, &t, 1, opts, q);
                     });
  rd_kafka_NewTopic_destroy(t);
  if (!ev.ok()) return ev.status();
  size_t n = 0;
  const rd_kafka_topic_result_t** res =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(*ev), &n);
  Status s;
  if (n == 1 && rd_kafka_topic_result_error(res[0]) != RD_KAFKA_RESP_ERR_NO_ERROR &&
      rd_kafka_topic_result_error(res[0]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
    const char* msg = rd_kafka_topic_result_error_string(res[0]);
    s = Unavailable("cannot create kafka topic " + topic + ": " +
                    rd_kafka_err2str(rd_kafka_topic_result_error(res[0])) +
                    (msg != nullptr ? std::string(" (") + msg + ")" : std::string()));
  } else if (n == 1 && rd_kafka_topic_result_error(res[0]) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    Logger()->info("kafka topic created topic={} partitions={} replication_factor={}", topic,
                   o.partitions, o.replication_factor);
  }
  rd_kafka_event_destroy(*ev);
  return s;
}

class KafkaLog;

// ---------------------------------------------------------------------------------------------
// Cursors

// What a cursor knows of one partition it holds.
struct PartitionState {
  // Records handed out and not yet below a committed `next`: (synthetic, kafka offset), in order.
  std::deque<std::pair<uint64_t, int64_t>> open;
  int64_t handed_end = -1;  // last handed-out kafka offset + 1; -1: none this assignment
  int64_t committed = -1;   // what this cursor committed for it; -1: nothing yet
  Gauge* lag = nullptr;
};

class KafkaCursor final : public LogCursor {
 public:
  KafkaCursor(KafkaLog* log, std::string name, std::string group);
  ~KafkaCursor() override;
  // Takes over `rk` (a consumer made with this cursor as its opaque) and subscribes.
  Status Start(rd_kafka_t* rk);

  const std::string& name() const override { return name_; }
  Offset position() const override { return Offset(next_); }
  Offset committed() const override { return Offset(committed_); }
  Result<std::vector<LogEntry>> Read(size_t max_records, size_t max_bytes) override;
  bool WaitForData(std::chrono::milliseconds timeout) override;
  Status Commit(Offset next) override;
  Status Seek(Offset offset) override;
  Status SeekToTime(TimestampMs t) override;

  void OnRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);

 private:
  // Takes one message (consumer errors are logged and skipped); true if it is a record.
  bool Accept(rd_kafka_message_t* m, std::vector<LogEntry>* out, size_t* bytes);
  void UpdateLag();

  KafkaLog* const log_;
  const std::string name_;
  const std::string group_;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_queue_t* queue_ = nullptr;   // the consumer queue, for wake-ups
  rd_kafka_message_t* held_ = nullptr;  // polled by WaitForData, returned by the next Read
  uint64_t next_ = 0;
  uint64_t committed_ = 0;
  std::map<int32_t, PartitionState> parts_;
  SteadyClock::time_point last_lag_update_{};
  Counter* assigned_ = nullptr;
  Counter* revoked_ = nullptr;
  Gauge* cursor_lag_ = nullptr;
  std::string last_error_;
};

// An ephemeral reader: reads nothing in this slice (see the header).
class EmptyReader final : public LogCursor {
 public:
  const std::string& name() const override { return name_; }
  Offset position() const override { return Offset(0); }
  Offset committed() const override { return Offset(0); }
  Result<std::vector<LogEntry>> Read(size_t, size_t) override { return std::vector<LogEntry>{}; }
  bool WaitForData(std::chrono::milliseconds timeout) override {
    std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(100)));
    return false;
  }
  Status Commit(Offset) override {
    return FailedPrecondition("an ephemeral reader has no resume point");
  }
  Status Seek(Offset) override { return Status::Ok(); }
  Status SeekToTime(TimestampMs) override { return Status::Ok(); }

 private:
  std::string name_;
};

// ---------------------------------------------------------------------------------------------
// The log

// One Append call in flight: completes when `remaining` reaches 0.
struct AppendBatch {
  std::atomic<size_t> remaining;
  std::mutex mu;
  Status status;  // the first failure, under mu
  AppendCallback done;
  Offset first;
  int64_t start_ns;
  size_t events = 0;  // counted as produced when the call succeeds
};

class KafkaLog final : public EventLog {
 public:
  explicit KafkaLog(KafkaLogOptions o)
      : o_(std::move(o)), topic_(KafkaEventsTopic(o_.topic_prefix)) {}
  ~KafkaLog() override;

  Status Open();
  void Append(std::vector<LogRecord> records, AppendCallback done) override;
  Result<std::unique_ptr<LogCursor>> OpenCursor(std::string_view consumer) override;
  Result<std::unique_ptr<LogCursor>> OpenReader() override {
    return std::unique_ptr<LogCursor>(new EmptyReader());
  }
  Status DeleteCursor(std::string_view consumer) override;
  Status Health() const override {
    std::lock_guard lock(health_mu_);
    return health_;
  }
  uint64_t AddDataListener(std::function<void()> listener) override;
  void RemoveDataListener(uint64_t id) override;
  Offset StartOffset() const override { return Offset(0); }
  Offset EndOffset() const override { return Offset(0); }
  Status Close() override;

  const KafkaLogOptions& options() const { return o_; }
  const std::string& topic() const { return topic_; }
  void NotifyListeners();
  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque);
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque);

 private:
  void Finish(AppendBatch* b, size_t n);
  void PollLoop();
  void ProbeLoop();
  void SetHealth(Status s);

  const KafkaLogOptions o_;
  const std::string topic_;
  rd_kafka_t* producer_ = nullptr;
  std::atomic<bool> closed_{false};
  std::atomic<uint64_t> next_offset_{0};  // synthetic offsets handed to Append results
  std::mutex error_mu_;
  std::string last_error_;  // the last client error logged, under error_mu_
  mutable std::mutex health_mu_;
  Status health_ = Unavailable("kafka: not connected yet");
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // under stop_mu_
  std::thread poller_;
  std::thread prober_;
  std::mutex listeners_mu_;
  std::map<uint64_t, std::function<void()>> listeners_;
  uint64_t next_listener_ = 1;
  // Metrics.
  Gauge* queue_depth_ = nullptr;
  Gauge* reachable_ = nullptr;
  Histogram* report_latency_ = nullptr;
  Counter* produced_ = nullptr;
  Counter* failed_ = nullptr;
};

void KafkaLog::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* log = static_cast<KafkaLog*>(opaque);
  auto* b = static_cast<AppendBatch*>(m->_private);
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::lock_guard lock(b->mu);
    if (b->status.ok()) {
      if (m->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT) {
        b->status =
            Unavailable("kafka did not acknowledge the events within log.kafka.ack_timeout");
      } else {
        b->status = Unavailable(std::string("kafka: ") + rd_kafka_err2str(m->err));
      }
    }
  }
  log->Finish(b, 1);
}

void KafkaLog::OnError(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* log = static_cast<KafkaLog*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__FATAL) {
    log->SetHealth(Unavailable(std::string("kafka: ") + reason));
  }
  // Once per distinct error: a cluster that is down repeats the same one at every reconnect.
  std::lock_guard lock(log->error_mu_);
  if (log->last_error_ == reason) return;
  log->last_error_ = reason;
  Logger()->warn("kafka client error: {} ({})", reason,
                 rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)));
}

void KafkaLog::Finish(AppendBatch* b, size_t n) {
  if (b->remaining.fetch_sub(n) != n) return;
  AppendResult r;
  {
    std::lock_guard lock(b->mu);
    r.status = b->status;
  }
  r.first = b->first;
  report_latency_->Observe(static_cast<double>(NowNs() - b->start_ns) / 1e9);
  if (!r.status.ok())
    failed_->Inc();
  else
    produced_->Inc(b->events);
  b->done(r);
  delete b;
}

Status KafkaLog::Open() {
  MetricsRegistry* m = o_.metrics;
  queue_depth_ = m->GetGauge("switchyard_kafka_producer_queue_messages",
                             "Messages in the Kafka producer's queue (sent or not) without a "
                             "delivery report.");
  reachable_ = m->GetGauge("switchyard_kafka_cluster_reachable",
                           "1 while the last probe of the Kafka cluster answered, else 0.");
  report_latency_ =
      m->GetHistogram("switchyard_kafka_delivery_report_seconds",
                      "Time from an append to the delivery report of its last record (acks=all).",
                      LatencyBuckets());
  produced_ = m->GetCounter("switchyard_kafka_produced_events_total",
                            "Events acknowledged by the Kafka cluster.");
  failed_ = m->GetCounter("switchyard_kafka_append_failures_total",
                          "Appends (whole ingest requests) that failed: refused, queue full, "
                          "not acknowledged in time.");
  m->Counters("switchyard_kafka_rebalances_total",
              "Partitions assigned to or revoked from a consumer group member of this process.",
              {"group", "kind"});
  m->Gauges("switchyard_consumer_lag_events",
            "Events in the log past the cursor's committed position (on Kafka: the sum over the "
            "partitions this process holds).",
            {"cursor"});
  m->Gauges("switchyard_kafka_consumer_lag_events",
            "Records past the group's committed offset, per partition held by this process.",
            {"group", "partition"});

  Conf c;
  SY_RETURN_IF_ERROR(CommonConf(o_, c));
  // No duplicates or reordering from internal retries; every in-sync replica holds a record
  // before its report says delivered.
  SY_RETURN_IF_ERROR(c.Set("enable.idempotence", "true"));
  SY_RETURN_IF_ERROR(c.Set("acks", "all"));
  // The Java clients' partitioner: a key lands in the same partition whoever produces it.
  SY_RETURN_IF_ERROR(c.Set("partitioner", "murmur2_random"));
  SY_RETURN_IF_ERROR(c.Set("linger.ms", std::to_string(o_.linger_ms)));
  SY_RETURN_IF_ERROR(c.Set("message.timeout.ms", std::to_string(o_.ack_timeout_ms)));
  SY_RETURN_IF_ERROR(c.Set("request.timeout.ms", std::to_string(o_.ack_timeout_ms)));
  SY_RETURN_IF_ERROR(
      c.Set("queue.buffering.max.messages", std::to_string(o_.producer_queue_messages)));
  SY_RETURN_IF_ERROR(c.Set("queue.buffering.max.kbytes",
                           std::to_string(std::max<int64_t>(1, o_.producer_queue_bytes / 1024))));
  SY_RETURN_IF_ERROR(c.Set("compression.codec", o_.compression));
  rd_kafka_conf_set_dr_msg_cb(c.get(), &KafkaLog::OnDelivery);
  rd_kafka_conf_set_error_cb(c.get(), &KafkaLog::OnError);
  rd_kafka_conf_set_opaque(c.get(), this);
  SY_ASSIGN_OR_RETURN(producer_, c.New(RD_KAFKA_PRODUCER));
  if (o_.create_topic) SY_RETURN_IF_ERROR(CreateTopic(producer_, o_, topic_));
  SetHealth(Status::Ok());
  poller_ = std::thread([this] {
    SetThreadName("sy-kafka-poll");
    PollLoop();
  });
  prober_ = std::thread([this] {
    SetThreadName("sy-kafka-probe");
    ProbeLoop();
  });
  Logger()->info("kafka log open brokers={} topic={} ack_timeout_ms={}", o_.brokers, topic_,
                 o_.ack_timeout_ms);
  return Status::Ok();
}

KafkaLog::~KafkaLog() {
  (void)Close();
  if (producer_ != nullptr) rd_kafka_destroy(producer_);
}

void KafkaLog::SetHealth(Status s) {
  if (s.ok()) {
    std::lock_guard lock(error_mu_);
    last_error_.clear();  // the next outage is logged again
  }
  std::lock_guard lock(health_mu_);
  if (health_.ok() != s.ok() && !closed_.load()) {
    if (s.ok())
      Logger()->info("kafka cluster reachable");
    else
      Logger()->warn("kafka cluster unreachable: {}", s.message());
  }
  health_ = std::move(s);
  if (reachable_ != nullptr) reachable_->Set(health_.ok() ? 1 : 0);
}

// Serves delivery reports (every Append's completion runs here) and the queue-depth gauge.
void KafkaLog::PollLoop() {
  while (true) {
    {
      std::lock_guard lock(stop_mu_);
      if (stopping_) break;
    }
    rd_kafka_poll(producer_, 100);
    queue_depth_->Set(rd_kafka_outq_len(producer_));
  }
}

// Probes the cluster for Health() (a metadata request answered by a broker), and wakes waiting
// consumers on a timer in case a queue wake-up was missed.
void KafkaLog::ProbeLoop() {
  auto next_probe = SteadyClock::now();
  while (true) {
    {
      std::unique_lock lock(stop_mu_);
      stop_cv_.wait_for(lock, std::chrono::milliseconds(o_.wake_interval_ms),
                        [this] { return stopping_; });
      if (stopping_) break;
    }
    NotifyListeners();
    if (SteadyClock::now() < next_probe) continue;
    next_probe = SteadyClock::now() + std::chrono::milliseconds(o_.probe_interval_ms);
    char err[512];
    if (rd_kafka_fatal_error(producer_, err, sizeof(err)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // The idempotent producer cannot go on (its state is unknown to the cluster): every
      // append fails until the process restarts, and /readyz says so.
      SetHealth(Unavailable(std::string("kafka producer fatal error: ") + err));
      continue;
    }
    const struct rd_kafka_metadata* md = nullptr;
    rd_kafka_resp_err_t e =
        rd_kafka_metadata(producer_, 0, nullptr, &md, std::max(100, o_.probe_interval_ms));
    if (md != nullptr) rd_kafka_metadata_destroy(md);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
      SetHealth(Status::Ok());
    } else {
      SetHealth(Unavailable(std::string("kafka cluster unreachable: ") + rd_kafka_err2str(e)));
    }
  }
}

void KafkaLog::Append(std::vector<LogRecord> records, AppendCallback done) {
  if (records.empty()) {
    done(AppendResult{Status::Ok(), Offset(next_offset_.load())});
    return;
  }
  if (closed_.load()) {
    failed_->Inc();
    done(AppendResult{Unavailable("event log is closed"), Offset()});
    return;
  }
  if (Status h = Health(); !h.ok()) {
    // Known unreachable: answer now rather than after ack_timeout (the probe notices recovery
    // within log.kafka probe interval).
    failed_->Inc();
    done(AppendResult{h, Offset()});
    return;
  }
  const size_t n = records.size();
  auto* b = new AppendBatch;
  b->remaining.store(n + 1);  // +1: this call's own hold, released after the loop
  b->done = std::move(done);
  b->first = Offset(next_offset_.fetch_add(n));
  b->start_ns = NowNs();
  size_t queued = 0;
  for (; queued < n; ++queued) {
    LogRecord& r = records[queued];
    const std::string key = KafkaRecordKey(r);
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(r.headers.size() + 3);
    const std::string received = std::to_string(r.received_at.value());
    rd_kafka_header_add(hdrs, kHeaderSource.data(), static_cast<ssize_t>(kHeaderSource.size()),
                        r.source.data(), static_cast<ssize_t>(r.source.size()));
    rd_kafka_header_add(hdrs, kHeaderMessageId.data(),
                        static_cast<ssize_t>(kHeaderMessageId.size()), r.message_id.data(),
                        static_cast<ssize_t>(r.message_id.size()));
    rd_kafka_header_add(hdrs, kHeaderReceivedAt.data(),
                        static_cast<ssize_t>(kHeaderReceivedAt.size()), received.data(),
                        static_cast<ssize_t>(received.size()));
    for (const auto& h : r.headers)
      rd_kafka_header_add(hdrs, h.key.data(), static_cast<ssize_t>(h.key.size()), h.value.data(),
                          static_cast<ssize_t>(h.value.size()));
      // librdkafka's RD_KAFKA_V_* macros are C and cast C-style.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer_, RD_KAFKA_V_TOPIC(topic_.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
        RD_KAFKA_V_VALUE(r.payload.data(), r.payload.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(r.received_at.value()),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(b), RD_KAFKA_V_END);
#pragma GCC diagnostic pop
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_headers_destroy(hdrs);  // kept by the producer only on success
      std::lock_guard lock(b->mu);
      b->status = err == RD_KAFKA_RESP_ERR__QUEUE_FULL
                      ? ResourceExhausted("kafka producer queue is full")
                      : Unavailable(std::string("kafka produce: ") + rd_kafka_err2str(err));
      break;
    }
  }
  b->events = n;
  // The records never queued, and this call's hold: once every queued record has its report,
  // the last one completes the call (here, if they all came already).
  Finish(b, n - queued + 1);
}

uint64_t KafkaLog::AddDataListener(std::function<void()> listener) {
  std::lock_guard lock(listeners_mu_);
  uint64_t id = next_listener_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void KafkaLog::RemoveDataListener(uint64_t id) {
  // Listeners run under listeners_mu_, so none of this one runs once the erase returns.
  std::lock_guard lock(listeners_mu_);
  listeners_.erase(id);
}

void KafkaLog::NotifyListeners() {
  std::lock_guard lock(listeners_mu_);
  for (auto& [id, fn] : listeners_)
    fn();
}

Status KafkaLog::Close() {
  if (closed_.exchange(true)) return Status::Ok();
  if (producer_ != nullptr) {
    // Queued appends complete: acknowledged within ack_timeout, or failed.
    rd_kafka_flush(producer_, o_.ack_timeout_ms + 1000);
    // What is left fails (its reports are served by the flush below).
    rd_kafka_purge(producer_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(producer_, 2000);
  }
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
  if (prober_.joinable()) prober_.join();
  if (producer_ != nullptr) rd_kafka_poll(producer_, 0);  // purged reports, if any came late
  SetHealth(Unavailable("event log is closed"));
  NotifyListeners();
  return Status::Ok();
}

Result<std::unique_ptr<LogCursor>> KafkaLog::OpenCursor(std::string_view consumer) {
  if (consumer.empty() || consumer.size() > 128) {
    return InvalidArgument("cursor name must be 1 to 128 of [A-Za-z0-9_.-]");
  }
  for (char ch : consumer) {
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-'))
      return InvalidArgument("cursor name must be 1 to 128 of [A-Za-z0-9_.-]");
  }
  if (closed_.load()) return FailedPrecondition("event log is closed");
  const std::string group = KafkaGroupName(o_.topic_prefix, consumer);
  Conf c;
  SY_RETURN_IF_ERROR(CommonConf(o_, c));
  SY_RETURN_IF_ERROR(c.Set("group.id", group));
  // Incremental rebalances (a joining member does not stop the others), only committed
  // transactions' records, offsets committed by the cursor alone.
  SY_RETURN_IF_ERROR(c.Set("partition.assignment.strategy", "cooperative-sticky"));
  SY_RETURN_IF_ERROR(c.Set("isolation.level", "read_committed"));
  SY_RETURN_IF_ERROR(c.Set("enable.auto.commit", "false"));
  SY_RETURN_IF_ERROR(c.Set("enable.auto.offset.store", "false"));
  SY_RETURN_IF_ERROR(c.Set("auto.offset.reset", "earliest"));
  SY_RETURN_IF_ERROR(c.Set("session.timeout.ms", std::to_string(o_.session_timeout_ms)));
  SY_RETURN_IF_ERROR(c.Set("fetch.max.bytes", std::to_string(o_.fetch_max_bytes)));
  SY_RETURN_IF_ERROR(c.Set("fetch.wait.max.ms", "100"));
  // A cursor waits on its stream's mailbox, woken by the queue callback below; it is read with
  // zero-timeout polls, so the local queue stays small.
  SY_RETURN_IF_ERROR(c.Set("queued.max.messages.kbytes", "16384"));
  // Rebalances are served by rd_kafka_consumer_poll, on the cursor's (consumer's) thread.
  auto cursor = std::make_unique<KafkaCursor>(this, std::string(consumer), group);
  rd_kafka_conf_set_rebalance_cb(
      c.get(), [](rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                  void* opaque) { static_cast<KafkaCursor*>(opaque)->OnRebalance(err, parts); });
  rd_kafka_conf_set_opaque(c.get(), cursor.get());
  SY_ASSIGN_OR_RETURN(rd_kafka_t * rk, c.New(RD_KAFKA_CONSUMER));
  SY_RETURN_IF_ERROR(cursor->Start(rk));
  return std::unique_ptr<LogCursor>(std::move(cursor));
}

Status KafkaLog::DeleteCursor(std::string_view consumer) {
  const std::string group = KafkaGroupName(o_.topic_prefix, consumer);
  rd_kafka_DeleteGroup_t* g = rd_kafka_DeleteGroup_new(group.c_str());
  auto ev = RunAdmin(producer_, RD_KAFKA_ADMIN_OP_DELETEGROUPS, std::max(o_.ack_timeout_ms, 5000),
                     [&](rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* q) {
                       rd_kafka_DeleteGroups(producer_, &g, 1, opts, q);
                     });
  rd_kafka_DeleteGroup_destroy(g);
  if (!ev.ok()) return ev.status();
  size_t n = 0;
  const rd_kafka_group_result_t** res =
      rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(*ev), &n);
  Status s;
  if (n == 1) {
    if (const rd_kafka_error_t* e = rd_kafka_group_result_error(res[0]);
        e != nullptr && rd_kafka_error_code(e) != RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND) {
      s = Unavailable("cannot delete kafka consumer group " + group + ": " +
                      rd_kafka_error_string(e));
    }
  }
  rd_kafka_event_destroy(*ev);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Cursor implementation

KafkaCursor::KafkaCursor(KafkaLog* log, std::string name, std::string group)
    : log_(log), name_(std::move(name)), group_(std::move(group)) {}

Status KafkaCursor::Start(rd_kafka_t* rk) {
  rk_ = rk;
  rd_kafka_poll_set_consumer(rk_);
  MetricsRegistry* m = log_->options().metrics;
  auto* rebalances = m->Counters("switchyard_kafka_rebalances_total", "", {"group", "kind"});
  assigned_ = rebalances->With({group_, "assigned"});
  revoked_ = rebalances->With({group_, "revoked"});
  cursor_lag_ = m->Gauges("switchyard_consumer_lag_events", "", {"cursor"})->With({name_});
  queue_ = rd_kafka_queue_get_consumer(rk_);
  rd_kafka_queue_cb_event_enable(
      queue_, [](rd_kafka_t*, void* opaque) { static_cast<KafkaLog*>(opaque)->NotifyListeners(); },
      log_);
  rd_kafka_topic_partition_list_t* sub = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(sub, log_->topic().c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_, sub);
  rd_kafka_topic_partition_list_destroy(sub);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Unavailable("kafka subscribe of group " + group_ + ": " + rd_kafka_err2str(err));
  Logger()->info("kafka cursor open cursor={} group={}", name_, group_);
  return Status::Ok();
}

KafkaCursor::~KafkaCursor() {
  if (rk_ == nullptr) return;
  if (held_ != nullptr) rd_kafka_message_destroy(held_);
  rd_kafka_queue_cb_event_enable(queue_, nullptr, nullptr);
  rd_kafka_queue_destroy(queue_);
  // Leaves the group (its partitions go to the other members at once, not after the session
  // timeout). Uncommitted records are read again by whoever gets them.
  rd_kafka_consumer_close(rk_);
  rd_kafka_destroy(rk_);
}

void KafkaCursor::OnRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
  const bool cooperative = std::string_view(rd_kafka_rebalance_protocol(rk_)) == "COOPERATIVE";
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (int i = 0; i < parts->cnt; ++i) {
      PartitionState& p = parts_[parts->elems[i].partition];
      p = PartitionState{};
      p.lag =
          log_->options()
              .metrics->Gauges("switchyard_kafka_consumer_lag_events", "", {"group", "partition"})
              ->With({group_, std::to_string(parts->elems[i].partition)});
    }
    assigned_->Inc(static_cast<uint64_t>(parts->cnt));
    if (cooperative)
      rd_kafka_incremental_assign(rk_, parts);
    else
      rd_kafka_assign(rk_, parts);
    Logger()->info("kafka partitions assigned group={} count={}", group_, parts->cnt);
  } else {
    // Revoked (or lost): what was handed out from them and is not committed goes to the next
    // owner, which reads it again from the committed offset. Never commit for them again.
    for (int i = 0; i < parts->cnt; ++i) {
      auto it = parts_.find(parts->elems[i].partition);
      if (it == parts_.end()) continue;
      if (it->second.lag != nullptr) it->second.lag->Set(0);
      parts_.erase(it);
    }
    if (held_ != nullptr) {
      // A message polled before the revocation must not be handed out for a partition we left.
      bool gone = true;
      for (const auto& [p, s] : parts_)
        gone = gone && p != held_->partition;
      if (gone) {
        rd_kafka_message_destroy(held_);
        held_ = nullptr;
      }
    }
    revoked_->Inc(static_cast<uint64_t>(parts->cnt));
    if (cooperative)
      rd_kafka_incremental_unassign(rk_, parts);
    else
      rd_kafka_assign(rk_, nullptr);
    Logger()->info("kafka partitions revoked group={} count={} lost={}", group_, parts->cnt,
                   rd_kafka_assignment_lost(rk_) ? "yes" : "no");
  }
}

bool KafkaCursor::Accept(rd_kafka_message_t* m, std::vector<LogEntry>* out, size_t* bytes) {
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      std::string e = rd_kafka_message_errstr(m);
      if (e != last_error_) Logger()->warn("kafka consumer group={} error: {}", group_, e);
      last_error_ = std::move(e);
    }
    rd_kafka_message_destroy(m);
    return false;
  }
  auto it = parts_.find(m->partition);
  if (it == parts_.end()) {  // not ours (any more)
    rd_kafka_message_destroy(m);
    return false;
  }
  LogEntry e;
  e.offset = Offset(next_++);
  rd_kafka_timestamp_type_t ts_type;
  e.received_at = TimestampMs(rd_kafka_message_timestamp(m, &ts_type));
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs != nullptr) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (size_t i = 0;
         rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      std::string_view k(name);
      std::string v(static_cast<const char*>(value), value != nullptr ? size : 0);
      if (k == kHeaderSource) {
        e.source = std::move(v);
      } else if (k == kHeaderMessageId) {
        e.message_id = std::move(v);
      } else if (k == kHeaderReceivedAt) {
        e.received_at = TimestampMs(std::strtoll(v.c_str(), nullptr, 10));
      } else {
        e.headers.push_back(RecordHeader{std::string(k), std::move(v)});
      }
    }
  }
  e.payload.assign(static_cast<const char*>(m->payload), m->len);
  *bytes += m->len;
  it->second.open.emplace_back(e.offset.value(), m->offset);
  it->second.handed_end = m->offset + 1;
  rd_kafka_message_destroy(m);
  out->push_back(std::move(e));
  return true;
}

Result<std::vector<LogEntry>> KafkaCursor::Read(size_t max_records, size_t max_bytes) {
  std::vector<LogEntry> out;
  size_t bytes = 0;
  if (held_ != nullptr) {
    rd_kafka_message_t* m = held_;
    held_ = nullptr;
    Accept(m, &out, &bytes);
  }
  // Bounded by max_records polls and by a few empty ones (errors are skipped, not returned).
  for (size_t polls = 0; out.size() < max_records && bytes < max_bytes && polls < max_records + 16;
       ++polls) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 0);
    if (m == nullptr) break;
    Accept(m, &out, &bytes);
  }
  if (SteadyClock::now() - last_lag_update_ > std::chrono::seconds(1)) UpdateLag();
  return out;
}

bool KafkaCursor::WaitForData(std::chrono::milliseconds timeout) {
  if (held_ != nullptr) return true;
  const auto deadline = SteadyClock::now() + timeout;
  while (true) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    rd_kafka_message_t* m =
        rd_kafka_consumer_poll(rk_, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (m != nullptr && m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      held_ = m;
      return true;
    }
    if (m != nullptr) {
      std::vector<LogEntry> none;
      size_t b = 0;
      Accept(m, &none, &b);  // logs the error
    }
    if (left.count() <= 0) return false;
  }
}

Status KafkaCursor::Commit(Offset next) {
  if (next.value() > next_) {
    return InvalidArgument("commit past the cursor's position (" + std::to_string(next.value()) +
                           " > " + std::to_string(next_) + ")");
  }
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(std::max<size_t>(1, parts_.size())));
  std::vector<std::pair<PartitionState*, int64_t>> changed;
  for (auto& [partition, p] : parts_) {
    while (!p.open.empty() && p.open.front().first < next.value())
      p.open.pop_front();
    // Everything handed out below `next` is final: commit up to the first record still open,
    // or past the last one handed out.
    const int64_t to = !p.open.empty() ? p.open.front().second : p.handed_end;
    if (to < 0 || to <= p.committed) continue;
    rd_kafka_topic_partition_list_add(list, log_->topic().c_str(), partition)->offset = to;
    changed.emplace_back(&p, to);
  }
  Status s;
  if (list->cnt > 0) {
    rd_kafka_resp_err_t err = rd_kafka_commit(rk_, list, /*async=*/0);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      s = Unavailable(std::string("kafka commit of group ") + group_ + ": " +
                      rd_kafka_err2str(err));
    } else {
      for (auto& [p, to] : changed)
        p->committed = to;
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
  if (s.ok()) committed_ = std::max(committed_, next.value());
  UpdateLag();
  return s;
}

void KafkaCursor::UpdateLag() {
  last_lag_update_ = SteadyClock::now();
  double total = 0;
  for (auto& [partition, p] : parts_) {
    int64_t lo = 0, hi = 0;
    if (rd_kafka_get_watermark_offsets(rk_, log_->topic().c_str(), partition, &lo, &hi) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        hi < 0)
      continue;
    const int64_t from = p.committed >= 0 ? p.committed : lo;
    const double lag = hi > from ? static_cast<double>(hi - from) : 0.0;
    if (p.lag != nullptr) p.lag->Set(lag);
    total += lag;
  }
  cursor_lag_->Set(total);
}

Status KafkaCursor::Seek(Offset offset) {
  if (offset.value() == next_) return Status::Ok();
  return FailedPrecondition(
      "a kafka cursor seeks by time only (its offsets are per session; SeekToTime)");
}

Status KafkaCursor::SeekToTime(TimestampMs t) {
  rd_kafka_topic_partition_list_t* list = nullptr;
  if (rd_kafka_assignment(rk_, &list) != RD_KAFKA_RESP_ERR_NO_ERROR || list == nullptr)
    return Unavailable("kafka: the group's assignment is unknown");
  for (int i = 0; i < list->cnt; ++i)
    list->elems[i].offset = t.value();
  Status s;
  const int timeout_ms = std::max(log_->options().ack_timeout_ms, 5000);
  rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk_, list, timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    s = Unavailable(std::string("kafka offsetsForTimes: ") + rd_kafka_err2str(err));
  } else {
    for (int i = 0; i < list->cnt; ++i) {
      // No record at or after t: the partition's end.
      if (list->elems[i].offset < 0) list->elems[i].offset = RD_KAFKA_OFFSET_END;
    }
    rd_kafka_error_t* e = rd_kafka_seek_partitions(rk_, list, timeout_ms);
    if (e != nullptr) {
      s = Unavailable(std::string("kafka seek: ") + rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
    } else {
      if (held_ != nullptr) {
        rd_kafka_message_destroy(held_);
        held_ = nullptr;
      }
      for (auto& [partition, p] : parts_) {
        p.open.clear();
        p.handed_end = -1;
      }
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
  return s;
}

}  // namespace

std::string KafkaEventsTopic(const std::string& prefix) {
  return prefix + "-events";
}

std::string KafkaGroupName(const std::string& prefix, std::string_view cursor) {
  return prefix + "-" + std::string(cursor);
}

std::string KafkaRecordKey(const LogRecord& r) {
  std::string key;
  const std::string& who = r.user.empty() ? r.message_id : r.user;
  key.reserve(r.source.size() + 1 + who.size());
  key.append(r.source).append(":").append(who);
  return key;
}

Result<std::unique_ptr<EventLog>> OpenKafkaLog(KafkaLogOptions options) {
  if (options.metrics == nullptr) return InvalidArgument("kafka log needs a metrics registry");
  if (options.brokers.empty()) return InvalidArgument("kafka log needs brokers");
  auto log = std::make_unique<KafkaLog>(std::move(options));
  SY_RETURN_IF_ERROR(log->Open());
  return std::unique_ptr<EventLog>(std::move(log));
}

}  // namespace sy::log
