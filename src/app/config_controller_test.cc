// The admin API's configuration seam against a real App in a temp data_dir: every change is
// checked, stored in the overlay, applied at once (a new write key is accepted by the Tracking
// API on the next request; a new destination delivers) and kept across a restart.
#include "app/config_controller.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "app/app.h"
#include "base/time_format.h"
#include "destinations/registry.h"
#include "tests/support/canned_http_server.h"

namespace sy::app {
namespace {

namespace json = boost::json;

const admin::Actor kAdmin{"alice", "admin"};

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sy_cfgapi_XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// POST /v1/track with `write_key` as HTTP Basic user; the response's status code.
int Track(uint16_t port, const std::string& write_key) {
  namespace b64 = boost::beast::detail::base64;
  std::string user = write_key + ":";
  std::string auth(b64::encoded_size(user.size()), '\0');
  auth.resize(b64::encode(auth.data(), user.data(), user.size()));
  std::string body = R"({"userId":"u1","event":"Signed Up"})";
  std::string req =
      "POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic " + auth +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n" + body;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  (void)!::write(fd, req.data(), req.size());
  std::string res;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
    res.append(buf, static_cast<size_t>(n));
  ::close(fd);
  if (res.size() < 12) return -1;
  return std::atoi(res.c_str() + 9);
}

json::object Body(const admin::ApiResult& r) {
  return json::parse(r.body).as_object();
}

std::string ErrorField(const admin::ApiResult& r) {
  json::object body = Body(r);
  const auto& e = body.at("error").as_object();
  return e.contains("field") ? std::string(e.at("field").as_string()) : "";
}

class ConfigApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sink_ = std::make_unique<testing::CannedHttpServer>(200, "", "ok");
    WriteFile(DefaultFile());
    StartApp();
  }
  void TearDown() override {
    if (app_) app_->Stop();
  }

  std::string DefaultFile() const {
    return "version: 1\nlisten: 127.0.0.1:0\ndata_dir: " + dir_.path() +
           "/data\nio_threads: 1\n"
           "sources:\n  - name: web\n    write_key: wk_web\n  - name: app\n    write_key: wk_app\n"
           "destinations:\n  - name: filehook\n    type: webhook\n    sources: [web]\n"
           "    allow_private_network: true\n    settings:\n      url: " +
           sink_->endpoint() + "/file\n";
  }
  void WriteFile(const std::string& text) { std::ofstream(path()) << text; }
  std::string path() const { return dir_.path() + "/switchyard.yaml"; }

  void StartApp() {
    app_ = std::make_unique<App>();
    ConfigController::Options o;
    o.config_path = path();
    Status s = app_->StartFromFile(std::move(o));
    ASSERT_TRUE(s.ok()) << s.ToString();
    api_ = app_->config_controller();
    ASSERT_NE(api_, nullptr);
  }
  void Restart() {
    app_->Stop();
    app_.reset();
    StartApp();
  }
  uint16_t port() const { return app_->port(); }
  uint64_t OverlayVersion() { return api_->Effective().overlay.version; }

  TempDir dir_;
  std::unique_ptr<testing::CannedHttpServer> sink_;
  std::unique_ptr<App> app_;
  ConfigController* api_ = nullptr;
};

