// AdminApi: the HTTP handler of the admin listener (`admin.listen`): the JSON admin API under
// /api/v1 (docs/admin-api.md; every route in src/admin/openapi.json, served at
// /api/v1/openapi.json). It authenticates each request by bearer token or session cookie,
// checks CSRF on cookie-authenticated mutations and the role's permission, answers users,
// tokens, sessions and the audit log itself, and maps sources, destinations, destination types
// and the config export onto ConfigApi (config_api.h). Every change is written to the audit log
// before the answer.
//
// Threads: Handle runs on the admin listener's I/O thread and only queues the request; one
// worker thread (`sy-admin`) serves the queue, because password hashing (Argon2id, ~64 MiB,
// a fraction of a second), the credential file and the audit fsync block. One worker also
// bounds the memory Argon2id takes to one hash at a time. Past `max_queued` waiting requests
// the answer is 503 with Retry-After. Serve() is thread-safe and may be called directly (tests).
//
// Paths outside /api/ are the console's pages and assets (console/console.h): answered on the
// calling thread, never queued behind the worker, and without authentication (they hold no data).
//
// Owns nothing it is given: the stores, the audit log and the ConfigApi must outlive it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "admin/audit_log.h"
#include "admin/config_api.h"
#include "admin/credentials.h"
#include "admin/dead_letter_api.h"
#include "admin/live_streams.h"
#include "admin/overview_api.h"
#include "admin/replay_api.h"
#include "admin/sessions.h"
#include "admin/warehouse_api.h"
#include "base/clock.h"
#include "console/console.h"
#include "http/server.h"
#include "observe/delivery_stats.h"
#include "observe/ingest_stats.h"

namespace sy::admin {

// The name of the session cookie.
inline constexpr std::string_view kSessionCookie = "sy_session";

struct AdminApiOptions {
  CredentialStore* credentials = nullptr;
  AuditLog* audit = nullptr;
  // The configuration side (src/app/config_controller.*). Null until it is set (here or by
  // SetConfigApi): the configuration routes then answer 503 `config_unavailable`.
  ConfigApi* config = nullptr;
  Clock* clock = nullptr;
  // Each destination's per-minute delivery figures (observe/), for
  // GET /api/v1/destinations/{name}/stats. Null: that route answers 503.
  observe::DeliveryStatsBook* delivery_stats = nullptr;
  // How far a destination's stream is behind the log's end, for the stats route's `backlog`:
  // false when not known (the destination does not run). Empty: always unknown.
  std::function<bool(std::string_view destination, uint64_t* events, double* seconds)> backlog;
  // The live view (GET /api/v1/live, admin/live_streams.h): the feed, and the streams' limits
  // (`feed` is ignored). Null feed: that route answers 503.
  observe::LiveFeed* live_feed = nullptr;
  LiveStreamsOptions live;
  // The dead-letter routes (dead_letter_api.h). Null: they answer 503 `dlq_unavailable`.
  DeadLetterApi* dead_letters = nullptr;
  // The replay routes (replay_api.h). Null: they answer 503 `replay_unavailable`.
  ReplayApi* replays = nullptr;
  // GET /api/v1/warehouse and POST /api/v1/destinations/{name}/sync (warehouse_api.h). Null:
  // 503 `warehouse_unavailable`.
  WarehouseApi* warehouse = nullptr;
  // GET /api/v1/overview: events stored per minute (observe/ingest_stats.h), and the facts only
  // the server knows (overview_api.h). Either null: that route answers 503.
  observe::IngestStats* ingest_stats = nullptr;
  OverviewApi* overview = nullptr;
  // Slow changes (a redrive sends one HTTP request per letter) run on their own thread
  // (`sy-admin-ops`) so they never hold up the worker; at most this many wait, past it 503.
  size_t max_queued_slow = 4;
  SessionOptions sessions;
  LoginLimiterOptions login_limits;
  // Adds `Secure` to the session cookie: set when the admin listener is reached over HTTPS
  // (`admin.secure_cookie`, e.g. behind a TLS-terminating proxy).
  bool secure_cookie = false;
  // Requests waiting for the worker at most; past it, 503 with Retry-After: 1.
  size_t max_queued = 256;
  bool start_worker = true;  // false: Handle serves on the calling thread (tests)
};

// One route of the admin API: method and path template ("{name}" matches one segment).
struct AdminRoute {
  std::string_view method;
  std::string_view path;
};
// Every route the API serves, for the OpenAPI check (admin_test.cc) and the 405 Allow header.
const std::vector<AdminRoute>& AdminRoutes();
// The OpenAPI 3 document (src/admin/openapi.json, embedded at build time).
std::string_view OpenApiDocument();

class AdminApi final : public http::Handler {
 public:
  explicit AdminApi(AdminApiOptions options);
  ~AdminApi() override;  // stops the worker; requests still queued are answered 503

