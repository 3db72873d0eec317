// The admin API: credentials, sessions, login limits, audit log, and every route for every role
// (through AdminApi::Serve with a fake ConfigApi, and a few through a real listener).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "admin/admin_api.h"
#include "admin/audit_log.h"
#include "admin/credentials.h"
#include "admin/sessions.h"
#include "base/clock.h"
#include "base/data_dir.h"
#include "base/env.h"
#include "base/fault_injection_env.h"

namespace sy::admin {
namespace {

namespace json = boost::json;
namespace bhttp = http::bhttp;
using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("sy-admin-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string str() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::unique_ptr<CredentialStore> OpenStore(const std::string& root, Clock* clock) {
  CredentialStoreOptions o;
  o.data_dir = DataDir(root);
  o.clock = clock;
  o.cost = PasswordCost::Minimum();
  auto s = CredentialStore::Open(o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

// ---------------------------------------------------------------- credentials

TEST(Credentials, UsersAreStoredAsArgon2idHashesAndChecked) {
  TempDir dir;
  FakeClock clock;
  auto store = OpenStore(dir.str(), &clock);
  ASSERT_TRUE(store->AddUser("alice", Role::kAdmin, "correct horse").ok());
  EXPECT_EQ(store->AddUser("alice", Role::kViewer, "another one").code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store->AddUser("bad name", Role::kViewer, "long enough").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store->AddUser("bob", Role::kViewer, "short").code(), StatusCode::kInvalidArgument);
  auto ok = store->CheckPassword("alice", "correct horse");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->role, Role::kAdmin);
  EXPECT_EQ(store->CheckPassword("alice", "wrong horse").status().code(),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(store->CheckPassword("nobody", "correct horse").status().code(),
            StatusCode::kUnauthenticated);
  const std::string file = ReadAll(DataDir(dir.str()).AdminCredentials());
  EXPECT_EQ(file.find("correct horse"), std::string::npos);
  EXPECT_NE(file.find("$argon2id$"), std::string::npos);
  EXPECT_EQ(std::filesystem::status(DataDir(dir.str()).AdminCredentials()).permissions() &
                std::filesystem::perms::others_read,
            std::filesystem::perms::none);
}

TEST(Credentials, TheLastAdminCannotBeRemovedOrDemoted) {
  TempDir dir;
  FakeClock clock;
  auto store = OpenStore(dir.str(), &clock);
  ASSERT_TRUE(store->AddUser("alice", Role::kAdmin, "password1").ok());
  EXPECT_EQ(store->RemoveUser("alice").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->UpdateUser("alice", Role::kViewer, std::nullopt).code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store->AddUser("carol", Role::kAdmin, "password2").ok());
  EXPECT_TRUE(store->RemoveUser("alice").ok());
  EXPECT_EQ(store->RemoveUser("alice").code(), StatusCode::kNotFound);
}

TEST(Credentials, TokensAreShownOnceAndStoredAsDigests) {
  TempDir dir;
  FakeClock clock;
  auto store = OpenStore(dir.str(), &clock);
  auto token = store->CreateToken("ci", Role::kEditor);
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->size(), 3u + 64u);
  EXPECT_EQ(token->rfind("sy_", 0), 0u);
  EXPECT_EQ(ReadAll(DataDir(dir.str()).AdminCredentials()).find(*token), std::string::npos);
  auto found = store->FindToken(*token);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->name, "ci");
  EXPECT_EQ(found->role, Role::kEditor);
  std::string wrong = *token;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_FALSE(store->FindToken(wrong).has_value());
  EXPECT_EQ(store->CreateToken("ci", Role::kViewer).status().code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(store->RevokeToken("ci").ok());
  EXPECT_FALSE(store->FindToken(*token).has_value());
}

// The CLI is another process with its own store on the same data_dir: the server's store sees
// its changes without a restart.
TEST(Credentials, ChangesByAnotherStoreOnTheSameDataDirAreSeen) {
  TempDir dir;
  FakeClock clock;
  auto server = OpenStore(dir.str(), &clock);
  auto cli = OpenStore(dir.str(), &clock);
  ASSERT_TRUE(cli->AddUser("alice", Role::kAdmin, "password1").ok());
  ASSERT_TRUE(cli->AddUser("bob", Role::kViewer, "password2").ok());
  auto bob = server->CheckPassword("bob", "password2");
  ASSERT_TRUE(bob.ok());
  ASSERT_TRUE(server->FindUser("bob", bob->epoch).has_value());
  ASSERT_TRUE(cli->RemoveUser("bob").ok());
  EXPECT_FALSE(server->FindUser("bob", bob->epoch).has_value());
  auto token = cli->CreateToken("t", Role::kViewer);
  ASSERT_TRUE(token.ok());
  EXPECT_TRUE(server->FindToken(*token).has_value());
  // Both add at once: neither change is lost (the admin flock serialises read-modify-write).
  std::thread a([&] {
    for (int i = 0; i < 10; ++i)
      ASSERT_TRUE(server->CreateToken("s" + std::to_string(i), Role::kViewer).ok());
  });
  std::thread b([&] {
    for (int i = 0; i < 10; ++i)
      ASSERT_TRUE(cli->CreateToken("c" + std::to_string(i), Role::kViewer).ok());
  });
  a.join();
  b.join();
  auto tokens = server->Tokens();
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ(tokens->size(), 21u);
}

TEST(Credentials, AFailedWriteChangesNothing) {
  TempDir dir;
  FakeClock clock;
  FaultInjectionEnv env(Env::Default());
  CredentialStoreOptions o;
  o.data_dir = DataDir(dir.str());
  o.env = &env;
  o.clock = &clock;
  o.cost = PasswordCost::Minimum();
  auto store = CredentialStore::Open(o);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->AddUser("alice", Role::kAdmin, "password1").ok());
  env.FailSyncs(1);
  EXPECT_FALSE((*store)->AddUser("bob", Role::kViewer, "password2").ok());
  auto users = (*store)->Users();
  ASSERT_TRUE(users.ok());
  EXPECT_EQ(users->size(), 1u);
}

// ---------------------------------------------------------------- audit log

TEST(AuditLog, AppendsDurablyAndPagesNewestFirst) {
  TempDir dir;
  FakeClock clock;
  AuditLog audit(DataDir(dir.str()), Env::Default(), &clock);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(audit
                    .Append({"alice", "admin", "user.add", "u" + std::to_string(i), "127.0.0.1",
                             201, "", "{\"name\":\"u" + std::to_string(i) + "\"}"})
                    .ok());
  }
  auto page = audit.Page(2, 0);
  ASSERT_TRUE(page.ok());
  json::value v = json::parse(*page);
  auto& entries = v.at("entries").as_array();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].at("target").as_string(), "u4");
  EXPECT_EQ(entries[1].at("target").as_string(), "u3");
  EXPECT_EQ(entries[0].at("after").at("name").as_string(), "u4");
  ASSERT_TRUE(v.at("next_before").is_int64());
  auto next = audit.Page(10, static_cast<uint64_t>(v.at("next_before").as_int64()));
  ASSERT_TRUE(next.ok());
  json::value n = json::parse(*next);
  ASSERT_EQ(n.at("entries").as_array().size(), 3u);
  EXPECT_EQ(n.at("entries").as_array()[0].at("target").as_string(), "u2");
  EXPECT_TRUE(n.at("next_before").is_null());
}

TEST(AuditLog, ATornLastLineIsSkippedAndClosedByTheNextAppend) {
  TempDir dir;
  FakeClock clock;
  AuditLog audit(DataDir(dir.str()), Env::Default(), &clock);
  ASSERT_TRUE(audit.Append({"alice", "admin", "login", "alice", "", 200, "", ""}).ok());
  {
    std::ofstream out(DataDir(dir.str()).AuditLog(), std::ios::app);
    out << "{\"id\":99,\"actor\":\"torn";
  }
  ASSERT_TRUE(audit.Append({"bob", "viewer", "login", "bob", "", 200, "", ""}).ok());
  auto page = audit.Page(10, 0);
  ASSERT_TRUE(page.ok());
  json::value v = json::parse(*page);
  auto& entries = v.at("entries").as_array();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].at("actor").as_string(), "bob");
  EXPECT_EQ(entries[1].at("actor").as_string(), "alice");
}

TEST(AuditLog, AFailedFsyncIsAnError) {
  TempDir dir;
  FakeClock clock;
  FaultInjectionEnv env(Env::Default());
  AuditLog audit(DataDir(dir.str()), &env, &clock);
  env.FailSyncs(1);
  EXPECT_FALSE(audit.Append({"alice", "admin", "login", "alice", "", 200, "", ""}).ok());
}

// ---------------------------------------------------------------- sessions and limits

TEST(Sessions, EndWhenIdleAndAtTheirMaximumAge) {
  FakeClock clock;
  SessionOptions o;
  o.idle_timeout_ms = 10 * 60'000;
  o.max_age_ms = 25 * 60'000;
  SessionTable table(o, &clock);
  std::string cookie = table.Open("alice", "e1", nullptr);
  clock.Advance(9min);
  ASSERT_TRUE(table.Use(cookie).has_value());  // used: idle timer restarts
  clock.Advance(9min);
  ASSERT_TRUE(table.Use(cookie).has_value());
  clock.Advance(6min);  // 24 min after login
  ASSERT_TRUE(table.Use(cookie).has_value());
  clock.Advance(2min);  // 26 min: past the maximum age although used a moment ago
  EXPECT_FALSE(table.Use(cookie).has_value());

  std::string idle = table.Open("bob", "e2", nullptr);
  clock.Advance(10min);
  EXPECT_FALSE(table.Use(idle).has_value());
  EXPECT_FALSE(table.Use("not a cookie").has_value());
}

TEST(Sessions, AreBoundedAndClosable) {
  FakeClock clock;
  SessionOptions o;
  o.max_sessions = 3;
  SessionTable table(o, &clock);
  std::string first = table.Open("a", "e", nullptr);
  clock.Advance(1s);
  std::string second = table.Open("b", "e", nullptr);
  clock.Advance(1s);
  table.Open("c", "e", nullptr);
  clock.Advance(1s);
  ASSERT_TRUE(table.Use(first).has_value());  // now the second is the least recently used
  table.Open("d", "e", nullptr);
  EXPECT_EQ(table.size(), 3u);
  EXPECT_FALSE(table.Use(second).has_value());
  EXPECT_TRUE(table.Use(first).has_value());
  table.CloseAllOf("a");
  EXPECT_FALSE(table.Use(first).has_value());
}

