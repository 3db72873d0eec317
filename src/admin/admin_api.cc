#include "admin/admin_api.h"

#include <boost/json.hpp>
#include <charconv>
#include <set>
#include <tuple>

#include "base/constant_time.h"
#include "base/logging.h"
#include "base/thread_name.h"
#include "base/time_format.h"
#include "observe/render.h"

namespace sy::admin {

namespace json = boost::json;
namespace bhttp = http::bhttp;
using Need = AdminApi::Need;

namespace {

std::shared_ptr<spdlog::logger> Logger() {
  static auto l = ModuleLogger("admin");
  return l;
}

bool Allows(Role role, Need need) {
  switch (need) {
    case Need::kNothing:
    case Need::kViewer:
      return true;
    case Need::kEditor:
      return role == Role::kEditor || role == Role::kAdmin;
    case Need::kAdmin:
      return role == Role::kAdmin;
  }
  return false;
}

std::string_view NeedText(Need need) {
  switch (need) {
    case Need::kEditor:
      return "editor or admin";
    case Need::kAdmin:
      return "admin";
    default:
      return "any role";
  }
}

bool IsMutating(bhttp::verb v) {
  return v != bhttp::verb::get && v != bhttp::verb::head && v != bhttp::verb::options;
}

http::Response JsonResponse(const http::Request& req, unsigned status, std::string body,
                            std::string_view content_type = "application/json") {
  http::Response res{static_cast<bhttp::status>(status), req.version() ? req.version() : 11u};
  res.set(bhttp::field::content_type, content_type);
  res.set(bhttp::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

std::string ErrorBody(std::string_view code, std::string_view message, std::string_view field) {
  json::object e{{"code", code}, {"message", message}};
  if (!field.empty()) e["field"] = field;
  return json::serialize(json::object{{"error", std::move(e)}});
}

http::Response Error(const http::Request& req, unsigned status, std::string_view code,
                     std::string_view message, std::string_view field = {}) {
  return JsonResponse(req, status, ErrorBody(code, message, field));
}

// Maps a store's Status to an HTTP error. Invalid-argument messages start with "<field>: ".
http::Response StatusError(const http::Request& req, const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument: {
      const std::string& m = s.message();
      size_t colon = m.find(':');
      return Error(
          req, 400, "invalid_value", m,
          colon == std::string::npos ? std::string_view() : std::string_view(m).substr(0, colon));
    }
    case StatusCode::kAlreadyExists:
      return Error(req, 409, "already_exists", s.message());
    case StatusCode::kNotFound:
      return Error(req, 404, "not_found", s.message());
    case StatusCode::kFailedPrecondition:
      return Error(req, 409, "last_admin", s.message());
    default:
      Logger()->error("admin store failed status={}", s.ToString());
      return Error(req, 500, "internal", "the change could not be stored; see the server log");
  }
}

// Parses `body` as a JSON object whose keys are all in `allowed`. On error fills `*error` with
// a 400 naming the offending key.
bool ParseObject(const http::Request& req, std::string_view body,
                 std::initializer_list<std::string_view> allowed, json::object* out,
                 http::Response* error) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) {
    *error = Error(req, 400, "bad_json", "the body is not valid JSON: " + ec.message());
    return false;
  }
  if (!v.is_object()) {
    *error = Error(req, 400, "bad_json", "the body must be a JSON object");
    return false;
  }
  for (const auto& kv : v.as_object()) {
    if (std::find(allowed.begin(), allowed.end(), kv.key()) == allowed.end()) {
      *error =
          Error(req, 400, "unknown_key", "unknown key '" + std::string(kv.key()) + "'", kv.key());
      return false;
    }
  }
  *out = std::move(v.as_object());
  return true;
}

// Reads string `key` of `o`: absent → *present=false; not a string → 400 naming it.
bool StringField(const http::Request& req, const json::object& o, std::string_view key,
                 bool required, std::string* value, bool* present, http::Response* error) {
  auto it = o.find(key);
  *present = it != o.end();
  if (!*present) {
    if (!required) return true;
    *error = Error(req, 400, "missing_key", "'" + std::string(key) + "' is required", key);
    return false;
  }
  if (!it->value().is_string()) {
    *error = Error(req, 400, "invalid_type", "'" + std::string(key) + "' must be a string", key);
    return false;
  }
  *value = std::string(it->value().as_string());
  return true;
}

bool RoleField(const http::Request& req, const json::object& o, bool required,
               std::optional<Role>* role, http::Response* error) {
  std::string text;
  bool present = false;
  if (!StringField(req, o, "role", required, &text, &present, error)) return false;
  if (!present) return true;
  *role = ParseRole(text);
  if (!*role) {
    *error = Error(req, 400, "invalid_value", "role: expected admin, editor or viewer", "role");
    return false;
  }
  return true;
}

std::string_view QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

std::string_view CookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    while (!pair.empty() && pair.front() == ' ')
      pair.remove_prefix(1);
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return {};
}

std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 1;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    out.push_back(path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

// Matches `path` against a template; fills `params` with the "{…}" segments.
bool Matches(std::string_view pattern, std::string_view path, std::vector<std::string>* params) {
  auto want = Segments(pattern), got = Segments(path);
  if (want.size() != got.size()) return false;
  std::vector<std::string> found;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!want[i].empty() && want[i].front() == '{') {
      if (got[i].empty()) return false;
      found.emplace_back(got[i]);
    } else if (want[i] != got[i]) {
      return false;
    }
  }
  *params = std::move(found);
  return true;
}

json::array Permissions(Role role) {
  json::array p{"read"};
  if (Allows(role, Need::kEditor)) p.push_back("edit_config");
  if (Allows(role, Need::kAdmin)) {
    p.push_back("manage_users");
    p.push_back("manage_tokens");
    p.push_back("read_audit");
  }
  if (CanViewPayloads(role)) p.push_back("view_payloads");
  return p;
}

std::string AccountJson(std::string_view name, Role role) {
  return json::serialize(json::object{{"name", name}, {"role", RoleName(role)}});
}

// At most `max` bytes of `text` (valid UTF-8, as every JSON string we parsed), never cutting a
// character in two: the audit log's lines must stay valid JSON.
std::string CutUtf8(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
    --end;
  return std::string(text.substr(0, end));
}