// Create: 201 with the key shown once; the key is accepted by the next request; restart keeps it.
TEST_F(ConfigApiTest, CreatedSourceWorksAtOnceAndSurvivesRestart) {
  auto r = api_->CreateSource(kAdmin, R"({"name":"mobile"})");
  ASSERT_EQ(r.http_status, 201) << r.body;
  std::string key(Body(r).at("write_key").as_string());
  ASSERT_TRUE(key.starts_with("sy_"));
  EXPECT_FALSE(r.etag.empty());
  EXPECT_EQ(r.audit_before, "");
  EXPECT_EQ(r.audit_after.find(key), std::string::npos);  // the audit never holds the key
  EXPECT_EQ(Track(port(), key), 200);
  auto got = api_->GetSource("mobile");
  ASSERT_EQ(got.http_status, 200);
  EXPECT_EQ(got.body.find(key), std::string::npos);
  EXPECT_EQ(Body(got).at("write_key").at("set").as_bool(), true);
  EXPECT_EQ(Body(got).at("origin").at("write_key").as_string(), "console");
  EXPECT_EQ(got.etag, r.etag);
  EXPECT_EQ(api_->CreateSource(kAdmin, R"({"name":"mobile"})").http_status, 409);
  EXPECT_EQ(api_->CreateSource(kAdmin, R"({"name":"web"})").http_status, 409);

  Restart();
  EXPECT_EQ(api_->GetSource("mobile").http_status, 200);
  EXPECT_EQ(Track(port(), key), 200);
  EXPECT_EQ(Track(port(), "wk_web"), 200);
}

// PATCH with If-Match: a stale version is 412 and changes nothing; the switch applies at once.
TEST_F(ConfigApiTest, PatchSourceDisablesAtOnceWithIfMatch) {
  auto got = api_->GetSource("web");
  ASSERT_EQ(got.http_status, 200);
  EXPECT_EQ(Body(got).at("origin").at("write_key").as_string(), "file");
  EXPECT_EQ(Track(port(), "wk_web"), 200);
  auto stale = api_->PatchSource(kAdmin, "web", R"({"enabled":false})", "\"0-000000000000\"");
  EXPECT_EQ(stale.http_status, 412) << stale.body;
  EXPECT_EQ(Track(port(), "wk_web"), 200);
  EXPECT_EQ(OverlayVersion(), 0u);
  auto r = api_->PatchSource(kAdmin, "web", R"({"enabled":false})", got.etag);
  ASSERT_EQ(r.http_status, 200) << r.body;
  EXPECT_EQ(Body(r).at("enabled").as_bool(), false);
  EXPECT_EQ(Body(r).at("origin").at("enabled").as_string(), "console");
  EXPECT_NE(r.etag, got.etag);
  EXPECT_NE(r.audit_before, r.audit_after);
  EXPECT_EQ(Track(port(), "wk_web"), 401);
  EXPECT_EQ(Track(port(), "wk_app"), 200);
  // The old version is stale now.
  EXPECT_EQ(api_->PatchSource(kAdmin, "web", R"({"enabled":true})", got.etag).http_status, 412);
  EXPECT_EQ(api_->PatchSource(kAdmin, "web", R"({"enabled":true})", r.etag).http_status, 200);
  EXPECT_EQ(Track(port(), "wk_web"), 200);
  EXPECT_EQ(api_->PatchSource(kAdmin, "nope", R"({"enabled":true})", "").http_status, 404);
  auto key = api_->PatchSource(kAdmin, "web", R"({"write_key":"mine"})", "");
  EXPECT_EQ(key.http_status, 400);
  EXPECT_EQ(ErrorField(key), "write_key");
}