TEST(LoginLimiter, LocksOutExponentiallyAfterFiveFailures) {
  FakeClock clock;
  LoginLimiter limiter({}, &clock);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(limiter.RetryAfterMs("alice", "10.0.0.1"), 0);
    limiter.RecordFailure("alice", "10.0.0.1");
  }
  EXPECT_EQ(limiter.RetryAfterMs("alice", "10.0.0.1"), 0);
  limiter.RecordFailure("alice", "10.0.0.1");  // the fifth
  EXPECT_EQ(limiter.RetryAfterMs("alice", "10.0.0.1"), 1'000);
  EXPECT_EQ(limiter.RetryAfterMs("alice", "10.0.0.2"), 1'000);  // per user, from anywhere
  EXPECT_EQ(limiter.RetryAfterMs("bob", "10.0.0.1"), 1'000);    // per address, any user
  EXPECT_EQ(limiter.RetryAfterMs("bob", "10.0.0.2"), 0);
  clock.Advance(1s);
  limiter.RecordFailure("alice", "10.0.0.1");
  EXPECT_EQ(limiter.RetryAfterMs("alice", "10.0.0.1"), 2'000);
  clock.Advance(2s);
  limiter.RecordFailure("alice", "10.0.0.1");
  EXPECT_EQ(limiter.RetryAfterMs("alice", "10.0.0.1"), 4'000);
  for (int i = 0; i < 40; ++i)
    limiter.RecordFailure("alice", "10.0.0.1");
  EXPECT_EQ(limiter.RetryAfterMs("alice", "10.0.0.1"), 15 * 60'000);  // capped
  limiter.RecordSuccess("alice");
  EXPECT_EQ(limiter.RetryAfterMs("alice", "10.0.0.9"), 0);
}

TEST(LoginLimiter, MemoryIsBoundedWhateverTheNamesAndAddresses) {
  FakeClock clock;
  LoginLimiterOptions o;
  o.max_entries = 100;
  LoginLimiter limiter(o, &clock);
  for (int i = 0; i < 10'000; ++i) {
    limiter.RecordFailure("user" + std::to_string(i), "10.0." + std::to_string(i));
    clock.Advance(1ms);
  }
  EXPECT_LE(limiter.entries(), 200u);
}

// ---------------------------------------------------------------- the API

// Records every call; answers with canned results.
class FakeConfigApi final : public ConfigApi {
 public:
  struct CallRecord {
    std::string method, actor, name, body, if_match;
  };
  std::mutex mu;
  std::vector<CallRecord> calls;

  ApiResult Reply(std::string method, const Actor* actor, std::string_view name,
                  std::string_view body, std::string_view if_match, int status = 200) {
    std::lock_guard lock(mu);
    calls.push_back({std::move(method), actor ? actor->name : "", std::string(name),
                     std::string(body), std::string(if_match)});
    ApiResult r;
    r.http_status = status;
    r.body = "{\"name\":\"" + std::string(name) + "\",\"version\":\"v7\"}";
    r.etag = "v7";
    if (actor) {
      r.audit_before = "{\"enabled\":true}";
      r.audit_after = "{\"enabled\":false}";
    }
    return r;
  }
  ApiResult ListSources() override { return Reply("ListSources", nullptr, "", "", ""); }
  ApiResult GetSource(std::string_view n) override {
    return Reply("GetSource", nullptr, n, "", "");
  }
  ApiResult CreateSource(const Actor& a, std::string_view b) override {
    return Reply("CreateSource", &a, "", b, "", 201);
  }
  ApiResult PatchSource(const Actor& a, std::string_view n, std::string_view b,
                        std::string_view m) override {
    return Reply("PatchSource", &a, n, b, m);
  }
  ApiResult DeleteSource(const Actor& a, std::string_view n) override {
    return Reply("DeleteSource", &a, n, "", "");
  }
  ApiResult RotateSourceKey(const Actor& a, std::string_view n) override {
    return Reply("RotateSourceKey", &a, n, "", "");
  }
  ApiResult RotateSourceKeyWithGrace(const Actor& a, std::string_view n,
                                     int64_t grace_ms) override {
    return Reply("RotateSourceKeyWithGrace", &a, n, std::to_string(grace_ms), "");
  }
  ApiResult ListDestinations() override { return Reply("ListDestinations", nullptr, "", "", ""); }
  ApiResult GetDestination(std::string_view n) override {
    return Reply("GetDestination", nullptr, n, "", "");
  }
  ApiResult CreateDestination(const Actor& a, std::string_view b) override {
    return Reply("CreateDestination", &a, "", b, "", 201);
  }
  ApiResult PatchDestination(const Actor& a, std::string_view n, std::string_view b,
                             std::string_view m) override {
    if (m == "stale") return Reply("PatchDestination", &a, n, b, m, 412);
    return Reply("PatchDestination", &a, n, b, m);
  }
  ApiResult DeleteDestination(const Actor& a, std::string_view n) override {
    return Reply("DeleteDestination", &a, n, "", "");
  }
  ApiResult ListDestinationTypes() override {
    return Reply("ListDestinationTypes", nullptr, "", "", "");
  }
  ApiResult ExportYaml() override {
    ApiResult r = Reply("ExportYaml", nullptr, "", "", "");
    r.body = "version: 1\n";
    r.content_type = "application/yaml";
    return r;
  }
};

class AdminApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    credentials_ = OpenStore(dir_.str(), &clock_);
    audit_ = std::make_unique<AuditLog>(DataDir(dir_.str()), Env::Default(), &clock_);
    ASSERT_TRUE(credentials_->AddUser("root", Role::kAdmin, "root-password").ok());
    ASSERT_TRUE(credentials_->AddUser("ed", Role::kEditor, "ed-password").ok());
    ASSERT_TRUE(credentials_->AddUser("vi", Role::kViewer, "vi-password").ok());
    for (Role r : {Role::kAdmin, Role::kEditor, Role::kViewer}) {
      auto t = credentials_->CreateToken(std::string(RoleName(r)) + "-token", r);
      ASSERT_TRUE(t.ok());
      tokens_[r] = *t;
    }
    api_ = MakeApi(&config_);
  }

  std::unique_ptr<AdminApi> MakeApi(ConfigApi* config) {
    AdminApiOptions o;
    o.credentials = credentials_.get();
    o.audit = audit_.get();
    o.config = config;
    o.clock = &clock_;
    o.sessions.idle_timeout_ms = 10 * 60'000;
    o.sessions.max_age_ms = 60 * 60'000;
    o.start_worker = false;
    return std::make_unique<AdminApi>(o);
  }

  static http::Request Req(bhttp::verb method, std::string target, std::string body = "") {
    http::Request req{method, target, 11};
    req.body() = std::move(body);
    req.prepare_payload();
    return req;
  }
  http::Response Call(http::Request req, std::string ip = "127.0.0.1") {
    return api_->Serve(req, http::PeerInfo{std::move(ip)});
  }
  http::Response WithToken(Role role, bhttp::verb method, std::string target,
                           std::string body = "") {
    auto req = Req(method, std::move(target), std::move(body));
    req.set(bhttp::field::authorization, "Bearer " + tokens_[role]);
    return Call(std::move(req));
  }
  struct Login {
    std::string cookie, csrf;
  };
  Login LogIn(const std::string& user, const std::string& password) {
    auto res = Call(Req(bhttp::verb::post, "/api/v1/login",
                        json::serialize(json::object{{"user", user}, {"password", password}})));
    EXPECT_EQ(res.result_int(), 200u) << res.body();
    std::string set_cookie(res[bhttp::field::set_cookie]);
    Login l;
    l.cookie = set_cookie.substr(0, set_cookie.find(';'));  // "sy_session=<id>"
    if (res.result_int() == 200)
      l.csrf = json::parse(res.body()).at("csrf_token").as_string().c_str();
    return l;
  }
  http::Response WithSession(const Login& l, bhttp::verb method, std::string target,
                             std::string body = "", bool csrf = true) {
    auto req = Req(method, std::move(target), std::move(body));
    req.set(bhttp::field::cookie, l.cookie);
    if (csrf) req.set("X-CSRF-Token", l.csrf);
    return Call(std::move(req));
  }
  static std::string ErrorCode(const http::Response& res) {
    boost::system::error_code ec;
    json::value v = json::parse(res.body(), ec);
    if (ec || !v.is_object() || !v.as_object().contains("error")) return "";
    return v.at("error").at("code").as_string().c_str();
  }
  static std::string ErrorField(const http::Response& res) {
    json::value v = json::parse(res.body());
    auto& e = v.at("error").as_object();
    return e.contains("field") ? e.at("field").as_string().c_str() : "";
  }
  json::array AuditEntries() {
    auto page = audit_->Page(1000, 0);
    EXPECT_TRUE(page.ok());
    return json::parse(*page).at("entries").as_array();
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<CredentialStore> credentials_;
  std::unique_ptr<AuditLog> audit_;
  FakeConfigApi config_;
  std::map<Role, std::string> tokens_;
  std::unique_ptr<AdminApi> api_;
};

TEST_F(AdminApiTest, UnknownRoutesAre404AndWrongMethods405WithAllow) {
  auto res = WithToken(Role::kAdmin, bhttp::verb::get, "/api/v1/nothing");
  EXPECT_EQ(res.result_int(), 404u);
  EXPECT_EQ(ErrorCode(res), "not_found");
  res = WithToken(Role::kAdmin, bhttp::verb::put, "/api/v1/sources/web");
  EXPECT_EQ(res.result_int(), 405u);
  EXPECT_EQ(res[bhttp::field::allow], "DELETE, GET, PATCH");
  res = Call(Req(bhttp::verb::get, "/api/v1/login"));
  EXPECT_EQ(res.result_int(), 405u);
  EXPECT_EQ(res[bhttp::field::allow], "POST");
}

// Paths outside /api/ are the console's (console/console.h): its page without authentication,
// and /api/... stays the API's JSON whatever follows.
TEST_F(AdminApiTest, PathsOutsideTheApiAreTheConsoles) {
  auto res = Call(Req(bhttp::verb::get, "/"));
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res[bhttp::field::content_type], "text/html; charset=utf-8");
  EXPECT_NE(res["Content-Security-Policy"].find("default-src 'self'"), std::string::npos);
  EXPECT_EQ(Call(Req(bhttp::verb::get, "/destinations/hook")).result_int(), 200u);
  EXPECT_EQ(Call(Req(bhttp::verb::get, "/no-such-page")).result_int(), 404u);
  res = Call(Req(bhttp::verb::get, "/api/nothing"));
  EXPECT_EQ(res.result_int(), 404u);
  EXPECT_EQ(ErrorCode(res), "not_found");
}

TEST_F(AdminApiTest, EveryRouteButLoginAndOpenApiNeedsAuthentication) {
  for (const AdminRoute& r : AdminRoutes()) {
    std::string path(r.path);
    if (auto at = path.find("{name}"); at != std::string::npos) path.replace(at, 6, "web");
    auto req = Req(bhttp::string_to_verb(r.method), path, "{}");
    auto res = Call(req);
    if (r.path == "/api/v1/login" || r.path == "/api/v1/openapi.json") {
      EXPECT_NE(res.result_int(), 401u) << r.method << " " << r.path;
    } else {
      EXPECT_EQ(res.result_int(), 401u) << r.method << " " << r.path;
      EXPECT_EQ(ErrorCode(res), "unauthenticated");
    }
    req.set(bhttp::field::authorization,
            "Bearer sy_0000000000000000000000000000000000000000000000000000000000000000");
    if (r.path != "/api/v1/login" && r.path != "/api/v1/openapi.json") {
      EXPECT_EQ(Call(req).result_int(), 401u) << r.method << " " << r.path;
    }
  }
}

// The role matrix, written out independently of the route table: 403 exactly where a role may
// not act, for every route.
TEST_F(AdminApiTest, EveryRouteForEveryRole) {
  const std::map<std::string, Role> least = {
      {"POST /api/v1/logout", Role::kViewer},
      {"GET /api/v1/session", Role::kViewer},
      {"GET /api/v1/users", Role::kAdmin},
      {"POST /api/v1/users", Role::kAdmin},
      {"PATCH /api/v1/users/{name}", Role::kAdmin},
      {"DELETE /api/v1/users/{name}", Role::kAdmin},
      {"GET /api/v1/tokens", Role::kAdmin},
      {"POST /api/v1/tokens", Role::kAdmin},
      {"DELETE /api/v1/tokens/{name}", Role::kAdmin},
      {"GET /api/v1/audit", Role::kAdmin},
      {"GET /api/v1/sources", Role::kViewer},
      {"POST /api/v1/sources", Role::kEditor},
      {"GET /api/v1/sources/{name}", Role::kViewer},
      {"PATCH /api/v1/sources/{name}", Role::kEditor},
      {"DELETE /api/v1/sources/{name}", Role::kEditor},
      {"POST /api/v1/sources/{name}/rotate-key", Role::kEditor},
      {"GET /api/v1/destinations", Role::kViewer},
      {"POST /api/v1/destinations", Role::kEditor},
      {"GET /api/v1/destinations/{name}", Role::kViewer},
      {"PATCH /api/v1/destinations/{name}", Role::kEditor},
      {"DELETE /api/v1/destinations/{name}", Role::kEditor},
      {"GET /api/v1/destinations/{name}/stats", Role::kViewer},
      {"GET /api/v1/destination-types", Role::kViewer},
      {"GET /api/v1/config/export", Role::kViewer},
      {"GET /api/v1/live", Role::kViewer},
      {"GET /api/v1/destinations/{name}/dlq", Role::kViewer},
      {"DELETE /api/v1/destinations/{name}/dlq", Role::kEditor},
      {"POST /api/v1/destinations/{name}/dlq/redrive", Role::kEditor},
      {"GET /api/v1/replays", Role::kViewer},
      {"POST /api/v1/replays", Role::kEditor},
      {"GET /api/v1/replays/{id}", Role::kViewer},
      {"POST /api/v1/replays/{id}/cancel", Role::kEditor},
      {"POST /api/v1/destinations/{name}/sync", Role::kEditor},
      {"GET /api/v1/functions", Role::kViewer},
      {"GET /api/v1/functions/{name}", Role::kViewer},
      {"PUT /api/v1/functions/{name}", Role::kEditor},
      {"DELETE /api/v1/functions/{name}", Role::kEditor},
      {"POST /api/v1/functions/{name}/test", Role::kEditor},
      {"GET /api/v1/warehouse", Role::kViewer},
      {"GET /api/v1/overview", Role::kViewer},
  };
  auto rank = [](Role r) { return r == Role::kViewer ? 0 : r == Role::kEditor ? 1 : 2; };
  size_t checked = 0;
  for (const AdminRoute& r : AdminRoutes()) {
    const std::string key = std::string(r.method) + " " + std::string(r.path);
    if (r.path == "/api/v1/login" || r.path == "/api/v1/openapi.json") continue;
    ASSERT_TRUE(least.contains(key)) << key << " has no expected role in this test";
    ++checked;
    for (Role role : {Role::kViewer, Role::kEditor, Role::kAdmin}) {
      std::string path(r.path);
      if (auto at = path.find("{name}"); at != std::string::npos) path.replace(at, 6, "nobody");
      auto res = WithToken(role, bhttp::string_to_verb(r.method), path, "{}");
      if (rank(role) < rank(least.at(key))) {
        EXPECT_EQ(res.result_int(), 403u) << key << " as " << RoleName(role);
        EXPECT_EQ(ErrorCode(res), "forbidden") << key;
        EXPECT_NE(res.body().find(RoleName(role)), std::string::npos) << res.body();
      } else {
        EXPECT_NE(res.result_int(), 403u) << key << " as " << RoleName(role) << ": " << res.body();
      }
    }
  }
  EXPECT_EQ(checked, least.size());
  // A viewer's 403 changed nothing: no ConfigApi mutation was called by a viewer.
  for (const auto& c : config_.calls)
    EXPECT_NE(c.actor, "token:viewer-token") << c.method;
}

TEST_F(AdminApiTest, LoginSetsAStrictHttpOnlyCookieAndReturnsTheCsrfToken) {
  auto res =
      Call(Req(bhttp::verb::post, "/api/v1/login", R"({"user":"ed","password":"ed-password"})"));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  std::string cookie(res[bhttp::field::set_cookie]);
  EXPECT_EQ(cookie.rfind("sy_session=", 0), 0u);
  EXPECT_NE(cookie.find("; HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("; SameSite=Strict"), std::string::npos);
  EXPECT_NE(cookie.find("; Path=/"), std::string::npos);
  EXPECT_EQ(cookie.find("Secure"), std::string::npos);  // plain HTTP listener
  json::value v = json::parse(res.body());
  EXPECT_EQ(v.at("user").as_string(), "ed");
  EXPECT_EQ(v.at("role").as_string(), "editor");
  EXPECT_EQ(v.at("csrf_token").as_string().size(), 64u);
  auto perms = v.at("permissions").as_array();
  EXPECT_NE(std::find(perms.begin(), perms.end(), json::value("view_payloads")), perms.end());
  EXPECT_NE(std::find(perms.begin(), perms.end(), json::value("edit_config")), perms.end());
  EXPECT_EQ(std::find(perms.begin(), perms.end(), json::value("manage_users")), perms.end());

  Login l = LogIn("ed", "ed-password");
  auto session = WithSession(l, bhttp::verb::get, "/api/v1/session", "", false);
  ASSERT_EQ(session.result_int(), 200u);
  EXPECT_EQ(json::parse(session.body()).at("csrf_token").as_string(), l.csrf);
  EXPECT_EQ(json::parse(session.body()).at("auth").as_string(), "session");

  auto viewer = json::parse(WithToken(Role::kViewer, bhttp::verb::get, "/api/v1/session").body());
  EXPECT_EQ(viewer.at("auth").as_string(), "token");
  auto vperms = viewer.at("permissions").as_array();
  EXPECT_EQ(std::find(vperms.begin(), vperms.end(), json::value("view_payloads")), vperms.end());
}

TEST_F(AdminApiTest, SecureCookieWhenConfigured) {
  AdminApiOptions o;
  o.credentials = credentials_.get();
  o.audit = audit_.get();
  o.clock = &clock_;
  o.secure_cookie = true;
  o.start_worker = false;
  AdminApi api(o);
  auto res = api.Serve(
      Req(bhttp::verb::post, "/api/v1/login", R"({"user":"ed","password":"ed-password"})"),
      {"127.0.0.1"});
  ASSERT_EQ(res.result_int(), 200u);
  EXPECT_NE(std::string(res[bhttp::field::set_cookie]).find("; Secure"), std::string::npos);
}

TEST_F(AdminApiTest, CookieMutationsNeedTheCsrfTokenAndBearerOnesDoNot) {
  Login l = LogIn("ed", "ed-password");
  const std::string body = R"({"enabled":false})";
  auto res = WithSession(l, bhttp::verb::patch, "/api/v1/destinations/hook", body, false);
  EXPECT_EQ(res.result_int(), 403u);
  EXPECT_EQ(ErrorCode(res), "csrf_token_invalid");
  auto req = Req(bhttp::verb::patch, "/api/v1/destinations/hook", body);
  req.set(bhttp::field::cookie, l.cookie);
  req.set("X-CSRF-Token", std::string(64, '0'));
  EXPECT_EQ(Call(req).result_int(), 403u);
  EXPECT_TRUE(config_.calls.empty());  // refused before the ConfigApi saw it
  // Reads need no token.
  EXPECT_EQ(WithSession(l, bhttp::verb::get, "/api/v1/destinations", "", false).result_int(), 200u);
  EXPECT_EQ(WithSession(l, bhttp::verb::patch, "/api/v1/destinations/hook", body).result_int(),
            200u);
  EXPECT_EQ(
      WithToken(Role::kEditor, bhttp::verb::patch, "/api/v1/destinations/hook", body).result_int(),
      200u);
  // Logout is a mutation too.
  EXPECT_EQ(WithSession(l, bhttp::verb::post, "/api/v1/logout", "", false).result_int(), 403u);
  auto out = WithSession(l, bhttp::verb::post, "/api/v1/logout");
  EXPECT_EQ(out.result_int(), 204u);
  EXPECT_NE(std::string(out[bhttp::field::set_cookie]).find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(WithSession(l, bhttp::verb::get, "/api/v1/session").result_int(), 401u);
}

TEST_F(AdminApiTest, FailedLoginsAreRateLimitedPerUserAndAddress) {
  for (int i = 0; i < 5; ++i) {
    auto res = Call(
        Req(bhttp::verb::post, "/api/v1/login", R"({"user":"ed","password":"wrong-password"})"),
        "10.1.1.1");
    EXPECT_EQ(res.result_int(), 401u);
    EXPECT_EQ(ErrorCode(res), "bad_credentials");
  }
  // Locked out, even with the right password, from this address and (for this user) any other.
  auto res =
      Call(Req(bhttp::verb::post, "/api/v1/login", R"({"user":"ed","password":"ed-password"})"),
           "10.1.1.1");
  EXPECT_EQ(res.result_int(), 429u);
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  EXPECT_EQ(
      Call(Req(bhttp::verb::post, "/api/v1/login", R"({"user":"ed","password":"ed-password"})"),
           "10.2.2.2")
          .result_int(),
      429u);
  EXPECT_EQ(
      Call(Req(bhttp::verb::post, "/api/v1/login", R"({"user":"vi","password":"vi-password"})"),
           "10.1.1.1")
          .result_int(),
      429u);
  EXPECT_EQ(
      Call(Req(bhttp::verb::post, "/api/v1/login", R"({"user":"vi","password":"vi-password"})"),
           "10.2.2.2")
          .result_int(),
      200u);
  clock_.Advance(1s);
  EXPECT_EQ(
      Call(Req(bhttp::verb::post, "/api/v1/login", R"({"user":"ed","password":"ed-password"})"),
           "10.1.1.1")
          .result_int(),
      200u);
  // Failed logins are audited, with the name as typed and the address.
  size_t failed = 0;
  for (const auto& e : AuditEntries()) {
    if (e.at("action").as_string() == "login.failed") {
      ++failed;
      EXPECT_EQ(e.at("actor").as_string(), "ed");
      EXPECT_EQ(e.at("client").as_string(), "10.1.1.1");
    }
  }
  EXPECT_EQ(failed, 5u);
  // A long name is cut for the audit log on a character boundary (é is two bytes).
  std::string long_name;
  for (int i = 0; i < 100; ++i)
    long_name += "\xc3\xa9";
  Call(Req(bhttp::verb::post, "/api/v1/login",
           json::serialize(json::object{{"user", "x" + long_name}, {"password", "guess"}})),
       "10.3.3.3");
  auto newest = AuditEntries().at(0);
  EXPECT_EQ(newest.at("action").as_string(), "login.failed");
  EXPECT_EQ(newest.at("actor").as_string(), "x" + long_name.substr(0, 126));
}

TEST_F(AdminApiTest, SessionsExpireWhenIdleAndAtMaximumAge) {
  Login l = LogIn("vi", "vi-password");
  clock_.Advance(9min);
  EXPECT_EQ(WithSession(l, bhttp::verb::get, "/api/v1/session").result_int(), 200u);
  clock_.Advance(10min);
  auto res = WithSession(l, bhttp::verb::get, "/api/v1/session");
  EXPECT_EQ(res.result_int(), 401u);
  EXPECT_NE(res.body().find("session has ended"), std::string::npos);

  Login busy = LogIn("vi", "vi-password");
  for (int i = 0; i < 7; ++i) {  // used every 9 minutes: 63 minutes in all
    clock_.Advance(9min);
    auto r = WithSession(busy, bhttp::verb::get, "/api/v1/session");
    EXPECT_EQ(r.result_int(), i < 6 ? 200u : 401u) << "after " << 9 * (i + 1) << " min";
  }
}

TEST_F(AdminApiTest, RemovingAUserOrChangingTheirPasswordEndsTheirSessions) {
  Login ed = LogIn("ed", "ed-password");
  Login vi = LogIn("vi", "vi-password");
  Login root = LogIn("root", "root-password");
  // Removed through the API.
  EXPECT_EQ(WithSession(root, bhttp::verb::delete_, "/api/v1/users/ed").result_int(), 204u);
  EXPECT_EQ(WithSession(ed, bhttp::verb::get, "/api/v1/session").result_int(), 401u);
  // Password changed by another process (the CLI): the session was opened with the old one.
  auto cli = OpenStore(dir_.str(), &clock_);
  ASSERT_TRUE(cli->UpdateUser("vi", std::nullopt, std::string_view("new-password")).ok());
  EXPECT_EQ(WithSession(vi, bhttp::verb::get, "/api/v1/session").result_int(), 401u);
  // A role change applies to a live session at once.
  ASSERT_TRUE(cli->AddUser("al", Role::kAdmin, "al-password").ok());
  Login al = LogIn("al", "al-password");
  EXPECT_EQ(WithSession(al, bhttp::verb::get, "/api/v1/users").result_int(), 200u);
  ASSERT_TRUE(cli->UpdateUser("al", Role::kViewer, std::nullopt).ok());
  EXPECT_EQ(WithSession(al, bhttp::verb::get, "/api/v1/users").result_int(), 403u);
  EXPECT_EQ(WithSession(root, bhttp::verb::get, "/api/v1/session").result_int(), 200u);
}

TEST_F(AdminApiTest, BadJsonAndUnknownKeysAre400NamingTheField) {
  auto res = Call(Req(bhttp::verb::post, "/api/v1/login", "{\"user\":"));
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_EQ(ErrorCode(res), "bad_json");
  res = Call(Req(bhttp::verb::post, "/api/v1/login", R"({"user":"ed","password":"x","otp":1})"));
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_EQ(ErrorCode(res), "unknown_key");
  EXPECT_EQ(ErrorField(res), "otp");
  res = Call(Req(bhttp::verb::post, "/api/v1/login", R"({"user":"ed","password":5})"));
  EXPECT_EQ(ErrorField(res), "password");
  res = Call(Req(bhttp::verb::post, "/api/v1/login", R"({"password":"ed-password"})"));
  EXPECT_EQ(ErrorCode(res), "missing_key");
  EXPECT_EQ(ErrorField(res), "user");
  res = WithToken(Role::kAdmin, bhttp::verb::post, "/api/v1/users",
                  R"({"name":"x","role":"owner","password":"long-enough"})");
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_EQ(ErrorField(res), "role");
  res = WithToken(Role::kAdmin, bhttp::verb::post, "/api/v1/users",
                  R"({"name":"x y","role":"viewer","password":"long-enough"})");
  EXPECT_EQ(ErrorField(res), "name");
  res = WithToken(Role::kAdmin, bhttp::verb::post, "/api/v1/users",
                  R"({"name":"xy","role":"viewer","password":"short"})");
  EXPECT_EQ(ErrorField(res), "password");
  res = WithToken(Role::kAdmin, bhttp::verb::post, "/api/v1/tokens", R"(["ci"])");
  EXPECT_EQ(ErrorCode(res), "bad_json");
  res = WithToken(Role::kEditor, bhttp::verb::patch, "/api/v1/destinations/hook", "{nope");
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_EQ(ErrorCode(res), "bad_json");
  res = WithToken(Role::kAdmin, bhttp::verb::get, "/api/v1/audit?limit=0");
  EXPECT_EQ(ErrorField(res), "limit");
}

TEST_F(AdminApiTest, UsersAndTokensThroughTheApi) {
  auto res = WithToken(Role::kAdmin, bhttp::verb::post, "/api/v1/users",
                       R"({"name":"dana","role":"admin","password":"dana-password"})");
  ASSERT_EQ(res.result_int(), 201u) << res.body();
  EXPECT_EQ(WithToken(Role::kAdmin, bhttp::verb::post, "/api/v1/users",
                      R"({"name":"dana","role":"editor","password":"dana-password"})")
                .result_int(),
            409u);
  res = WithToken(Role::kAdmin, bhttp::verb::get, "/api/v1/users");
  EXPECT_NE(res.body().find("\"dana\""), std::string::npos);
  EXPECT_EQ(res.body().find("argon2"), std::string::npos);
  res = WithToken(Role::kAdmin, bhttp::verb::patch, "/api/v1/users/dana", R"({"role":"viewer"})");
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_EQ(json::parse(res.body()).at("role").as_string(), "viewer");
  EXPECT_EQ(WithToken(Role::kAdmin, bhttp::verb::delete_, "/api/v1/users/dana").result_int(), 204u);
  EXPECT_EQ(WithToken(Role::kAdmin, bhttp::verb::delete_, "/api/v1/users/nobody").result_int(),
            404u);

  res = WithToken(Role::kAdmin, bhttp::verb::post, "/api/v1/tokens",
                  R"({"name":"deploy","role":"editor"})");
  ASSERT_EQ(res.result_int(), 201u) << res.body();
  std::string token(json::parse(res.body()).at("token").as_string());
  auto req = Req(bhttp::verb::get, "/api/v1/session");
  req.set(bhttp::field::authorization, "Bearer " + token);
  auto who = Call(req);
  ASSERT_EQ(who.result_int(), 200u);
  EXPECT_EQ(json::parse(who.body()).at("user").as_string(), "token:deploy");
  res = WithToken(Role::kAdmin, bhttp::verb::get, "/api/v1/tokens");
  EXPECT_NE(res.body().find("\"deploy\""), std::string::npos);
  EXPECT_EQ(res.body().find(token), std::string::npos);
  EXPECT_EQ(WithToken(Role::kAdmin, bhttp::verb::delete_, "/api/v1/tokens/deploy").result_int(),
            204u);
  EXPECT_EQ(Call(req).result_int(), 401u);

  std::vector<std::string> actions;
  for (const auto& e : AuditEntries())
    actions.emplace_back(e.at("action").as_string());
  std::reverse(actions.begin(), actions.end());
  EXPECT_EQ(actions, (std::vector<std::string>{"user.add", "user.update", "user.remove",
                                               "token.create", "token.revoke"}));
  for (const auto& e : AuditEntries())
    EXPECT_EQ(e.at("actor").as_string(), "token:admin-token");
}

TEST_F(AdminApiTest, TheLastAdminUserCannotBeRemovedThroughTheApi) {
  ASSERT_EQ(WithToken(Role::kAdmin, bhttp::verb::patch, "/api/v1/users/ed", R"({"role":"viewer"})")
                .result_int(),
            200u);
  auto res = WithToken(Role::kAdmin, bhttp::verb::delete_, "/api/v1/users/root");
  EXPECT_EQ(res.result_int(), 409u);
  EXPECT_EQ(ErrorCode(res), "last_admin");
}

TEST_F(AdminApiTest, ConfigRoutesMapOntoConfigApiWithEtagsIfMatchAndAudit) {
  auto res = WithToken(Role::kViewer, bhttp::verb::get, "/api/v1/destinations/hook");
  ASSERT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res[bhttp::field::etag], "\"v7\"");
  auto req = Req(bhttp::verb::patch, "/api/v1/destinations/hook", R"({"enabled":false})");
  req.set(bhttp::field::authorization, "Bearer " + tokens_[Role::kEditor]);
  req.set(bhttp::field::if_match, "\"v7\"");
  res = Call(req);
  ASSERT_EQ(res.result_int(), 200u);
  req.set(bhttp::field::if_match, "stale");
  res = Call(req);
  EXPECT_EQ(res.result_int(), 412u);
  res = WithToken(Role::kEditor, bhttp::verb::post, "/api/v1/sources", R"({"name":"app"})");
  EXPECT_EQ(res.result_int(), 201u);
  res = WithToken(Role::kEditor, bhttp::verb::post, "/api/v1/sources/app/rotate-key");
  EXPECT_EQ(res.result_int(), 200u);
  res = WithToken(Role::kViewer, bhttp::verb::get, "/api/v1/config/export");
  EXPECT_EQ(res[bhttp::field::content_type], "application/yaml");
  EXPECT_EQ(res.body(), "version: 1\n");

  ASSERT_GE(config_.calls.size(), 5u);
  EXPECT_EQ(config_.calls[1].method, "PatchDestination");
  EXPECT_EQ(config_.calls[1].actor, "token:editor-token");
  EXPECT_EQ(config_.calls[1].name, "hook");
  EXPECT_EQ(config_.calls[1].body, R"({"enabled":false})");
  EXPECT_EQ(config_.calls[1].if_match, "v7");
  EXPECT_EQ(config_.calls[2].if_match, "stale");

  // Successful mutations only, with before/after as given by the ConfigApi.
  std::vector<std::string> actions;
  for (const auto& e : AuditEntries())
    actions.emplace_back(e.at("action").as_string());
  std::reverse(actions.begin(), actions.end());
  EXPECT_EQ(actions,
            (std::vector<std::string>{"destination.patch", "source.create", "source.rotate_key"}));
  auto entries = AuditEntries();
  auto& patch = entries.back().as_object();
  EXPECT_EQ(patch.at("target").as_string(), "hook");
  EXPECT_EQ(patch.at("before").at("enabled").as_bool(), true);
  EXPECT_EQ(patch.at("after").at("enabled").as_bool(), false);
  EXPECT_EQ(entries[1].at("target").as_string(), "app");
}

TEST_F(AdminApiTest, ConfigRoutesAnswer503UntilAConfigApiIsSet) {
  api_ = MakeApi(nullptr);
  auto res = WithToken(Role::kViewer, bhttp::verb::get, "/api/v1/sources");
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_EQ(ErrorCode(res), "config_unavailable");
  api_->SetConfigApi(&config_);
  EXPECT_EQ(WithToken(Role::kViewer, bhttp::verb::get, "/api/v1/sources").result_int(), 200u);
}

TEST_F(AdminApiTest, RotateKeyTakesAnOptionalGracePeriod) {
  auto res = WithToken(Role::kEditor, bhttp::verb::post, "/api/v1/sources/web/rotate-key");
  EXPECT_EQ(res.result_int(), 200u);
  res = WithToken(Role::kEditor, bhttp::verb::post, "/api/v1/sources/web/rotate-key",
                  R"({"grace":"1h"})");
  EXPECT_EQ(res.result_int(), 200u);
  res = WithToken(Role::kEditor, bhttp::verb::post, "/api/v1/sources/web/rotate-key",
                  R"({"grace":"0s"})");
  EXPECT_EQ(res.result_int(), 200u);
  res = WithToken(Role::kEditor, bhttp::verb::post, "/api/v1/sources/web/rotate-key",
                  R"({"grace":"later"})");
  EXPECT_EQ(ErrorField(res), "grace");
  res = WithToken(Role::kEditor, bhttp::verb::post, "/api/v1/sources/web/rotate-key",
                  R"({"grace":"1h","now":true})");
  EXPECT_EQ(ErrorField(res), "now");
  ASSERT_EQ(config_.calls.size(), 3u);
  EXPECT_EQ(config_.calls[0].method, "RotateSourceKey");
  EXPECT_EQ(config_.calls[1].method, "RotateSourceKeyWithGrace");
  EXPECT_EQ(config_.calls[1].body, "3600000");
  EXPECT_EQ(config_.calls[2].body, "0");
}

TEST_F(AdminApiTest, AuditRouteIsPaged) {
  for (int i = 0; i < 5; ++i)
    LogIn("vi", "vi-password");
  auto res = WithToken(Role::kAdmin, bhttp::verb::get, "/api/v1/audit?limit=3");
  ASSERT_EQ(res.result_int(), 200u);
  json::value v = json::parse(res.body());
  EXPECT_EQ(v.at("entries").as_array().size(), 3u);
  res = WithToken(Role::kAdmin, bhttp::verb::get,
                  "/api/v1/audit?limit=3&before=" + std::to_string(v.at("next_before").as_int64()));
  v = json::parse(res.body());
  EXPECT_EQ(v.at("entries").as_array().size(), 2u);
  EXPECT_TRUE(v.at("next_before").is_null());
}

// ---------------------------------------------------------------- overview

class FakeOverview final : public OverviewApi {
 public:
  OverviewFacts Facts() override { return facts; }
  OverviewFacts facts;
};

TEST_F(AdminApiTest, OverviewSumsMinutesAndReportsHealthAndDisk) {
  FakeOverview overview;
  observe::IngestStats ingest;
  observe::DeliveryStatsBook delivery;
  AdminApiOptions o;
  o.credentials = credentials_.get();
  o.audit = audit_.get();
  o.clock = &clock_;
  o.start_worker = false;
  o.delivery_stats = &delivery;
  api_ = std::make_unique<AdminApi>(o);
  EXPECT_EQ(WithToken(Role::kViewer, bhttp::verb::get, "/api/v1/overview").result_int(), 503u);
  o.overview = &overview;
  o.ingest_stats = &ingest;
  api_ = std::make_unique<AdminApi>(o);

  const int64_t now = clock_.Now().value();
  ingest.Record("web", now - 60'000, 5);  // the minute before
  ingest.Record("web", now, 7);
  delivery.For("hook")->Record(observe::DeliveryStats::Kind::kDelivered, now, 4);
  delivery.For("wh")->Record(observe::DeliveryStats::Kind::kDelivered, now, 3);
  delivery.For("wh")->Record(observe::DeliveryStats::Kind::kDeadLettered, now, 2);
  delivery.For("gone")->Record(observe::DeliveryStats::Kind::kDelivered, now, 100);  // not listed
  overview.facts.sources = {{"web", true}, {"ios", false}};
  OverviewFacts::Destination hook;
  hook.name = "hook";
  hook.type = "webhook";
  hook.running = true;
  hook.backlog_known = true;
  hook.backlog_events = 12;
  hook.backlog_seconds = 1.5;
  OverviewFacts::Destination wh;
  wh.name = "wh";
  wh.type = "sqlite";
  wh.running = true;
  wh.failing = true;
  wh.reason = "disk full";
  OverviewFacts::Destination off;
  off.name = "off";
  off.type = "webhook";
  off.enabled = false;
  overview.facts.destinations = {hook, wh, off};
  overview.facts.log = {.bytes = 4096, .files = 2};
  overview.facts.dlq = {.bytes = 0, .files = 0, .exists = false};
  overview.facts.data_dir_free_bytes = 1 << 30;
  overview.facts.archive_store = "local";
  overview.facts.archive_local = observe::DiskUsage::Figure{.bytes = 100, .complete = false};

  auto res = WithToken(Role::kViewer, bhttp::verb::get, "/api/v1/overview");
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  json::value v = json::parse(res.body());
  const auto& minutes = v.at("minutes").as_array();
  ASSERT_EQ(minutes.size(), 60u);
  EXPECT_EQ(minutes[59].at("in").as_int64(), 7);
  EXPECT_EQ(minutes[58].at("in").as_int64(), 5);
  EXPECT_EQ(minutes[59].at("out").as_int64(), 7);  // hook's 4 and wh's 3; not "gone"
  EXPECT_EQ(minutes[0].at("in").as_int64(), 0);
  EXPECT_EQ(v.at("totals").at("in").as_int64(), 12);
  EXPECT_EQ(v.at("totals").at("out").as_int64(), 7);
  const auto& sources = v.at("sources").as_array();
  ASSERT_EQ(sources.size(), 2u);
  EXPECT_EQ(sources[0].at("events_since_start").as_int64(), 12);
  EXPECT_TRUE(sources[0].at("last_event").is_string());
  EXPECT_TRUE(sources[1].at("last_event").is_null());
  EXPECT_FALSE(sources[1].at("enabled").as_bool());
  const auto& dests = v.at("destinations").as_array();
  ASSERT_EQ(dests.size(), 3u);
  EXPECT_EQ(dests[0].at("state").as_string(), "ok");
  EXPECT_TRUE(dests[0].at("healthy").as_bool());
  EXPECT_EQ(dests[0].at("backlog_events").as_int64(), 12);
  EXPECT_EQ(dests[1].at("state").as_string(), "failing");
  EXPECT_EQ(dests[1].at("reason").as_string(), "disk full");
  EXPECT_EQ(dests[1].at("dead_lettered_last_hour").as_int64(), 2);
  EXPECT_TRUE(dests[1].at("backlog_events").is_null());
  EXPECT_EQ(dests[2].at("state").as_string(), "disabled");
  EXPECT_FALSE(dests[2].at("healthy").as_bool());
  EXPECT_EQ(v.at("disk").at("log").at("bytes").as_int64(), 4096);
  EXPECT_EQ(v.at("disk").at("data_dir_free_bytes").as_int64(), 1 << 30);
  EXPECT_EQ(v.at("archive").at("store").as_string(), "local");
  EXPECT_FALSE(v.at("archive").at("local").at("complete").as_bool());
  // Any role reads it; nobody without credentials.
  EXPECT_EQ(WithToken(Role::kAdmin, bhttp::verb::get, "/api/v1/overview").result_int(), 200u);
  EXPECT_EQ(Call(Req(bhttp::verb::get, "/api/v1/overview")).result_int(), 401u);
}

// The served document is the file in the tree, and it describes exactly the routes served.
TEST_F(AdminApiTest, OpenApiDocumentDescribesEveryRoute) {
  auto res = Call(Req(bhttp::verb::get, "/api/v1/openapi.json"));
  ASSERT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), ReadAll(SY_ADMIN_OPENAPI_PATH));
  json::value doc = json::parse(res.body());
  EXPECT_EQ(doc.at("openapi").as_string().subview().substr(0, 2), "3.");
  // Operations marked "x-planned" are agreed shapes not served yet: never served, and every
  // other documented operation is.
  std::set<std::string> documented, planned, served;
  for (const auto& [path, item] : doc.at("paths").as_object()) {
    for (const auto& [method, op] : item.as_object()) {
      if (method == "parameters") continue;
      std::string m(method);
      std::transform(m.begin(), m.end(), m.begin(), ::toupper);
      const bool is_planned = op.as_object().contains("x-planned");
      (is_planned ? planned : documented).insert(m + " " + std::string(path));
      EXPECT_TRUE(op.as_object().contains("responses")) << path;
    }
  }
  for (const AdminRoute& r : AdminRoutes())
    served.insert(std::string(r.method) + " " + std::string(r.path));
  EXPECT_EQ(documented, served);
  for (const std::string& p : planned)
    EXPECT_FALSE(served.contains(p)) << p << " is served: drop its x-planned mark";
}

TEST_F(AdminApiTest, ConcurrentRequestsFromManyThreads) {
  constexpr int kThreads = 8, kEach = 20;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  Login l = LogIn("root", "root-password");
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string name = "t" + std::to_string(t) + "-" + std::to_string(i);
        auto created = WithSession(l, bhttp::verb::post, "/api/v1/tokens",
                                   R"({"name":")" + name + R"(","role":"viewer"})");
        if (created.result_int() != 201) ++failures;
        if (WithToken(Role::kViewer, bhttp::verb::get, "/api/v1/destinations").result_int() != 200)
          ++failures;
        if (WithSession(l, bhttp::verb::get, "/api/v1/session").result_int() != 200) ++failures;
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(failures.load(), 0);
  auto tokens = credentials_->Tokens();
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ(tokens->size(), 3u + kThreads * kEach);
  size_t created = 0;
  for (const auto& e : AuditEntries())
    created += e.at("action").as_string() == "token.create";
  EXPECT_EQ(created, static_cast<size_t>(kThreads * kEach));
}

TEST_F(AdminApiTest, DestinationStatsFromTheObserveBook) {
  observe::DeliveryStatsBook book;
  const int64_t now = clock_.Now().value();
  book.For("hook")->RecordDelivered(now - 5 * 60'000, 30);
  book.For("hook")->RecordDelivered(now, 40);
  book.For("hook")->Record(observe::DeliveryStats::Kind::kRetried, now - 30 * 60'000, 3);
  AdminApiOptions o;
  o.credentials = credentials_.get();
  o.audit = audit_.get();
  o.clock = &clock_;
  o.delivery_stats = &book;
  o.start_worker = false;
  o.backlog = [](std::string_view name, uint64_t* events, double* seconds) {
    if (name != "hook") return false;
    *events = 42;
    *seconds = 1.5;
    return true;
  };
  api_ = std::make_unique<AdminApi>(o);
  auto res =
      WithToken(Role::kViewer, bhttp::verb::get, "/api/v1/destinations/hook/stats?window=15m");
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  json::value v = json::parse(res.body());
  EXPECT_EQ(v.at("backlog").at("events").as_int64(), 42);
  EXPECT_EQ(v.at("backlog").at("seconds").as_double(), 1.5);
  EXPECT_EQ(v.at("window_minutes").as_int64(), 15);
  EXPECT_EQ(v.at("totals").at("delivered").as_int64(), 2);
  EXPECT_EQ(v.at("totals").at("retried").as_int64(), 0);  // 30 minutes ago: outside the window
  EXPECT_EQ(v.at("minutes").as_array().size(), 15u);
  res = WithToken(Role::kViewer, bhttp::verb::get, "/api/v1/destinations/hook/stats");
  v = json::parse(res.body());
  EXPECT_EQ(v.at("window_minutes").as_int64(), 60);
  EXPECT_EQ(v.at("totals").at("retried").as_int64(), 3);
  for (const char* bad : {"7h", "30s", "90s", "soon"}) {
    res = WithToken(Role::kViewer, bhttp::verb::get,
                    std::string("/api/v1/destinations/hook/stats?window=") + bad);
    EXPECT_EQ(res.result_int(), 400u) << bad;
    EXPECT_EQ(ErrorField(res), "window");
  }
  res = WithToken(Role::kViewer, bhttp::verb::get, "/api/v1/destinations/other/stats");
  EXPECT_EQ(res.result_int(), 404u);
  api_ = MakeApi(&config_);  // no book: 503
  res = WithToken(Role::kViewer, bhttp::verb::get, "/api/v1/destinations/hook/stats");
  EXPECT_EQ(res.result_int(), 503u);
}

TEST_F(AdminApiTest, AFullQueueIsAnswered503WithRetryAfter) {
  AdminApiOptions o;
  o.credentials = credentials_.get();
  o.audit = audit_.get();
  o.clock = &clock_;
  o.max_queued = 0;  // every request finds the queue full
  AdminApi api(o);
  http::Response got;
  api.Handle(Req(bhttp::verb::get, "/api/v1/openapi.json"), {"127.0.0.1"},
             http::Responder([&](http::Response r) { got = std::move(r); }));
  EXPECT_EQ(got.result_int(), 503u);
  EXPECT_EQ(got[bhttp::field::retry_after], "1");
  EXPECT_EQ(ErrorCode(got), "busy");
}

// A change is answered only once audited: when the audit log cannot be written the answer says
// so, and a login that cannot be audited opens no session.
TEST_F(AdminApiTest, AnAuditWriteFailureIsA500AndALoginOpensNoSession) {
  FaultInjectionEnv env(Env::Default());
  AuditLog audit(DataDir(dir_.str()), &env, &clock_);
  AdminApiOptions o;
  o.credentials = credentials_.get();
  o.audit = &audit;
  o.clock = &clock_;
  o.start_worker = false;
  AdminApi api(o);
  env.FailSyncs(1);
  auto res = api.Serve(
      Req(bhttp::verb::post, "/api/v1/login", R"({"user":"vi","password":"vi-password"})"),
      {"127.0.0.1"});
  EXPECT_EQ(res.result_int(), 500u);
  EXPECT_EQ(ErrorCode(res), "audit_failed");
  EXPECT_EQ(api.sessions().size(), 0u);
  res = api.Serve(
      Req(bhttp::verb::post, "/api/v1/login", R"({"user":"vi","password":"vi-password"})"),
      {"127.0.0.1"});
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(api.sessions().size(), 1u);
}

// Through a real listener: the worker thread, the cookie header on the wire, and the size limit.
TEST_F(AdminApiTest, ServedByARealListener) {
  AdminApiOptions o;
  o.credentials = credentials_.get();
  o.audit = audit_.get();
  o.config = &config_;
  o.clock = &clock_;
  AdminApi api(o);
  http::ServerOptions so;
  so.port = 0;
  so.threads = 1;
  so.max_body_bytes = 1024;
  so.name = "admin";
  so.thread_name = "sy-admin-io";
  auto server = http::Server::Start(so, &api);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const uint16_t port = (*server)->port();

  auto send = [&](http::Request req) {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    req.set(bhttp::field::host, "127.0.0.1");
    req.prepare_payload();
    bhttp::write(socket, req);
    boost::beast::flat_buffer buffer;
    http::Response res;
    boost::system::error_code ec;
    bhttp::read(socket, buffer, res, ec);
    return res;
  };
  auto res =
      send(Req(bhttp::verb::post, "/api/v1/login", R"({"user":"vi","password":"vi-password"})"));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  std::string cookie(res[bhttp::field::set_cookie]);
  auto req = Req(bhttp::verb::get, "/api/v1/session");
  req.set(bhttp::field::cookie, "other=1; " + cookie.substr(0, cookie.find(';')));
  res = send(req);
  EXPECT_EQ(res.result_int(), 200u) << res.body();
  res = send(Req(bhttp::verb::post, "/api/v1/login", std::string(4096, ' ')));
  EXPECT_EQ(res.result_int(), 413u);
  EXPECT_EQ(ErrorCode(res), "request_too_large");
  (*server)->Stop();
}

// ---------------------------------------------------------------- the live view

// A client of GET /api/v1/live on a real listener: reads what arrives, with a deadline.
class LiveClient {
 public:
  LiveClient(uint16_t port, const std::string& target, const std::string& token) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    std::string req =
        "GET " + target + " HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + token + "\r\n\r\n";
    EXPECT_EQ(::send(fd_, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  }
  ~LiveClient() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Reads until `what` has arrived (true) or `wait` passed or the server closed (false).
  bool WaitFor(const std::string& what, std::chrono::milliseconds wait = 5s) {
    auto until = std::chrono::steady_clock::now() + wait;
    while (got.find(what) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) return got.find(what) != std::string::npos;
      got.append(buf, static_cast<size_t>(n));
    }
    return true;
  }
  // The data of every SSE event named `event` received so far.
  std::vector<json::value> Events(const std::string& event) const {
    std::vector<json::value> out;
    const std::string mark = "event: " + event + "\ndata: ";
    for (size_t at = got.find(mark); at != std::string::npos; at = got.find(mark, at + 1)) {
      size_t start = at + mark.size(), end = got.find('\n', start);
      if (end == std::string::npos) break;
      out.push_back(json::parse(got.substr(start, end - start)));
    }
    return out;
  }
  std::string got;

 private:
  int fd_ = -1;
};

class LiveViewTest : public AdminApiTest {
 protected:
  void StartLive(size_t max_streams, double rate, int heartbeat_ms = 15'000) {
    AdminApiOptions o;
    o.credentials = credentials_.get();
    o.audit = audit_.get();
    o.config = &config_;
    o.clock = &clock_;
    o.live_feed = &feed_;
    o.live.max_streams = max_streams;
    o.live.max_per_second = rate;
    o.live.heartbeat_ms = heartbeat_ms;
    live_api_ = std::make_unique<AdminApi>(o);
    http::ServerOptions so;
    so.threads = 1;
    so.name = "admin";
    so.thread_name = "sy-admin-io";
    auto server = http::Server::Start(so, live_api_.get());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }
  void TearDown() override {
    if (server_) server_->Stop();
    live_api_.reset();
  }
  // Publishes `n` delivery outcomes for destination `hook`, as a destination stream does.
  size_t PublishDelivered(size_t n) {
    const int64_t now = clock_.Now().value();
    size_t admitted = feed_.Admit(observe::TopicKind::kDestination, "hook", n, now);
    std::vector<observe::LiveRecord> records;
    for (size_t i = 0; i < admitted; ++i) {
      auto r =
          observe::LiveRecord::Of(observe::Stage::kDelivered, now, "web", "m" + std::to_string(i),
                                  R"({"type":"track","event":"Signed Up","n":1})");
      r.destination = "hook";
      r.http_status = 200;
      records.push_back(std::move(r));
    }
    feed_.Publish(observe::TopicKind::kDestination, "hook", std::move(records));
    return admitted;
  }
  bool WaitForSubscribers(size_t n) {
    for (int i = 0; i < 500 && feed_.subscribers() != n; ++i)
      std::this_thread::sleep_for(10ms);
    return feed_.subscribers() == n;
  }
  uint16_t port() const { return server_->port(); }

  observe::LiveFeed feed_;
  std::unique_ptr<AdminApi> live_api_;
  std::unique_ptr<http::Server> server_;
};

TEST_F(LiveViewTest, RecordsStreamAsServerSentEventsWithPayloadsOnlyForViewPayloads) {
  StartLive(4, 100, /*heartbeat_ms=*/300);
  LiveClient editor(port(), "/api/v1/live?destination=hook", tokens_[Role::kEditor]);
  LiveClient viewer(port(), "/api/v1/live?destination=hook", tokens_[Role::kViewer]);
  ASSERT_TRUE(editor.WaitFor("event: hello\n"));
  ASSERT_TRUE(viewer.WaitFor("event: hello\n"));
  ASSERT_TRUE(WaitForSubscribers(2));
  EXPECT_NE(editor.got.find("Content-Type: text/event-stream\r\n"), std::string::npos);
  EXPECT_NE(editor.got.find("Cache-Control: no-store\r\n"), std::string::npos);
  EXPECT_NE(editor.got.find("Connection: close\r\n"), std::string::npos);
  json::value hello = editor.Events("hello").at(0);
  EXPECT_EQ(hello.at("max_per_second").as_double(), 100.0);
  EXPECT_EQ(hello.at("topic").at("name").as_string(), "hook");
  EXPECT_EQ(hello.at("topic").at("kind").as_string(), "destination");
  EXPECT_TRUE(hello.at("payloads").as_bool());
  EXPECT_FALSE(viewer.Events("hello").at(0).at("payloads").as_bool());

  ASSERT_EQ(PublishDelivered(1), 1u);
  ASSERT_TRUE(editor.WaitFor("event: record\n"));
  ASSERT_TRUE(viewer.WaitFor("event: record\n"));
  json::value r = editor.Events("record").at(0);
  EXPECT_EQ(r.at("stage").as_string(), "delivered");
  EXPECT_EQ(r.at("messageId").as_string(), "m0");
  EXPECT_EQ(r.at("event").as_string(), "Signed Up");
  EXPECT_EQ(r.at("status").as_int64(), 200);
  EXPECT_EQ(r.at("payload").at("n").as_int64(), 1);
  json::value vr = viewer.Events("record").at(0);
  EXPECT_EQ(vr.at("messageId").as_string(), "m0");
  EXPECT_FALSE(vr.as_object().contains("payload"));
  EXPECT_EQ(viewer.got.find("Signed Up\",\"n\""), std::string::npos);
  // Nothing else to say: a heartbeat comment keeps the connection warm.
  EXPECT_TRUE(editor.WaitFor(": heartbeat\n\n", 3s));
  // The client leaving frees its subscription and its slot.
  editor.Close();
  EXPECT_TRUE(WaitForSubscribers(1));
  EXPECT_EQ(live_api_->live_streams(), 1u);
}

TEST_F(LiveViewTest, SampledRecordsAreCountedInTheStream) {
  StartLive(4, /*rate=*/5);
  LiveClient c(port(), "/api/v1/live?destination=hook", tokens_[Role::kAdmin]);
  ASSERT_TRUE(c.WaitFor("event: hello\n"));
  ASSERT_TRUE(WaitForSubscribers(1));
  EXPECT_EQ(PublishDelivered(50), 5u);  // the burst is one second's worth
  ASSERT_TRUE(c.WaitFor("event: dropped\n"));
  ASSERT_TRUE(c.WaitFor("\"total\":45}"));
  ASSERT_TRUE(c.WaitFor("\"messageId\":\"m4\""));
  EXPECT_EQ(c.Events("record").size(), 5u);
  json::value d = c.Events("dropped").back();
  EXPECT_EQ(d.at("total").as_int64(), 45);
}

TEST_F(LiveViewTest, StreamsPastTheCapAre503WithRetryAfterUntilOneEnds) {
  StartLive(/*max_streams=*/2, 10);
  LiveClient a(port(), "/api/v1/live?destination=hook", tokens_[Role::kViewer]);
  LiveClient b(port(), "/api/v1/live?source=web", tokens_[Role::kViewer]);
  ASSERT_TRUE(a.WaitFor("event: hello\n"));
  ASSERT_TRUE(b.WaitFor("event: hello\n"));
  LiveClient c(port(), "/api/v1/live?destination=hook", tokens_[Role::kViewer]);
  ASSERT_TRUE(c.WaitFor("too_many_streams"));
  EXPECT_EQ(c.got.rfind("HTTP/1.1 503", 0), 0u) << c.got;
  EXPECT_NE(c.got.find("Retry-After: 5\r\n"), std::string::npos) << c.got;
  a.Close();
  bool reopened = false;
  for (int i = 0; i < 50 && !reopened; ++i) {
    std::this_thread::sleep_for(50ms);
    LiveClient d(port(), "/api/v1/live?destination=hook", tokens_[Role::kViewer]);
    reopened = d.WaitFor("event: hello\n", 2s);
  }
  EXPECT_TRUE(reopened);
}

TEST_F(LiveViewTest, QueriesNamingNotExactlyOneTopicAre400) {
  StartLive(4, 10);
  for (const char* target : {"/api/v1/live", "/api/v1/live?source=web&destination=hook",
                             "/api/v1/live?source=%2e%2e", "/api/v1/live?source="}) {
    auto res = WithToken(Role::kAdmin, bhttp::verb::get, target);  // no live feed here: checked
    auto req = Req(bhttp::verb::get, target);
    req.set(bhttp::field::authorization, "Bearer " + tokens_[Role::kAdmin]);
    res = live_api_->Serve(req, {"127.0.0.1"});
    EXPECT_EQ(res.result_int(), 400u) << target;
    EXPECT_EQ(ErrorCode(res), "invalid_value") << target;
    EXPECT_FALSE(ErrorField(res).empty()) << target;
  }
  // Without a feed the route answers 503.
  auto res = WithToken(Role::kAdmin, bhttp::verb::get, "/api/v1/live?source=web");
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_EQ(ErrorCode(res), "live_unavailable");
}

// ---------------------------------------------------------------- dead letters

ApiResult Ok(std::string body) {
  ApiResult r;
  r.body = std::move(body);
  return r;
}

class FakeDeadLetterApi final : public DeadLetterApi {
 public:
  ApiResult ListDeadLetters(std::string_view destination, size_t limit, std::string_view after,
                            bool show_payloads) override {
    calls.push_back("list " + std::string(destination) + " " + std::to_string(limit) + " " +
                    std::string(after) + (show_payloads ? " payloads" : ""));
    return Ok(R"({"entries":[],"total":0,"next_after":null,"skipped_bytes":0})");
  }
  ApiResult RedriveDeadLetters(const Actor& actor, std::string_view destination,
                               const std::vector<std::string>* ids) override {
    calls.push_back("redrive " + std::string(destination) + " " + actor.name + " " +
                    (ids ? std::to_string(ids->size()) : "all"));
    return Ok(R"({"delivered":1,"kept":0,"not_found":[]})");
  }
  ApiResult PurgeDeadLetters(const Actor& actor, std::string_view destination,
                             const std::vector<std::string>& ids) override {
    calls.push_back("purge " + std::string(destination) + " " + actor.name + " " +
                    std::to_string(ids.size()));
    return Ok(R"({"purged":2,"not_found":[]})");
  }
  std::vector<std::string> calls;
};

TEST_F(AdminApiTest, DeadLetterRoutesCheckTheirInputAndAuditChanges) {
  FakeDeadLetterApi dlq;
  AdminApiOptions o;
  o.credentials = credentials_.get();
  o.audit = audit_.get();
  o.clock = &clock_;
  o.dead_letters = &dlq;
  o.start_worker = false;
  api_ = std::make_unique<AdminApi>(o);
  const std::string base = "/api/v1/destinations/hook/dlq";

  auto res = WithToken(Role::kViewer, bhttp::verb::get, base + "?limit=5&after=abc");
  EXPECT_EQ(res.result_int(), 200u) << res.body();
  res = WithToken(Role::kEditor, bhttp::verb::get, base);
  EXPECT_EQ(res.result_int(), 200u);
  ASSERT_EQ(dlq.calls.size(), 2u);
  EXPECT_EQ(dlq.calls[0], "list hook 5 abc");  // a viewer: no payloads
  EXPECT_EQ(dlq.calls[1], "list hook 100  payloads");
  for (const char* bad : {"0", "1001", "x", "-1"}) {
    res = WithToken(Role::kViewer, bhttp::verb::get, base + "?limit=" + bad);
    EXPECT_EQ(res.result_int(), 400u) << bad;
    EXPECT_EQ(ErrorField(res), "limit");
  }

  // Redrive: no body or {} is every letter; ids select.
  res = WithToken(Role::kEditor, bhttp::verb::post, base + "/redrive");
  EXPECT_EQ(res.result_int(), 200u) << res.body();
  res = WithToken(Role::kEditor, bhttp::verb::post, base + "/redrive", R"({"ids":["a","b"]})");
  EXPECT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_EQ(dlq.calls[2], "redrive hook token:editor-token all");
  EXPECT_EQ(dlq.calls[3], "redrive hook token:editor-token 2");
  // Purge needs ids.
  res = WithToken(Role::kEditor, bhttp::verb::delete_, base, R"({"ids":["a","b"]})");
  EXPECT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_EQ(dlq.calls[4], "purge hook token:editor-token 2");
  const size_t calls = dlq.calls.size();
  struct Bad {
    bhttp::verb method;
    std::string path, body, code, field;
  };
  std::string many = "[";
  for (int i = 0; i <= 10'000; ++i)
    many += std::string(i ? "," : "") + "\"x\"";
  many += "]";
  for (const Bad& b : std::vector<Bad>{
           {bhttp::verb::delete_, base, "", "bad_json", ""},
           {bhttp::verb::delete_, base, "{}", "missing_key", "ids"},
           {bhttp::verb::delete_, base, R"({"ids":[]})", "missing_key", "ids"},
           {bhttp::verb::delete_, base, R"({"ids":"a"})", "invalid_type", "ids"},
           {bhttp::verb::delete_, base, R"({"ids":[1]})", "invalid_type", "ids"},
           {bhttp::verb::delete_, base, R"({"ids":["a"],"all":true})", "unknown_key", "all"},
           {bhttp::verb::post, base + "/redrive", "{", "bad_json", ""},
           {bhttp::verb::post, base + "/redrive", R"({"id":["a"]})", "unknown_key", "id"},
           {bhttp::verb::post, base + "/redrive", R"({"ids":)" + many + "}", "invalid_value",
            "ids"},
       }) {
    res = WithToken(Role::kEditor, b.method, b.path, b.body);
    EXPECT_EQ(res.result_int(), 400u) << b.body.substr(0, 40);
    EXPECT_EQ(ErrorCode(res), b.code) << b.body.substr(0, 40);
    if (!b.field.empty()) {
      EXPECT_EQ(ErrorField(res), b.field) << b.body.substr(0, 40);
    }
  }
  EXPECT_EQ(dlq.calls.size(), calls);  // refused requests reach nothing
  // Viewers change nothing.
  EXPECT_EQ(WithToken(Role::kViewer, bhttp::verb::post, base + "/redrive").result_int(), 403u);
  EXPECT_EQ(dlq.calls.size(), calls);

  std::vector<std::string> actions;
  for (const auto& e : AuditEntries())
    if (e.at("action").as_string().starts_with("dlq."))
      actions.emplace_back(e.at("action").as_string());
  EXPECT_EQ(actions, (std::vector<std::string>{"dlq.purge", "dlq.redrive", "dlq.redrive"}));

  api_ = MakeApi(&config_);  // no dead-letter side: 503
  res = WithToken(Role::kViewer, bhttp::verb::get, base);
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_EQ(ErrorCode(res), "dlq_unavailable");
}

// ---------------------------------------------------------------- replays

class FakeReplayApi final : public ReplayApi {
 public:
  ApiResult StartReplay(const Actor& actor, const ReplayRequest& r) override {
    started.push_back(r);
    ApiResult res = Ok(R"({"id":"r1","state":"running"})");
    res.http_status = 202;
    (void)actor;
    return res;
  }
  ApiResult ListReplays() override { return Ok(R"({"replays":[]})"); }
  ApiResult GetReplay(std::string_view id) override {
    ApiResult res = Ok(R"({"id":"r1"})");
    if (id != "r1") res.http_status = 404;
    return res;
  }
  ApiResult CancelReplay(const Actor&, std::string_view id) override {
    cancelled.emplace_back(id);
    return Ok(R"({"id":"r1","state":"running"})");
  }
  std::vector<ReplayRequest> started;
  std::vector<std::string> cancelled;
};

TEST_F(AdminApiTest, ReplayRoutesCheckTheirInputAndAuditChanges) {
  FakeReplayApi replays;
  AdminApiOptions o;
  o.credentials = credentials_.get();
  o.audit = audit_.get();
  o.clock = &clock_;
  o.replays = &replays;
  o.start_worker = false;
  api_ = std::make_unique<AdminApi>(o);
  auto res = WithToken(Role::kEditor, bhttp::verb::post, "/api/v1/replays",
                       R"({"destination":"hook","source":"web","from":"2026-12-01T00:00:00Z",)"
                       R"("to":"2026-12-02T00:00:00Z","rate":500})");
  ASSERT_EQ(res.result_int(), 202u) << res.body();
  ASSERT_EQ(replays.started.size(), 1u);
  const ReplayRequest& r = replays.started[0];
  EXPECT_EQ(r.destination, "hook");
  EXPECT_EQ(r.source, "web");
  EXPECT_EQ(*r.from_ms, 1796083200000);  // 2026-12-01T00:00:00Z
  EXPECT_EQ(*r.to_ms - *r.from_ms, 86'400'000);
  EXPECT_EQ(r.rate, 500);
  res = WithToken(Role::kEditor, bhttp::verb::post, "/api/v1/replays", R"({"destination":"h"})");
  ASSERT_EQ(res.result_int(), 202u);
  EXPECT_FALSE(replays.started[1].from_ms);
  EXPECT_EQ(replays.started[1].rate, 0);
  struct Bad {
    std::string body, code, field;
  };
  for (const Bad& b : std::vector<Bad>{
           {"[]", "bad_json", ""},
           {"{}", "missing_key", "destination"},
           {R"({"destination":1})", "invalid_type", "destination"},
           {R"({"destination":"h","when":"now"})", "unknown_key", "when"},
           {R"({"destination":"h","from":"yesterday"})", "invalid_value", "from"},
           {R"({"destination":"h","from":"2026-12-02T00:00:00Z","to":"2026-12-01T00:00:00Z"})",
            "invalid_value", "to"},
           {R"({"destination":"h","rate":-1})", "invalid_value", "rate"},
           {R"({"destination":"h","rate":1.5})", "invalid_type", "rate"},
           {R"({"destination":"h","rate":"fast"})", "invalid_type", "rate"},
       }) {
    res = WithToken(Role::kEditor, bhttp::verb::post, "/api/v1/replays", b.body);
    EXPECT_EQ(res.result_int(), 400u) << b.body;
    EXPECT_EQ(ErrorCode(res), b.code) << b.body;
    if (!b.field.empty()) {
      EXPECT_EQ(ErrorField(res), b.field) << b.body;
    }
  }
  EXPECT_EQ(replays.started.size(), 2u);
  EXPECT_EQ(WithToken(Role::kViewer, bhttp::verb::get, "/api/v1/replays").result_int(), 200u);
  EXPECT_EQ(WithToken(Role::kViewer, bhttp::verb::get, "/api/v1/replays/r1").result_int(), 200u);
  EXPECT_EQ(WithToken(Role::kViewer, bhttp::verb::get, "/api/v1/replays/r9").result_int(), 404u);
  EXPECT_EQ(WithToken(Role::kViewer, bhttp::verb::post, "/api/v1/replays/r1/cancel").result_int(),
            403u);
  EXPECT_EQ(WithToken(Role::kEditor, bhttp::verb::post, "/api/v1/replays/r1/cancel").result_int(),
            200u);
  EXPECT_EQ(replays.cancelled, std::vector<std::string>{"r1"});
  std::vector<std::string> actions;
  for (const auto& e : AuditEntries())
    if (e.at("action").as_string().starts_with("replay."))
      actions.emplace_back(e.at("action").as_string());
  EXPECT_EQ(actions, (std::vector<std::string>{"replay.cancel", "replay.start", "replay.start"}));
}

// ---------------------------------------------------------------- warehouse

class FakeWarehouseApi final : public WarehouseApi {
 public:
  ApiResult SyncWarehouse(const Actor& actor, std::string_view destination) override {
    synced.push_back(std::string(destination) + " " + actor.name);
    ApiResult r = Ok(R"({"destination":"dw","loaded":3,"report":{}})");
    if (destination != "dw") r.http_status = 404;
    return r;
  }
  ApiResult Warehouses(std::string_view destination) override {
    listed.emplace_back(destination);
    ApiResult r = Ok(R"({"warehouses":[{"destination":"dw","loads":[]}]})");
    if (!destination.empty() && destination != "dw") r.http_status = 404;
    return r;
  }
  std::vector<std::string> synced, listed;
};

TEST_F(AdminApiTest, WarehouseRouteAnswersEveryRoleAndFiltersByDestination) {
  FakeWarehouseApi wh;
  AdminApiOptions o;
  o.credentials = credentials_.get();
  o.audit = audit_.get();
  o.clock = &clock_;
  o.start_worker = false;
  api_ = std::make_unique<AdminApi>(o);
  EXPECT_EQ(WithToken(Role::kViewer, bhttp::verb::get, "/api/v1/warehouse").result_int(), 503u);
  o.warehouse = &wh;
  api_ = std::make_unique<AdminApi>(o);
  auto res = WithToken(Role::kViewer, bhttp::verb::get, "/api/v1/warehouse");
  ASSERT_EQ(res.result_int(), 200u);
  EXPECT_EQ(json::parse(res.body()).at("warehouses").as_array().size(), 1u);
  EXPECT_EQ(
      WithToken(Role::kViewer, bhttp::verb::get, "/api/v1/warehouse?destination=x").result_int(),
      404u);
  EXPECT_EQ(Call(Req(bhttp::verb::get, "/api/v1/warehouse")).result_int(), 401u);
  EXPECT_EQ(wh.listed, (std::vector<std::string>{"", "x"}));
}

TEST_F(AdminApiTest, WarehouseSyncChecksItsBodyAndIsAudited) {
  FakeWarehouseApi wh;
  AdminApiOptions o;
  o.credentials = credentials_.get();
  o.audit = audit_.get();
  o.clock = &clock_;
  o.warehouse = &wh;
  o.start_worker = false;
  api_ = std::make_unique<AdminApi>(o);
  const std::string path = "/api/v1/destinations/dw/sync";
  EXPECT_EQ(WithToken(Role::kEditor, bhttp::verb::post, path).result_int(), 200u);
  EXPECT_EQ(WithToken(Role::kEditor, bhttp::verb::post, path, "{}").result_int(), 200u);
  auto res = WithToken(Role::kEditor, bhttp::verb::post, path, R"({"now":true})");
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_EQ(ErrorField(res), "now");
  EXPECT_EQ(WithToken(Role::kEditor, bhttp::verb::post, path, "[").result_int(), 400u);
  EXPECT_EQ(WithToken(Role::kViewer, bhttp::verb::post, path).result_int(), 403u);
  EXPECT_EQ(WithToken(Role::kEditor, bhttp::verb::post, "/api/v1/destinations/x/sync").result_int(),
            404u);
  EXPECT_EQ(wh.synced, (std::vector<std::string>{"dw token:editor-token", "dw token:editor-token",
                                                 "x token:editor-token"}));
  size_t audited = 0;
  for (const auto& e : AuditEntries())
    audited += e.at("action").as_string() == "warehouse.sync";
  EXPECT_EQ(audited, 2u);  // the 404 changed nothing
}

}  // namespace
}  // namespace sy::admin