// An ETag value is a quoted string: the version is sent quoted, and If-Match accepts it quoted
// or bare.
std::string QuoteEtag(const std::string& version) {
  if (version.empty() || version.front() == '"' || version.rfind("W/", 0) == 0) return version;
  return "\"" + version + "\"";
}

std::string_view Unquote(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') return v.substr(1, v.size() - 2);
  return v;
}

}  // namespace

struct AdminApi::RouteDef {
  std::string_view method;
  std::string_view path;
  Need need;
  http::Response (AdminApi::*serve)(Call&);
};

struct AdminApi::Call {
  Call(const http::Request& request, const http::PeerInfo& client, std::string_view path_part,
       std::string_view query_part)
      : req(request), peer(client), path(path_part), query(query_part) {}
  const http::Request& req;
  const http::PeerInfo& peer;
  std::string_view path;
  std::string_view query;
  std::string_view pattern;         // the route's template
  std::vector<std::string> params;  // its "{name}" segments
  // The caller, once authenticated.
  Actor actor;
  Role role = Role::kViewer;
  bool by_session = false;
  std::string cookie;
  BrowserSession session;
  const http::Responder* respond = nullptr;  // set when the answer may be streamed
  bool streamed = false;                     // the answer was streamed through `respond`
};

// The route table; the order only matters for readability (templates do not overlap).
#define SY_ADMIN_ROUTES(X)                                                   \
  X("POST", "/api/v1/login", kNothing, Login)                                \
  X("POST", "/api/v1/logout", kViewer, Logout)                               \
  X("GET", "/api/v1/session", kViewer, SessionInfo)                          \
  X("GET", "/api/v1/openapi.json", kNothing, OpenApi)                        \
  X("GET", "/api/v1/users", kAdmin, ListUsers)                               \
  X("POST", "/api/v1/users", kAdmin, CreateUser)                             \
  X("PATCH", "/api/v1/users/{name}", kAdmin, UpdateUser)                     \
  X("DELETE", "/api/v1/users/{name}", kAdmin, DeleteUser)                    \
  X("GET", "/api/v1/tokens", kAdmin, ListTokens)                             \
  X("POST", "/api/v1/tokens", kAdmin, CreateToken)                           \
  X("DELETE", "/api/v1/tokens/{name}", kAdmin, DeleteToken)                  \
  X("GET", "/api/v1/audit", kAdmin, Audit)                                   \
  X("GET", "/api/v1/sources", kViewer, ConfigCall)                           \
  X("POST", "/api/v1/sources", kEditor, ConfigCall)                          \
  X("GET", "/api/v1/sources/{name}", kViewer, ConfigCall)                    \
  X("PATCH", "/api/v1/sources/{name}", kEditor, ConfigCall)                  \
  X("DELETE", "/api/v1/sources/{name}", kEditor, ConfigCall)                 \
  X("POST", "/api/v1/sources/{name}/rotate-key", kEditor, ConfigCall)        \
  X("GET", "/api/v1/destinations", kViewer, ConfigCall)                      \
  X("POST", "/api/v1/destinations", kEditor, ConfigCall)                     \
  X("GET", "/api/v1/destinations/{name}", kViewer, ConfigCall)               \
  X("PATCH", "/api/v1/destinations/{name}", kEditor, ConfigCall)             \
  X("DELETE", "/api/v1/destinations/{name}", kEditor, ConfigCall)            \
  X("GET", "/api/v1/destinations/{name}/stats", kViewer, DestinationStats)   \
  X("GET", "/api/v1/destination-types", kViewer, ConfigCall)                 \
  X("GET", "/api/v1/config/export", kViewer, ConfigCall)                     \
  X("GET", "/api/v1/live", kViewer, Live)                                    \
  X("GET", "/api/v1/destinations/{name}/dlq", kViewer, DeadLetters)          \
  X("DELETE", "/api/v1/destinations/{name}/dlq", kEditor, DeadLetters)       \
  X("POST", "/api/v1/destinations/{name}/dlq/redrive", kEditor, DeadLetters) \
  X("GET", "/api/v1/replays", kViewer, Replays)                              \
  X("POST", "/api/v1/replays", kEditor, Replays)                             \
  X("GET", "/api/v1/replays/{id}", kViewer, Replays)                         \
  X("POST", "/api/v1/replays/{id}/cancel", kEditor, Replays)                 \
  X("POST", "/api/v1/destinations/{name}/sync", kEditor, WarehouseSync)      \
  X("GET", "/api/v1/functions", kViewer, ConfigCall)                         \
  X("GET", "/api/v1/functions/{name}", kViewer, ConfigCall)                  \
  X("PUT", "/api/v1/functions/{name}", kEditor, ConfigCall)                  \
  X("DELETE", "/api/v1/functions/{name}", kEditor, ConfigCall)               \
  X("POST", "/api/v1/functions/{name}/test", kEditor, ConfigCall)            \
  X("GET", "/api/v1/warehouse", kViewer, WarehouseStatus)                    \
  X("GET", "/api/v1/overview", kViewer, Overview)

const std::vector<AdminApi::RouteDef>& AdminApi::RouteTable() {
#define SY_ADMIN_ROUTE_DEF(m, p, need, fn) RouteDef{m, p, Need::need, &AdminApi::fn},
  static const std::vector<RouteDef> defs = {SY_ADMIN_ROUTES(SY_ADMIN_ROUTE_DEF)};
#undef SY_ADMIN_ROUTE_DEF
  return defs;
}

const std::vector<AdminRoute>& AdminRoutes() {
  static const std::vector<AdminRoute> routes = [] {
    std::vector<AdminRoute> r;
    for (const auto& d : AdminApi::RouteTable())
      r.push_back({d.method, d.path});
    return r;
  }();
  return routes;
}

AdminApi::AdminApi(AdminApiOptions options)
    : options_(std::move(options)),
      config_(options_.config),
      sessions_(options_.sessions, options_.clock),
      limiter_(options_.login_limits, options_.clock) {
  if (options_.live_feed) {
    LiveStreamsOptions lo = options_.live;
    lo.feed = options_.live_feed;
    live_ = std::make_unique<LiveStreams>(lo);
  }
  if (options_.start_worker) {
    worker_ = std::thread([this] { WorkLoop(); });
    slow_worker_ = std::thread([this] { SlowLoop(); });
  }
}