// Rotation: the new key works at once, the old one during its grace period only.
TEST_F(ConfigApiTest, RotateKeyKeepsTheOldKeyForItsGracePeriod) {
  auto r = api_->RotateSourceKey(kAdmin, "web");
  ASSERT_EQ(r.http_status, 200) << r.body;
  std::string key1(Body(r).at("write_key").as_string());
  EXPECT_EQ(Track(port(), key1), 200);
  EXPECT_EQ(Track(port(), "wk_web"), 200);  // in its 24 h grace
  auto expires = ParseIso8601(Body(r).at("previous_write_key").at("expires").as_string());
  ASSERT_TRUE(expires);
  const int64_t in = expires->value() - SystemClock::Get()->Now().value();
  EXPECT_GT(in, ConfigController::kDefaultRotationGraceMs - 60'000);
  EXPECT_LE(in, ConfigController::kDefaultRotationGraceMs);
  // A rotation without grace ends both older keys at once.
  auto r2 = api_->RotateSourceKeyWithGrace(kAdmin, "web", 0);
  ASSERT_EQ(r2.http_status, 200) << r2.body;
  std::string key2(Body(r2).at("write_key").as_string());
  EXPECT_EQ(Track(port(), key2), 200);
  EXPECT_EQ(Track(port(), key1), 401);
  EXPECT_EQ(Track(port(), "wk_web"), 401);
  // A short grace ends by itself.
  auto r3 = api_->RotateSourceKeyWithGrace(kAdmin, "web", 300);
  ASSERT_EQ(r3.http_status, 200);
  EXPECT_EQ(Track(port(), key2), 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(Track(port(), key2), 401);
  EXPECT_EQ(api_->RotateSourceKey(kAdmin, "nope").http_status, 404);
  Restart();
  EXPECT_EQ(Track(port(), std::string(Body(r3).at("write_key").as_string())), 200);
}

// A change the merged config refuses is a 400 naming the field; nothing is stored.
TEST_F(ConfigApiTest, InvalidChangesAreRefusedNamingTheFieldAndNothingIsStored) {
  auto missing = api_->CreateDestination(kAdmin, R"({"name":"h","type":"webhook"})");
  EXPECT_EQ(missing.http_status, 400);
  EXPECT_EQ(ErrorField(missing), "settings.url") << missing.body;
  auto unknown_setting = api_->CreateDestination(
      kAdmin, R"({"name":"h","type":"webhook","settings":{"url":"http://example.com/","nope":1}})");
  EXPECT_EQ(unknown_setting.http_status, 400);
  EXPECT_EQ(ErrorField(unknown_setting), "settings.nope") << unknown_setting.body;
  EXPECT_EQ(Body(unknown_setting).at("error").at("code").as_string(), "unknown_key");
  auto bad_value =
      api_->PatchDestination(kAdmin, "filehook", R"({"settings":{"max_events":0}})", "");
  EXPECT_EQ(bad_value.http_status, 400);
  EXPECT_EQ(ErrorField(bad_value), "settings.max_events") << bad_value.body;
  auto unknown_key = api_->PatchDestination(kAdmin, "filehook", R"({"colour":"red"})", "");
  EXPECT_EQ(unknown_key.http_status, 400);
  EXPECT_EQ(ErrorField(unknown_key), "colour") << unknown_key.body;
  auto bad_type = api_->CreateDestination(kAdmin, R"({"name":"h","type":"nosuch"})");
  EXPECT_EQ(bad_type.http_status, 400);
  EXPECT_EQ(ErrorField(bad_type), "type") << bad_type.body;
  auto bad_source =
      api_->PatchDestination(kAdmin, "filehook", R"({"sources":["web","ghost"]})", "");
  EXPECT_EQ(bad_source.http_status, 400);
  EXPECT_EQ(ErrorField(bad_source), "sources") << bad_source.body;
  auto bad_name = api_->CreateSource(kAdmin, R"({"name":"no spaces"})");
  EXPECT_EQ(bad_name.http_status, 400);
  EXPECT_EQ(ErrorField(bad_name), "name") << bad_name.body;
  EXPECT_EQ(api_->CreateSource(kAdmin, R"({"name":)").http_status, 400);
  EXPECT_EQ(api_->CreateSource(kAdmin, R"([1])").http_status, 400);
  EXPECT_EQ(OverlayVersion(), 0u);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/data/config-overlay.json"));
}

// A destination made through the API delivers at once; secrets are write-only; the switch and
// delete apply; restart keeps the state.
TEST_F(ConfigApiTest, CreatedDestinationDeliversAndSecretsAreWriteOnly) {
  auto r =
      api_->CreateDestination(kAdmin, R"({"name":"apihook","type":"webhook","sources":["app"],)"
                                      R"("allow_private_network":true,"batch":{"max_wait":"10ms"},)"
                                      R"("settings":{"url":")" +
                                          sink_->endpoint() + R"(/api","secret":"s3cret-value"}})");
  ASSERT_EQ(r.http_status, 201) << r.body;
  EXPECT_EQ(r.body.find("s3cret-value"), std::string::npos);
  EXPECT_EQ(r.audit_after.find("s3cret-value"), std::string::npos);
  EXPECT_EQ(Body(r).at("settings").at("secret").at("set").as_bool(), true);
  EXPECT_EQ(Body(r).at("origin").at("settings.secret").as_string(), "console");
  ASSERT_EQ(Track(port(), "wk_app"), 200);
  auto delivered = [&] {
    for (const auto& line : sink_->request_lines())
      if (line.starts_with("POST /api ")) return true;
    return false;
  };
  for (int i = 0; i < 200 && !delivered(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  EXPECT_TRUE(delivered());
  // The masked secret sent back keeps the secret; a string replaces it.
  auto got = api_->GetDestination("apihook");
  auto patch = api_->PatchDestination(
      kAdmin, "apihook", R"({"enabled":false,"settings":{"secret":{"set":true}}})", got.etag);
  ASSERT_EQ(patch.http_status, 200) << patch.body;
  EXPECT_EQ(Body(patch).at("enabled").as_bool(), false);
  EXPECT_EQ(Body(patch).at("settings").at("secret").at("set").as_bool(), true);
  EXPECT_NE(api_->ExportYaml().body.find("s3cret-value"), std::string::npos);
  auto list = api_->ListDestinations();
  ASSERT_EQ(list.http_status, 200);
  EXPECT_EQ(list.body.find("s3cret-value"), std::string::npos);
  EXPECT_EQ(Body(list).at("destinations").as_array().size(), 2u);
  Restart();
  auto after = api_->GetDestination("apihook");
  ASSERT_EQ(after.http_status, 200);
  EXPECT_EQ(Body(after).at("enabled").as_bool(), false);
  auto del = api_->DeleteDestination(kAdmin, "apihook");
  EXPECT_EQ(del.http_status, 204);
  EXPECT_FALSE(del.audit_before.empty());
  EXPECT_EQ(api_->GetDestination("apihook").http_status, 404);
  EXPECT_EQ(api_->DeleteDestination(kAdmin, "apihook").http_status, 404);
}

// The http type's nested mappings go through the API as JSON: typed values kept, the api_key
// secret write-only, a bad mapping refused naming its key path.
TEST_F(ConfigApiTest, MappedHttpDestinationTakesNestedSettings) {
  auto r = api_->CreateDestination(
      kAdmin, R"({"name":"mapped","type":"http","sources":["app"],"allow_private_network":true,)"
              R"("batch":{"max_wait":"10ms"},"settings":{"url":")" +
                  sink_->endpoint() +
                  R"(/m/{{ userId }}","api_key":"k-secret-1",)"
                  R"("mappings":{"track":{"body":{"n":7,"s":"seven","e":"{{ event }}"}}}}})");
  ASSERT_EQ(r.http_status, 201) << r.body;
  EXPECT_EQ(r.body.find("k-secret-1"), std::string::npos);
  EXPECT_EQ(Body(r).at("settings").at("api_key").at("set").as_bool(), true);
  EXPECT_EQ(Body(r).at("settings").at("mappings"),
            json::parse(R"({"track":{"body":{"n":7,"s":"seven","e":"{{ event }}"}}})"));
  ASSERT_EQ(Track(port(), "wk_app"), 200);
  auto delivered = [&] {
    for (const auto& line : sink_->request_lines())
      if (line.starts_with("POST /m/")) return true;
    return false;
  };
  for (int i = 0; i < 200 && !delivered(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  EXPECT_TRUE(delivered());
  auto bad = api_->PatchDestination(
      kAdmin, "mapped",
      R"({"settings":{"mappings":{"track":{"body":{"x":"{{ sha265(event) }}"}}}}})", "");
  EXPECT_EQ(bad.http_status, 400) << bad.body;
  EXPECT_NE(bad.body.find("mappings.track.body.x: unknown function 'sha265'"), std::string::npos)
      << bad.body;
  Restart();
  EXPECT_EQ(Body(api_->GetDestination("mapped")).at("settings").at("mappings"),
            json::parse(R"({"track":{"body":{"n":7,"s":"seven","e":"{{ event }}"}}})"));
}

// A source still routed to is 409; a file object deleted through the API stays deleted
// (tombstone) across restarts; deleting a console-made one leaves nothing.
TEST_F(ConfigApiTest, DeleteRefusesReferencedSourcesAndTombstonesFileObjects) {
  auto referenced = api_->DeleteSource(kAdmin, "web");
  EXPECT_EQ(referenced.http_status, 409) << referenced.body;
  EXPECT_EQ(Body(referenced).at("error").at("code").as_string(), "still_referenced");
  ASSERT_EQ(api_->DeleteDestination(kAdmin, "filehook").http_status, 204);
  ASSERT_EQ(api_->DeleteSource(kAdmin, "web").http_status, 204);
  EXPECT_EQ(Track(port(), "wk_web"), 401);
  EXPECT_EQ(api_->GetSource("web").http_status, 404);
  Restart();
  EXPECT_EQ(api_->GetSource("web").http_status, 404);
  EXPECT_EQ(api_->GetDestination("filehook").http_status, 404);
  EXPECT_EQ(Track(port(), "wk_web"), 401);
  EXPECT_EQ(api_->Effective().overlay.sources.at("web").op, config::OverlayEntry::Op::kDelete);
  ASSERT_EQ(api_->CreateSource(kAdmin, R"({"name":"temp"})").http_status, 201);
  ASSERT_EQ(api_->DeleteSource(kAdmin, "temp").http_status, 204);
  EXPECT_FALSE(api_->Effective().overlay.sources.contains("temp"));
}

// `config export` round-trips: the exported YAML passes check-config's checks, and loading it
// with the same overlay gives the same export (a fixed point).
TEST_F(ConfigApiTest, ExportRoundTripsThroughCheckConfig) {
  ASSERT_EQ(api_->CreateSource(kAdmin, R"({"name":"mobile","rate_limit":{"events_per_second":9}})")
                .http_status,
            201);
  ASSERT_EQ(api_->PatchDestination(kAdmin, "filehook",
                                   R"({"sources":["web","mobile"],"retry_window":"2h"})", "")
                .http_status,
            200);
  ASSERT_EQ(api_->DeleteSource(kAdmin, "app").http_status, 204);
  auto exported = api_->ExportYaml();
  ASSERT_EQ(exported.http_status, 200);
  EXPECT_EQ(exported.content_type, "application/yaml");
  const std::string copy = dir_.path() + "/exported.yaml";
  std::ofstream(copy) << exported.body;
  auto checked = destinations::LoadConfig(copy);  // check-config's checks of a file
  ASSERT_TRUE(checked.ok()) << checked.status().ToString() << "\n" << exported.body;
  ASSERT_EQ(checked->sources.size(), 2u);
  EXPECT_EQ(checked->sources[1].name, "mobile");
  EXPECT_EQ(checked->sources[1].rate_limit_events_per_second, 9);
  ASSERT_EQ(checked->destinations.size(), 1u);
  EXPECT_EQ(checked->destinations[0].retry_window_ms, 2 * 3600'000);
  EXPECT_EQ(checked->destinations[0].sources, (std::vector<std::string>{"web", "mobile"}));
  auto again = LoadEffectiveConfig(copy);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->yaml, api_->Effective().yaml);
}

// The file changes under the overlay (SIGHUP): the overlay's fields still win; a patch of an
// object the file dropped is an orphan, reported and droppable; a file change the overlay no
// longer fits is refused whole.
TEST_F(ConfigApiTest, FileChangesUnderTheOverlay) {
  ASSERT_EQ(api_->PatchDestination(kAdmin, "filehook", R"({"enabled":false})", "").http_status,
            200);
  ASSERT_EQ(api_->CreateDestination(
                    kAdmin, R"({"name":"apihook","type":"webhook",)"
                            R"("sources":["app"],"settings":{"url":"http://example.com/"}})")
                .http_status,
            201);
  // The file changes a field the console also set, and one it did not.
  std::string changed = DefaultFile();
  changed.replace(changed.find("sources: [web]"), 14, "sources: [web, app]\n    enabled: true");
  WriteFile(changed);
  std::string ignored;
  ASSERT_TRUE(api_->ReloadFile(&ignored).ok());
  auto got = Body(api_->GetDestination("filehook"));
  EXPECT_EQ(got.at("enabled").as_bool(), false);  // the console's value wins
  EXPECT_EQ(got.at("sources").as_array().size(), 2u);
  EXPECT_EQ(got.at("origin").at("sources").as_string(), "file");
  // The file drops the destination the console patched: an orphan, noted, droppable.
  std::string dropped = DefaultFile();
  dropped = dropped.substr(0, dropped.find("destinations:"));
  WriteFile(dropped);
  ASSERT_TRUE(api_->ReloadFile(&ignored).ok());
  EXPECT_EQ(api_->GetDestination("filehook").http_status, 404);
  auto notes = api_->Effective().notes;
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("destinations/filehook: changes a destination the file no longer has"),
            std::string::npos);
  EXPECT_NE(api_->ExportYaml().body.find("# overlay: destinations/filehook"), std::string::npos);
  EXPECT_EQ(api_->DeleteDestination(kAdmin, "filehook").http_status, 204);
  EXPECT_TRUE(api_->Effective().notes.empty());
  // The file drops a source the console's destination routes: refused, nothing changes.
  WriteFile(dropped.substr(0, dropped.find("  - name: app")));
  Status refused = api_->ReloadFile(&ignored);
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("no source named 'app'"), std::string::npos)
      << refused.message();
  EXPECT_EQ(Track(port(), "wk_app"), 200);
  EXPECT_EQ(api_->GetDestination("apihook").http_status, 200);
}

TEST_F(ConfigApiTest, CatalogueListsEveryTypeWithItsSettingsTable) {
  auto r = api_->ListDestinationTypes();
  ASSERT_EQ(r.http_status, 200);
  const json::object* webhook = nullptr;
  const json::object catalogue = Body(r);
  for (const auto& t : catalogue.at("types").as_array())
    if (t.at("type").as_string() == "webhook") webhook = &t.as_object();
  ASSERT_NE(webhook, nullptr);
  EXPECT_EQ(webhook->at("display_name").as_string(), "Webhooks");
  bool url = false, secret = false;
  for (const auto& s : webhook->at("settings").as_array()) {
    if (s.at("name").as_string() == "url") {
      url = s.at("required").as_bool() && s.at("type").as_string() == "url";
      EXPECT_TRUE(s.at("default").is_null());
    }
    if (s.at("name").as_string() == "secret") secret = s.at("secret").as_bool();
  }
  EXPECT_TRUE(url);
  EXPECT_TRUE(secret);
}

// Concurrent edits are serialised: of N patches racing with the same If-Match, one wins.
TEST_F(ConfigApiTest, ConcurrentEditsWithTheSameVersionOneWins) {
  std::string etag = api_->GetSource("app").etag;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0}, conflict{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      std::string body = R"({"rate_limit":{"events_per_second":)" + std::to_string(10 + i) + "}}";
      int status = api_->PatchSource(kAdmin, "app", body, etag).http_status;
      (status == 200 ? ok : conflict)++;
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(conflict.load(), 3);
  EXPECT_EQ(OverlayVersion(), 1u);
}

}  // namespace
}  // namespace sy::app