  void Handle(http::Request&& request, const http::PeerInfo& peer,
              http::Responder respond) override;
  http::Response Reject(unsigned status, const std::string& reason,
                        const http::Request& partial) override;

  // Answers one request on the calling thread. GET /api/v1/live cannot stream here: its answer
  // is the stream's head alone (status and fields), or its error.
  http::Response Serve(const http::Request& request, const http::PeerInfo& peer);

  // Live view streams open now.
  size_t live_streams() const { return live_ ? live_->open_streams() : 0; }

  SessionTable& sessions() { return sessions_; }

  // Sets (or replaces) the ConfigApi after construction: the server hands over its config
  // controller once it is attached to the running components. Thread-safe; requests already
  // past the check use the old one.
  void SetConfigApi(ConfigApi* config);

  // Who may call a route: nobody in particular (login, the OpenAPI document), any role, an
  // editor or admin (changes to sources and destinations), an admin (users, tokens, audit).
  enum class Need { kNothing, kViewer, kEditor, kAdmin };
  struct RouteDef;
  // The route table (admin_api.cc); AdminRoutes() lists it.
  static const std::vector<RouteDef>& RouteTable();

 private:
  struct Call;
  struct Job {
    http::Request request;
    http::PeerInfo peer;
    http::Responder respond;
  };
  void WorkLoop();
  // Serves `request`; with `respond`, GET /api/v1/live starts its stream through it and
  // `*streamed` is set (the caller then answers nothing).
  http::Response ServeWith(const http::Request& request, const http::PeerInfo& peer,
                           const http::Responder* respond, bool* streamed);
  http::Response Live(Call& call);
  http::Response DeadLetters(Call& call);
  http::Response Replays(Call& call);
  http::Response WarehouseSync(Call& call);
  http::Response WarehouseStatus(Call& call);
  http::Response Overview(Call& call);
  // Runs `work` on the slow-operations thread and answers with its response through
  // call.respond (then call.streamed is set); without a responder (Serve), runs it here.
  http::Response RunSlow(Call& call, std::function<http::Response()> work);
  void SlowLoop();

  http::Response OpenApi(Call& call);
  http::Response Login(Call& call);
  http::Response Logout(Call& call);
  http::Response SessionInfo(Call& call);
  http::Response ListUsers(Call& call);
  http::Response CreateUser(Call& call);
  http::Response UpdateUser(Call& call);
  http::Response DeleteUser(Call& call);
  http::Response ListTokens(Call& call);
  http::Response CreateToken(Call& call);
  http::Response DeleteToken(Call& call);
  http::Response Audit(Call& call);
  http::Response ConfigCall(Call& call);
  http::Response DestinationStats(Call& call);

  // Appends to the audit log; on failure the answer becomes 500 `audit_failed` (the change
  // stands: it was made before; the message says so).
  bool Record(Call& call, const AuditEntry& entry, http::Response* res);
  bool RecordAs(const Actor& actor, const std::string& client, const http::Request& req,
                const AuditEntry& entry, http::Response* res);
  // Dead letters named in one redrive or purge at most.
  static constexpr size_t kMaxDeadLetterIds = 10'000;

  AdminApiOptions options_;
  std::atomic<ConfigApi*> config_;
  SessionTable sessions_;
  LoginLimiter limiter_;
  const console::Console console_;
  std::unique_ptr<LiveStreams> live_;  // when options_.live_feed is set

  struct SlowJob {
    std::function<http::Response()> work;
    http::Responder respond;
    unsigned version = 11;
  };
  std::mutex slow_mu_;
  std::condition_variable slow_cv_;
  std::deque<SlowJob> slow_queue_;  // guarded by slow_mu_
  bool slow_stopping_ = false;      // guarded by slow_mu_
  std::thread slow_worker_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;  // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread worker_;
};

}  // namespace sy::admin