AdminApi::~AdminApi() {
  std::deque<Job> left;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    left.swap(queue_);
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  for (Job& job : left) {
    job.respond(Error(job.request, 503, "stopping", "the server is stopping"));
  }
  std::deque<SlowJob> slow_left;
  {
    std::lock_guard lock(slow_mu_);
    slow_stopping_ = true;
    slow_left.swap(slow_queue_);
  }
  slow_cv_.notify_all();
  if (slow_worker_.joinable()) slow_worker_.join();
  for (SlowJob& job : slow_left) {
    http::Request head_only{bhttp::verb::post, "", job.version};
    job.respond(Error(head_only, 503, "stopping", "the server is stopping"));
  }
  if (live_) live_->Stop();
}

void AdminApi::SlowLoop() {
  SetThreadName("sy-admin-ops");
  std::unique_lock lock(slow_mu_);
  while (true) {
    slow_cv_.wait(lock, [&] { return slow_stopping_ || !slow_queue_.empty(); });
    if (slow_stopping_) return;
    SlowJob job = std::move(slow_queue_.front());
    slow_queue_.pop_front();
    lock.unlock();
    job.respond(job.work());
    lock.lock();
  }
}

http::Response AdminApi::RunSlow(Call& call, std::function<http::Response()> work) {
  if (!call.respond || !options_.start_worker) return work();
  {
    std::lock_guard lock(slow_mu_);
    if (!slow_stopping_ && slow_queue_.size() < options_.max_queued_slow) {
      slow_queue_.push_back(SlowJob{std::move(work), *call.respond, call.req.version()});
      slow_cv_.notify_one();
      call.streamed = true;  // answered by the slow thread
      return http::Response{};
    }
  }
  auto res = Error(call.req, 503, "busy",
                   "too many slow admin operations (redrives) are waiting; retry shortly");
  res.set(bhttp::field::retry_after, "5");
  return res;
}

void AdminApi::Handle(http::Request&& request, const http::PeerInfo& peer,
                      http::Responder respond) {
  // The console's pages and assets: from memory, never queued behind the worker.
  std::string_view target = request.target();
  if (console::Console::Serves(target.substr(0, target.find('?')))) {
    return respond(console_.Handle(request));
  }
  if (!options_.start_worker) {
    bool streamed = false;
    auto res = ServeWith(request, peer, &respond, &streamed);
    if (!streamed) respond(std::move(res));
    return;
  }
  {
    std::lock_guard lock(mu_);
    if (!stopping_ && queue_.size() < options_.max_queued) {
      queue_.push_back(Job{std::move(request), peer, std::move(respond)});
      cv_.notify_one();
      return;
    }
  }
  auto res = Error(request, 503, "busy", "too many admin requests are waiting; retry shortly");
  res.set(bhttp::field::retry_after, "1");
  respond(std::move(res));
}

void AdminApi::WorkLoop() {
  SetThreadName("sy-admin");
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    bool streamed = false;
    auto res = ServeWith(job.request, job.peer, &job.respond, &streamed);
    if (!streamed) job.respond(std::move(res));
    lock.lock();
  }
}

http::Response AdminApi::Reject(unsigned status, const std::string& reason,
                                const http::Request& partial) {
  return Error(partial, status, status == 413 ? "request_too_large" : "bad_request", reason);
}

http::Response AdminApi::Serve(const http::Request& req, const http::PeerInfo& peer) {
  bool streamed = false;
  return ServeWith(req, peer, nullptr, &streamed);
}

http::Response AdminApi::ServeWith(const http::Request& req, const http::PeerInfo& peer,
                                   const http::Responder* respond, bool* streamed) {
  std::string_view target = req.target();
  size_t q = target.find('?');
  Call call(req, peer, target.substr(0, q),
            q == std::string_view::npos ? std::string_view() : target.substr(q + 1));
  call.respond = respond;
  struct SetStreamed {
    Call& call;
    bool* out;
    ~SetStreamed() { *out = call.streamed; }
  } set_streamed{call, streamed};
  if (console::Console::Serves(call.path)) return console_.Handle(req);
  // Find the route: 404 when no template matches the path, 405 (with Allow) when one does but
  // not for this method.
  const RouteDef* route = nullptr;
  std::set<std::string_view> allow;
  for (const RouteDef& d : RouteTable()) {
    std::vector<std::string> params;
    if (!Matches(d.path, call.path, &params)) continue;
    allow.insert(d.method);
    if (d.method == std::string_view(req.method_string())) {
      route = &d;
      call.pattern = d.path;
      call.params = std::move(params);
    }
  }
  if (!route) {
    if (allow.empty()) return Error(req, 404, "not_found", "no such route");
    std::string methods;
    for (std::string_view m : allow)
      methods += (methods.empty() ? "" : ", ") + std::string(m);
    auto res = Error(req, 405, "method_not_allowed", "allowed: " + methods);
    res.set(bhttp::field::allow, methods);
    return res;
  }
  if (route->need == Need::kNothing) return (this->*route->serve)(call);

  // Authenticate: a bearer token, else the session cookie. A token that does not match is
  // refused outright (no fall-back to the cookie).
  std::string_view auth = req[bhttp::field::authorization];
  constexpr std::string_view kBearer = "Bearer ";
  if (!auth.empty()) {
    if (auth.size() <= kBearer.size() ||
        !boost::beast::iequals(auth.substr(0, kBearer.size()), kBearer)) {
      return Error(req, 401, "unauthenticated", "expected 'Authorization: Bearer <token>'");
    }
    std::optional<ApiToken> token = options_.credentials->FindToken(auth.substr(kBearer.size()));
    if (!token) {
      auto res = Error(req, 401, "unauthenticated", "unknown or revoked token");
      res.set(bhttp::field::www_authenticate, "Bearer");
      return res;
    }
    call.actor = {"token:" + token->name, std::string(RoleName(token->role))};
    call.role = token->role;
  } else {
    std::string_view cookie = CookieValue(req[bhttp::field::cookie], kSessionCookie);
    std::optional<BrowserSession> session;
    if (!cookie.empty()) session = sessions_.Use(cookie);
    if (!session) {
      auto res = Error(req, 401, "unauthenticated",
                       cookie.empty() ? "log in (POST /api/v1/login) or send a bearer token"
                                      : "the session has ended; log in again");
      res.set(bhttp::field::www_authenticate, "Bearer");
      return res;
    }
    // The user must still exist with the password the session was opened with; the role is
    // the user's current one.
    std::optional<User> user = options_.credentials->FindUser(session->user, session->user_epoch);
    if (!user) {
      sessions_.Close(cookie);
      return Error(req, 401, "unauthenticated", "the session has ended; log in again");
    }
    call.by_session = true;
    call.cookie = std::string(cookie);
    call.session = *session;
    call.actor = {user->name, std::string(RoleName(user->role))};
    call.role = user->role;
    // CSRF: a cookie rides along with any request the browser makes, so every mutation made
    // with one must prove it comes from our pages by echoing the session's token.
    if (IsMutating(req.method()) && !ConstantTimeEquals(req["X-CSRF-Token"], session->csrf_token)) {
      return Error(req, 403, "csrf_token_invalid",
                   "send the session's CSRF token (from login or GET /api/v1/session) in "
                   "X-CSRF-Token");
    }
  }
  if (!Allows(call.role, route->need)) {
    return Error(req, 403, "forbidden",
                 "role '" + call.actor.role + "' may not " + std::string(req.method_string()) +
                     " " + std::string(route->path) + " (needs " +
                     std::string(NeedText(route->need)) + ")");
  }
  return (this->*route->serve)(call);
}

bool AdminApi::Record(Call& call, const AuditEntry& entry, http::Response* res) {
  return RecordAs(call.actor, call.peer.ip, call.req, entry, res);
}

bool AdminApi::RecordAs(const Actor& actor, const std::string& client, const http::Request& req,
                        const AuditEntry& entry, http::Response* res) {
  AuditEntry e = entry;
  if (e.actor.empty()) e.actor = actor.name;
  if (e.role.empty()) e.role = actor.role;
  e.client = client;
  e.status = static_cast<int>(res->result_int());
  Status s = options_.audit->Append(e);
  if (s.ok()) return true;
  Logger()->error("audit append failed action={} status={}", e.action, s.ToString());
  *res = Error(req, 500, "audit_failed",
               "the change was made but could not be written to the audit log; see the server "
               "log");
  return false;
}

void AdminApi::SetConfigApi(ConfigApi* config) {
  config_.store(config);
}

http::Response AdminApi::OpenApi(Call& call) {
  return JsonResponse(call.req, 200, std::string(OpenApiDocument()));
}

http::Response AdminApi::Login(Call& call) {
  const http::Request& req = call.req;
  json::object body;
  http::Response error;
  if (!ParseObject(req, req.body(), {"user", "password"}, &body, &error)) return error;
  std::string user, password;
  bool present = false;
  if (!StringField(req, body, "user", true, &user, &present, &error) ||
      !StringField(req, body, "password", true, &password, &present, &error)) {
    return error;
  }
  if (int64_t wait = limiter_.RetryAfterMs(user, call.peer.ip); wait > 0) {
    auto res = Error(req, 429, "too_many_attempts",
                     "too many failed logins for this user or address; retry later");
    res.set(bhttp::field::retry_after, std::to_string((wait + 999) / 1000));
    return res;
  }
  Result<User> found = options_.credentials->CheckPassword(user, password);
  if (!found.ok()) {
    limiter_.RecordFailure(user, call.peer.ip);
    auto res = Error(req, 401, "bad_credentials", "wrong user name or password");
    // The name as typed, cut: a failed login's name is the client's text.
    Record(call, {CutUtf8(user, 128), "", "login.failed", "", "", 0, "", ""}, &res);
    return res;
  }
  limiter_.RecordSuccess(user);
  BrowserSession session;
  std::string cookie = sessions_.Open(found->name, found->epoch, &session);
  json::object out{{"user", found->name},
                   {"role", RoleName(found->role)},
                   {"permissions", Permissions(found->role)},
                   {"csrf_token", session.csrf_token}};
  auto res = JsonResponse(req, 200, json::serialize(out));
  res.set(bhttp::field::set_cookie, std::string(kSessionCookie) + "=" + cookie +
                                        "; HttpOnly; SameSite=Strict; Path=/" +
                                        (options_.secure_cookie ? "; Secure" : ""));
  call.actor = {found->name, std::string(RoleName(found->role))};
  if (!Record(call, {"", "", "login", found->name, "", 0, "", ""}, &res)) {
    sessions_.Close(cookie);
  }
  return res;
}

http::Response AdminApi::Logout(Call& call) {
  if (!call.by_session)
    return Error(call.req, 400, "not_a_session",
                 "logout ends a browser session; tokens are "
                 "revoked with DELETE /api/v1/tokens/{name}");
  sessions_.Close(call.cookie);
  auto res = JsonResponse(call.req, 204, "");
  res.set(bhttp::field::set_cookie, std::string(kSessionCookie) +
                                        "=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0" +
                                        (options_.secure_cookie ? "; Secure" : ""));
  Record(call, {"", "", "logout", call.actor.name, "", 0, "", ""}, &res);
  return res;
}

http::Response AdminApi::SessionInfo(Call& call) {
  json::object out{{"user", call.actor.name},
                   {"role", call.actor.role},
                   {"auth", call.by_session ? "session" : "token"},
                   {"permissions", Permissions(call.role)}};
  if (call.by_session) out["csrf_token"] = call.session.csrf_token;
  return JsonResponse(call.req, 200, json::serialize(out));
}

http::Response AdminApi::ListUsers(Call& call) {
  auto users = options_.credentials->Users();
  if (!users.ok()) return StatusError(call.req, users.status());
  json::array list;
  for (const User& u : *users) {
    list.push_back(json::object{
        {"name", u.name}, {"role", RoleName(u.role)}, {"created", FormatIso8601(u.created)}});
  }
  return JsonResponse(call.req, 200, json::serialize(json::object{{"users", std::move(list)}}));
}

http::Response AdminApi::CreateUser(Call& call) {
  const http::Request& req = call.req;
  json::object body;
  http::Response error;
  if (!ParseObject(req, req.body(), {"name", "role", "password"}, &body, &error)) return error;
  std::string name, password;
  bool present = false;
  std::optional<Role> role;
  if (!StringField(req, body, "name", true, &name, &present, &error) ||
      !RoleField(req, body, true, &role, &error) ||
      !StringField(req, body, "password", true, &password, &present, &error)) {
    return error;
  }
  if (Status s = options_.credentials->AddUser(name, *role, password); !s.ok())
    return StatusError(req, s);
  auto res = JsonResponse(req, 201, AccountJson(name, *role));
  Record(call, {"", "", "user.add", name, "", 0, "", AccountJson(name, *role)}, &res);
  return res;
}

http::Response AdminApi::UpdateUser(Call& call) {
  const http::Request& req = call.req;
  const std::string& name = call.params[0];
  json::object body;
  http::Response error;
  if (!ParseObject(req, req.body(), {"role", "password"}, &body, &error)) return error;
  std::optional<Role> role;
  std::string password;
  bool has_password = false;
  if (!RoleField(req, body, false, &role, &error) ||
      !StringField(req, body, "password", false, &password, &has_password, &error)) {
    return error;
  }
  auto users = options_.credentials->Users();
  if (!users.ok()) return StatusError(req, users.status());
  std::string before;
  for (const User& u : *users)
    if (u.name == name) before = AccountJson(u.name, u.role);
  std::optional<std::string_view> new_password;
  if (has_password) new_password = password;
  if (Status s = options_.credentials->UpdateUser(name, role, new_password); !s.ok())
    return StatusError(req, s);
  if (has_password) sessions_.CloseAllOf(name);
  auto after = options_.credentials->Users();
  std::string after_json;
  if (after.ok())
    for (const User& u : *after)
      if (u.name == name) after_json = AccountJson(u.name, u.role);
  auto res = JsonResponse(req, 200, after_json);
  Record(call,
         {"", "", has_password ? "user.update_password" : "user.update", name, "", 0, before,
          after_json},
         &res);
  return res;
}

http::Response AdminApi::DeleteUser(Call& call) {
  const std::string& name = call.params[0];
  auto users = options_.credentials->Users();
  if (!users.ok()) return StatusError(call.req, users.status());
  std::string before;
  for (const User& u : *users)
    if (u.name == name) before = AccountJson(u.name, u.role);
  if (Status s = options_.credentials->RemoveUser(name); !s.ok()) return StatusError(call.req, s);
  sessions_.CloseAllOf(name);
  auto res = JsonResponse(call.req, 204, "");
  Record(call, {"", "", "user.remove", name, "", 0, before, ""}, &res);
  return res;
}

http::Response AdminApi::ListTokens(Call& call) {
  auto tokens = options_.credentials->Tokens();
  if (!tokens.ok()) return StatusError(call.req, tokens.status());
  json::array list;
  for (const ApiToken& t : *tokens) {
    list.push_back(json::object{
        {"name", t.name}, {"role", RoleName(t.role)}, {"created", FormatIso8601(t.created)}});
  }
  return JsonResponse(call.req, 200, json::serialize(json::object{{"tokens", std::move(list)}}));
}

http::Response AdminApi::CreateToken(Call& call) {
  const http::Request& req = call.req;
  json::object body;
  http::Response error;
  if (!ParseObject(req, req.body(), {"name", "role"}, &body, &error)) return error;
  std::string name;
  bool present = false;
  std::optional<Role> role;
  if (!StringField(req, body, "name", true, &name, &present, &error) ||
      !RoleField(req, body, true, &role, &error)) {
    return error;
  }
  auto token = options_.credentials->CreateToken(name, *role);
  if (!token.ok()) return StatusError(req, token.status());
  auto res = JsonResponse(
      req, 201,
      json::serialize(json::object{{"name", name}, {"role", RoleName(*role)}, {"token", *token}}));
  Record(call, {"", "", "token.create", name, "", 0, "", AccountJson(name, *role)}, &res);
  return res;
}

http::Response AdminApi::DeleteToken(Call& call) {
  const std::string& name = call.params[0];
  auto tokens = options_.credentials->Tokens();
  if (!tokens.ok()) return StatusError(call.req, tokens.status());
  std::string before;
  for (const ApiToken& t : *tokens)
    if (t.name == name) before = AccountJson(t.name, t.role);
  if (Status s = options_.credentials->RevokeToken(name); !s.ok()) return StatusError(call.req, s);
  auto res = JsonResponse(call.req, 204, "");
  Record(call, {"", "", "token.revoke", name, "", 0, before, ""}, &res);
  return res;
}

http::Response AdminApi::Audit(Call& call) {
  auto number = [&](std::string_view name, uint64_t fallback, uint64_t* out) {
    std::string_view text = QueryParam(call.query, name);
    if (text.empty()) {
      *out = fallback;
      return true;
    }
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
    return ec == std::errc() && end == text.data() + text.size();
  };
  uint64_t limit = 0, before = 0;
  if (!number("limit", 100, &limit) || limit < 1 || limit > 1000)
    return Error(call.req, 400, "invalid_value", "limit: expected 1 to 1000", "limit");
  if (!number("before", 0, &before))
    return Error(call.req, 400, "invalid_value", "before: expected an entry id", "before");
  auto page = options_.audit->Page(limit, before);
  if (!page.ok()) return StatusError(call.req, page.status());
  return JsonResponse(call.req, 200, std::move(*page));
}

http::Response AdminApi::DestinationStats(Call& call) {
  const http::Request& req = call.req;
  if (options_.delivery_stats == nullptr)
    return Error(req, 503, "stats_unavailable", "delivery figures are not kept by this server");
  // ?window=<duration>, whole minutes from 1m to 6h (what DeliveryStats keeps); default 1h.
  int64_t window_ms = 3600'000;
  if (std::string_view text = QueryParam(call.query, "window"); !text.empty()) {
    std::optional<int64_t> parsed = ParseDurationMs(text);
    if (!parsed || *parsed < 60'000 ||
        *parsed > int64_t{observe::DeliveryStats::kKeepMinutes} * 60'000 || *parsed % 60'000) {
      return Error(req, 400, "invalid_value",
                   "window: expected whole minutes from 1m to 6h, e.g. 15m or 1h", "window");
    }
    window_ms = *parsed;
  }
  std::shared_ptr<observe::DeliveryStats> stats = options_.delivery_stats->Find(call.params[0]);
  if (!stats) {
    return Error(req, 404, "not_found",
                 "no delivery figures for destination '" + call.params[0] +
                     "': no such destination, or it has not run since the server started");
  }
  const int64_t now_ms = options_.clock->Now().value();
  std::string body =
      observe::StatsJson(stats->Snapshot(now_ms, static_cast<int>(window_ms / 60'000)));
  uint64_t events = 0;
  double seconds = 0;
  json::value backlog = nullptr;
  if (options_.backlog && options_.backlog(call.params[0], &events, &seconds))
    backlog = json::object{{"events", events}, {"seconds", seconds}};
  body.pop_back();  // the object's '}'
  body += ",\"backlog\":" + json::serialize(backlog) + "}";
  return JsonResponse(req, 200, std::move(body));
}

http::Response AdminApi::Live(Call& call) {
  const http::Request& req = call.req;
  if (!live_)
    return Error(req, 503, "live_unavailable", "the live view is not available on this server");
  std::string_view source = QueryParam(call.query, "source");
  std::string_view destination = QueryParam(call.query, "destination");
  if (source.empty() == destination.empty()) {
    return Error(req, 400, "invalid_value",
                 "give exactly one of ?source=NAME and ?destination=NAME",
                 source.empty() ? "source" : "destination");
  }
  const bool is_source = !source.empty();
  const std::string name(is_source ? source : destination);
  // Names are [A-Za-z0-9_-] (config): anything else, percent-escapes included, names nothing.
  if (name.size() > 64 || name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
                                                 "VWXYZ0123456789_-") != std::string::npos) {
    return Error(req, 400, "invalid_value", "expected a source or destination name",
                 is_source ? "source" : "destination");
  }
  if (ConfigApi* api = config_.load()) {
    ApiResult found = is_source ? api->GetSource(name) : api->GetDestination(name);
    if (found.http_status == 404) {
      return Error(req, 404, "not_found",
                   std::string(is_source ? "no source '" : "no destination '") + name + "'");
    }
  }
  http::Response head{bhttp::status::ok, req.version() ? req.version() : 11u};
  head.set(bhttp::field::content_type, "text/event-stream");
  head.set(bhttp::field::cache_control, "no-store");
  head.set("X-Content-Type-Options", "nosniff");
  // Proxies that buffer (nginx) would hold the events back.
  head.set("X-Accel-Buffering", "no");
  if (!call.respond) return head;
  switch (live_->Open(is_source ? observe::TopicKind::kSource : observe::TopicKind::kDestination,
                      name, CanViewPayloads(call.role), head, *call.respond)) {
    case LiveStreams::OpenResult::kStarted:
    case LiveStreams::OpenResult::kNotStreamable:  // the head went out whole
      call.streamed = true;
      return head;
    case LiveStreams::OpenResult::kFull:
      break;
  }
  auto res = Error(req, 503, "too_many_streams",
                   "the most live views this server keeps open (admin.max_live_streams) are open; "
                   "retry later");
  res.set(bhttp::field::retry_after, "5");
  return res;
}

http::Response AdminApi::DeadLetters(Call& call) {
  const http::Request& req = call.req;
  DeadLetterApi* api = options_.dead_letters;
  if (api == nullptr)
    return Error(req, 503, "dlq_unavailable", "dead letters are not available on this server");
  const std::string name = call.params[0];
  if (req.method() == bhttp::verb::get) {
    uint64_t limit = 100;
    if (std::string_view text = QueryParam(call.query, "limit"); !text.empty()) {
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
      if (ec != std::errc() || end != text.data() + text.size() || limit < 1 || limit > 1000)
        return Error(req, 400, "invalid_value", "limit: expected 1 to 1000", "limit");
    }
    ApiResult r = api->ListDeadLetters(name, limit, QueryParam(call.query, "after"),
                                       CanViewPayloads(call.role));
    return JsonResponse(req, static_cast<unsigned>(r.http_status), std::move(r.body));
  }
  const bool purge = req.method() == bhttp::verb::delete_;
  std::string_view text = req.body();
  // A redrive of everything may be sent without a body; a purge must name its letters.
  if (!purge && text.find_first_not_of(" \t\r\n") == std::string_view::npos) text = "{}";
  json::object body;
  http::Response error;
  if (!ParseObject(req, text, {"ids"}, &body, &error)) return error;
  std::optional<std::vector<std::string>> ids;
  if (auto it = body.find("ids"); it != body.end()) {
    if (!it->value().is_array())
      return Error(req, 400, "invalid_type", "'ids' must be an array of strings", "ids");
    const json::array& list = it->value().as_array();
    if (list.size() > kMaxDeadLetterIds)
      return Error(req, 400, "invalid_value",
                   "ids: at most " + std::to_string(kMaxDeadLetterIds) + " per request", "ids");
    ids.emplace();
    for (const json::value& v : list) {
      if (!v.is_string())
        return Error(req, 400, "invalid_type", "'ids' must be an array of strings", "ids");
      ids->emplace_back(v.as_string());
    }
  }
  if (purge && (!ids || ids->empty()))
    return Error(req, 400, "missing_key", "'ids' is required: the letters to purge", "ids");
  // The audit entry names the letters (or "all") before, and the result after.
  json::value selection = ids ? json::value(json::array(ids->begin(), ids->end())) : "all";
  std::string selection_json = json::serialize(json::object{{"ids", selection}});
  auto work = [this, api, purge, name, ids = std::move(ids), actor = call.actor,
               client = call.peer.ip, version = req.version(), method = req.method(),
               selection_json = std::move(selection_json)]() {
    ApiResult r = purge ? api->PurgeDeadLetters(actor, name, *ids)
                        : api->RedriveDeadLetters(actor, name, ids ? &*ids : nullptr);
    http::Request head_only{method, "", version};
    auto res = JsonResponse(head_only, static_cast<unsigned>(r.http_status), r.body);
    if (r.http_status >= 200 && r.http_status < 300) {
      RecordAs(actor, client, head_only,
               {"", "", purge ? "dlq.purge" : "dlq.redrive", name, "", 0, selection_json, r.body},
               &res);
    }
    return res;
  };
  return purge ? work() : RunSlow(call, std::move(work));
}

http::Response AdminApi::Replays(Call& call) {
  const http::Request& req = call.req;
  ReplayApi* api = options_.replays;
  if (api == nullptr)
    return Error(req, 503, "replay_unavailable", "replays are not available on this server");
  const bool get = req.method() == bhttp::verb::get;
  ApiResult r;
  std::string action, target, audit_before;
  if (call.pattern == "/api/v1/replays" && get) {
    r = api->ListReplays();
  } else if (call.pattern == "/api/v1/replays/{id}") {
    r = api->GetReplay(call.params[0]);
  } else if (call.pattern == "/api/v1/replays/{id}/cancel") {
    r = api->CancelReplay(call.actor, call.params[0]);
    action = "replay.cancel";
    target = call.params[0];
  } else {
    json::object body;
    http::Response error;
    if (!ParseObject(req, req.body(), {"destination", "source", "from", "to", "rate"}, &body,
                     &error))
      return error;
    ReplayRequest rr;
    bool present = false;
    std::string from, to;
    if (!StringField(req, body, "destination", true, &rr.destination, &present, &error) ||
        !StringField(req, body, "source", false, &rr.source, &present, &error) ||
        !StringField(req, body, "from", false, &from, &present, &error) ||
        !StringField(req, body, "to", false, &to, &present, &error))
      return error;
    for (auto [key, text, out] :
         {std::tuple{"from", &from, &rr.from_ms}, std::tuple{"to", &to, &rr.to_ms}}) {
      if (text->empty()) continue;
      std::optional<TimestampMs> t = ParseIso8601(*text);
      if (!t)
        return Error(req, 400, "invalid_value",
                     std::string(key) + ": expected an ISO-8601 time such as 2026-12-01T00:00:00Z",
                     key);
      *out = t->value();
    }
    if (rr.from_ms && rr.to_ms && *rr.from_ms >= *rr.to_ms)
      return Error(req, 400, "invalid_value", "to: must be after from", "to");
    if (auto it = body.find("rate"); it != body.end()) {
      if (!it->value().is_int64() && !it->value().is_uint64())
        return Error(req, 400, "invalid_type", "'rate' must be an integer", "rate");
      const json::value& v = it->value();
      if ((v.is_int64() && (v.as_int64() < 0 || v.as_int64() > 10'000'000)) ||
          (v.is_uint64() && v.as_uint64() > 10'000'000))
        return Error(req, 400, "invalid_value", "rate: expected 0 to 10000000 events per second",
                     "rate");
      rr.rate = v.is_int64() ? v.as_int64() : static_cast<int64_t>(v.as_uint64());
    }
    r = api->StartReplay(call.actor, rr);
    action = "replay.start";
    target = CutUtf8(rr.destination, 128);
    audit_before = json::serialize(body);
  }
  auto res = JsonResponse(req, static_cast<unsigned>(r.http_status), std::move(r.body));
  if (!action.empty() && r.http_status >= 200 && r.http_status < 300)
    Record(call, {"", "", action, target, "", 0, audit_before, res.body()}, &res);
  return res;
}

http::Response AdminApi::WarehouseStatus(Call& call) {
  const http::Request& req = call.req;
  if (options_.warehouse == nullptr) {
    return Error(req, 503, "warehouse_unavailable",
                 "warehouse figures are not available on this server");
  }
  ApiResult r = options_.warehouse->Warehouses(QueryParam(call.query, "destination"));
  return JsonResponse(req, static_cast<unsigned>(r.http_status), std::move(r.body));
}

http::Response AdminApi::Overview(Call& call) {
  const http::Request& req = call.req;
  if (options_.overview == nullptr || options_.ingest_stats == nullptr) {
    return Error(req, 503, "overview_unavailable", "the overview is not kept by this server");
  }
  // The figures of the last hour, a minute at a time (the console's chart).
  constexpr int kMinutes = 60;
  const int64_t now_ms = options_.clock->Now().value();
  OverviewFacts facts = options_.overview->Facts();
  std::vector<observe::IngestStats::Minute> in = options_.ingest_stats->Minutes(now_ms, kMinutes);
  std::vector<uint64_t> out(in.size(), 0);
  uint64_t in_total = 0, out_total = 0;
  for (const auto& m : in)
    in_total += m.stored;

  json::array destinations;
  for (const OverviewFacts::Destination& d : facts.destinations) {
    json::object o{
        {"name", d.name}, {"type", d.type}, {"enabled", d.enabled}, {"running", d.running}};
    // healthy: running and neither failing nor refused; a disabled destination is neither.
    std::string_view state = !d.enabled              ? "disabled"
                             : !d.running            ? "stopped"
                             : d.credentials_refused ? "credentials_refused"
                             : d.failing             ? "failing"
                                                     : "ok";
    o["state"] = state;
    o["healthy"] = state == "ok";
    o["reason"] = d.reason.empty() ? json::value(nullptr) : json::value(d.reason);
    o["backlog_events"] = d.backlog_known ? json::value(d.backlog_events) : json::value(nullptr);
    o["backlog_seconds"] = d.backlog_known ? json::value(d.backlog_seconds) : json::value(nullptr);
    uint64_t delivered = 0, failed = 0;
    if (options_.delivery_stats) {
      if (auto stats = options_.delivery_stats->Find(d.name)) {
        observe::DeliveryStats::Window w = stats->Snapshot(now_ms, kMinutes);
        for (size_t i = 0; i < w.minutes.size() && i < out.size(); ++i)
          out[i] += w.minutes[i].delivered;
        delivered = w.total.delivered;
        failed = w.total.failed + w.total.dead_lettered;
      }
    }
    out_total += delivered;
    o["delivered_last_hour"] = delivered;
    o["dead_lettered_last_hour"] = failed;
    destinations.push_back(std::move(o));
  }
  json::array minutes;
  for (size_t i = 0; i < in.size(); ++i) {
    minutes.push_back(json::object{{"start", FormatIso8601(TimestampMs(in[i].start_ms))},
                                   {"in", in[i].stored},
                                   {"out", out[i]}});
  }
  json::array sources;
  for (const OverviewFacts::Source& src : facts.sources) {
    json::object o{{"name", src.name}, {"enabled", src.enabled}};
    std::optional<observe::IngestStats::SourceFigures> f = options_.ingest_stats->Source(src.name);
    o["last_event"] =
        f ? json::value(FormatIso8601(TimestampMs(f->last_stored_ms))) : json::value(nullptr);
    o["events_since_start"] = f ? f->stored : 0;
    sources.push_back(std::move(o));
  }
  auto dir = [](const observe::DiskUsage::Figure& f) {
    return json::object{{"bytes", f.bytes},
                        {"files", f.files},
                        {"complete", f.complete},
                        {"measured", FormatIso8601(TimestampMs(f.measured_ms))}};
  };
  json::object disk{{"log", dir(facts.log)}, {"dlq", dir(facts.dlq)}};
  disk["data_dir_free_bytes"] =
      facts.data_dir_free_bytes ? json::value(*facts.data_dir_free_bytes) : json::value(nullptr);
  json::object archive{{"enabled", !facts.archive_store.empty()}};
  archive["store"] =
      facts.archive_store.empty() ? json::value(nullptr) : json::value(facts.archive_store);
  archive["local"] = facts.archive_local ? json::value(dir(*facts.archive_local)) : nullptr;
  json::object body{{"now", FormatIso8601(TimestampMs(now_ms))},
                    {"minutes", std::move(minutes)},
                    {"totals", json::object{{"in", in_total}, {"out", out_total}}},
                    {"sources", std::move(sources)},
                    {"destinations", std::move(destinations)},
                    {"disk", std::move(disk)},
                    {"archive", std::move(archive)}};
  return JsonResponse(req, 200, json::serialize(body));
}

http::Response AdminApi::WarehouseSync(Call& call) {
  const http::Request& req = call.req;
  WarehouseApi* api = options_.warehouse;
  if (api == nullptr) {
    return Error(req, 503, "warehouse_unavailable",
                 "warehouse loads are not available on this server");
  }
  // No options yet: an empty body, or an empty object.
  if (std::string_view text = req.body();
      text.find_first_not_of(" \t\r\n") != std::string_view::npos) {
    json::object o;
    http::Response error;
    if (!ParseObject(req, text, {}, &o, &error)) return error;
  }
  auto work = [this, api, name = call.params[0], actor = call.actor, client = call.peer.ip,
               version = req.version()]() {
    ApiResult r = api->SyncWarehouse(actor, name);
    http::Request head_only{bhttp::verb::post, "", version};
    auto res = JsonResponse(head_only, static_cast<unsigned>(r.http_status), r.body);
    if (r.http_status >= 200 && r.http_status < 300)
      RecordAs(actor, client, head_only, {"", "", "warehouse.sync", name, "", 0, "", r.body}, &res);
    return res;
  };
  return RunSlow(call, std::move(work));
}

http::Response AdminApi::ConfigCall(Call& call) {
  const http::Request& req = call.req;
  ConfigApi* api = config_.load();
  if (api == nullptr) {
    auto res = Error(req, 503, "config_unavailable",
                     "configuration changes are not available on this server yet");
    return res;
  }
  const bhttp::verb method = req.method();
  const std::string_view p = call.pattern;
  const std::string name = call.params.empty() ? std::string() : call.params[0];
  const std::string_view body = req.body();
  // Bodies of creates and patches must be JSON objects; the ConfigApi checks their keys.
  if (method == bhttp::verb::post || method == bhttp::verb::patch || method == bhttp::verb::put) {
    if (p != "/api/v1/sources/{name}/rotate-key") {
      boost::system::error_code ec;
      json::value v = json::parse(body, ec);
      if (ec) return Error(req, 400, "bad_json", "the body is not valid JSON: " + ec.message());
      if (!v.is_object()) return Error(req, 400, "bad_json", "the body must be a JSON object");
    }
  }
  const std::string if_match(Unquote(req[bhttp::field::if_match]));
  ApiResult r;
  std::string action;
  std::string target = name;
  if (p == "/api/v1/sources") {
    if (method == bhttp::verb::get) {
      r = api->ListSources();
    } else {
      r = api->CreateSource(call.actor, body);
      action = "source.create";
    }
  } else if (p == "/api/v1/sources/{name}") {
    if (method == bhttp::verb::get) {
      r = api->GetSource(name);
    } else if (method == bhttp::verb::patch) {
      r = api->PatchSource(call.actor, name, body, if_match);
      action = "source.patch";
    } else {
      r = api->DeleteSource(call.actor, name);
      action = "source.delete";
    }
  } else if (p == "/api/v1/sources/{name}/rotate-key") {
    // An optional body {"grace": "<duration>"} sets how long the old key keeps working (0s: it
    // stops at once); without one the ConfigApi's default applies (24 h).
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
      r = api->RotateSourceKey(call.actor, name);
    } else {
      json::object o;
      http::Response error;
      if (!ParseObject(req, body, {"grace"}, &o, &error)) return error;
      std::string grace;
      bool present = false;
      if (!StringField(req, o, "grace", true, &grace, &present, &error)) return error;
      std::optional<int64_t> grace_ms = ParseDurationMs(grace);
      if (!grace_ms || *grace_ms < 0)
        return Error(req, 400, "invalid_value", "grace: expected a duration such as 0s or 24h",
                     "grace");
      r = api->RotateSourceKeyWithGrace(call.actor, name, *grace_ms);
    }
    action = "source.rotate_key";
  } else if (p == "/api/v1/destinations") {
    if (method == bhttp::verb::get) {
      r = api->ListDestinations();
    } else {
      r = api->CreateDestination(call.actor, body);
      action = "destination.create";
    }
  } else if (p == "/api/v1/destinations/{name}") {
    if (method == bhttp::verb::get) {
      r = api->GetDestination(name);
    } else if (method == bhttp::verb::patch) {
      r = api->PatchDestination(call.actor, name, body, if_match);
      action = "destination.patch";
    } else {
      r = api->DeleteDestination(call.actor, name);
      action = "destination.delete";
    }
  } else if (p == "/api/v1/destination-types") {
    r = api->ListDestinationTypes();
  } else if (p == "/api/v1/functions") {
    r = api->ListFunctions();
  } else if (p == "/api/v1/functions/{name}") {
    if (method == bhttp::verb::get) {
      r = api->GetFunction(name);
    } else if (method == bhttp::verb::put) {
      r = api->PutFunction(call.actor, name, body, if_match);
      action = "function.put";
    } else {
      r = api->DeleteFunction(call.actor, name);
      action = "function.delete";
    }
  } else if (p == "/api/v1/functions/{name}/test") {
    r = api->TestFunction(call.actor, name, body);
    action = "function.test";
  } else {
    r = api->ExportYaml();
  }
  auto res =
      JsonResponse(req, static_cast<unsigned>(r.http_status), std::move(r.body), r.content_type);
  if (!r.etag.empty()) res.set(bhttp::field::etag, QuoteEtag(r.etag));
  if (!action.empty() && r.http_status >= 200 && r.http_status < 300) {
    if (target.empty()) {
      // A create names its object in the body.
      boost::system::error_code ec;
      json::value v = json::parse(body, ec);
      if (!ec && v.is_object()) {
        auto it = v.as_object().find("name");
        if (it != v.as_object().end() && it->value().is_string())
          target = CutUtf8(it->value().as_string(), 128);
      }
    }
    Record(call, {"", "", action, target, "", 0, r.audit_before, r.audit_after}, &res);
  }
  return res;
}

}  // namespace sy::admin
