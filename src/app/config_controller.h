// ConfigController: the server's configuration as the file plus the console's overlay
// (config/overlay.h), the admin API's configuration calls (admin::ConfigApi), and live apply.
//
// The effective config is MergeOverlay(file, overlay), checked whole — the config reader and
// every destination's settings table, as `check-config` checks a file — before anything is
// stored. A change made through the API is: checked on the merged result (a change that would
// make the config invalid answers 400 naming the field, and nothing is stored), stored durably
// (OverlayStore::Store; on error nothing changes), then applied to the running App
// (App::ApplyConfig: sources at once, destination streams stopped/started as SIGHUP does), all
// before the call returns. ReloadFile (SIGHUP) re-reads the file and merges the overlay again.
//
// Versions: every object has a version "<n>-<digest>" (n: the overlay version of the object's
// last change through the API, 0 for a file-only object; digest: of its effective content, so a
// file change moves it too). The whole config has one as well ("<overlay version>-<digest>").
// ApiResult::etag carries it quoted (an HTTP entity tag); the resource's "version" unquoted;
// If-Match accepts either, or "*". A mismatch answers 412 and changes nothing.
//
// Write keys: a source made through the API gets a random key, returned once (create, rotate);
// only its SHA-256 is stored. Rotation keeps the old key working for a grace period (default
// kDefaultRotationGraceMs, or per call with RotateSourceKeyWithGrace) as
// `previous_write_key: {sha256, expires}` — one previous key per source: rotating again during
// a grace period ends the older key's at once.
//
// Thread safety: every method may be called from any thread; calls are serialised by one mutex
// (a change is checked, stored and applied under it, so concurrent edits are ordered and an
// If-Match sees the version the previous change left).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "admin/config_api.h"
#include "base/clock.h"
#include "base/env.h"
#include "base/status.h"
#include "config/config.h"
#include "config/overlay.h"

namespace sy::app {

class App;

// The file merged with the overlay and checked whole.
struct EffectiveConfig {
  config::Config config;
  config::Overlay overlay;
  std::string yaml;  // the merged document (config export)
  std::map<std::string, std::map<std::string, std::string>> origins;  // see MergedConfig
  std::vector<std::string> notes;  // orphaned or shadowing overlay entries
};

// Reads the config file and the overlay stored in its data_dir (read-only: no lock; what every
// CLI command and `serve` use) and checks the merged result as `check-config` does. Errors of
// the file alone are reported as the file's ("<file>:<line>: …"); errors that only the overlay's
// entries cause say so and name the overlay file.
Result<EffectiveConfig> LoadEffectiveConfig(const std::string& config_path,
                                            Env* env = Env::Default());

// The ISO-8601 export header plus the merged YAML: what `switchyard config export` prints and
// ConfigApi::ExportYaml returns. Secrets included.
std::string ExportText(const std::string& config_path, const EffectiveConfig& effective);

class ConfigController final : public admin::ConfigApi {
 public:
  // How long a rotated-out write key keeps working by default: a day, time for every client
  // (mobile apps ship slowly, but a web page reloads) to pick up the new key.
  static constexpr int64_t kDefaultRotationGraceMs = 24LL * 3600 * 1000;

  struct Options {
    std::string config_path;
    Env* env = Env::Default();
    // Default: FileOverlayStore at DataDir(data_dir).ConfigOverlay().
    std::unique_ptr<config::OverlayStore> store;
    const Clock* clock = SystemClock::Get();  // expiry times of rotated-out keys
  };

  // Reads the file and the overlay and checks them (LoadEffectiveConfig's errors).
  static Result<std::unique_ptr<ConfigController>> Open(Options options);
  ~ConfigController() override;

  // The current effective config (a copy: it may change once the lock is released).
  EffectiveConfig Effective();

  // From now on changes are applied to `app` (null: to nothing; changes are then refused with
  // 503, the server is stopping).
  void Attach(App* app);

  // SIGHUP: re-reads the file, merges the overlay, checks and applies. On error nothing
  // changes. `ignored` lists the sections that need a restart (App::ApplyConfig).
  Status ReloadFile(std::string* ignored);

  // ConfigApi (src/admin/config_api.h).
  admin::ApiResult ListSources() override;
  admin::ApiResult GetSource(std::string_view name) override;
  admin::ApiResult CreateSource(const admin::Actor& actor, std::string_view body) override;
  admin::ApiResult PatchSource(const admin::Actor& actor, std::string_view name,
                               std::string_view body, std::string_view if_match) override;
  admin::ApiResult DeleteSource(const admin::Actor& actor, std::string_view name) override;
  admin::ApiResult RotateSourceKey(const admin::Actor& actor, std::string_view name) override;
  admin::ApiResult ListDestinations() override;
  admin::ApiResult GetDestination(std::string_view name) override;
  admin::ApiResult CreateDestination(const admin::Actor& actor, std::string_view body) override;
  admin::ApiResult PatchDestination(const admin::Actor& actor, std::string_view name,
                                    std::string_view body, std::string_view if_match) override;
  admin::ApiResult DeleteDestination(const admin::Actor& actor, std::string_view name) override;
  admin::ApiResult ListDestinationTypes() override;
  admin::ApiResult ExportYaml() override;

  // RotateSourceKey with the old key's grace period given (0: the old key stops at once).
  admin::ApiResult RotateSourceKeyWithGrace(const admin::Actor& actor, std::string_view name,
                                            int64_t grace_ms) override;

  // User functions (docs/admin-api.md, "Functions"). PutFunction replaces the whole function
  // (`source`, `settings`, `limits`): compiled first on a scratch engine (400 `compile_error`
  // naming file and line, nothing stored), then stored as an overlay entry with the source
  // inline, then applied (the registry's reload: streams run the new version from their next
  // batch). TestFunction is functions::TestFunction, the code path of `switchyard functions
  // test`.
  admin::ApiResult ListFunctions() override;
  admin::ApiResult GetFunction(std::string_view name) override;
  admin::ApiResult PutFunction(const admin::Actor& actor, std::string_view name,
                               std::string_view body, std::string_view if_match) override;
  admin::ApiResult DeleteFunction(const admin::Actor& actor, std::string_view name) override;
  admin::ApiResult TestFunction(const admin::Actor& actor, std::string_view name,
                                std::string_view body) override;

  // The largest function source PutFunction accepts (and a test's): far above any real
  // function, small beside the admin listener's body limit.
  static constexpr size_t kMaxFunctionSourceBytes = 1 << 20;

 private:
  enum class Kind { kSource, kDestination, kFunction };
  // A function as the API shows it; `with_source`: the JavaScript text too. "" when absent.
  std::string FunctionJson(const std::string& name, bool with_source) const;
  std::string FunctionVersion(const std::string& name) const;

  explicit ConfigController(Options options);
  admin::ApiResult Create(Kind kind, std::string_view body);
  admin::ApiResult Patch(Kind kind, std::string_view name, std::string_view body,
                         std::string_view if_match);
  admin::ApiResult Delete(Kind kind, std::string_view name);
  admin::ApiResult Get(Kind kind, std::string_view name);
  admin::ApiResult List(Kind kind);
  // Checks `next` merged with the file; stores it; applies it; on success makes it current.
  // `name` is the object changed, for naming the field of an error.
  admin::ApiResult Commit(Kind kind, const std::string& name, config::Overlay next,
                          const std::function<admin::ApiResult()>& make_ok);
  std::string ObjectJson(Kind kind, const std::string& name) const;  // "" when absent
  std::string ObjectVersion(Kind kind, const std::string& name) const;
  std::string ConfigVersion() const;
  bool InFile(Kind kind, const std::string& name) const;
  bool Exists(Kind kind, const std::string& name) const;

  std::mutex mu_;
  Options options_;
  std::string file_text_;
  config::Config file_only_;  // the file alone, as last read (which objects it has)
  EffectiveConfig current_;
  App* app_ = nullptr;
};

}  // namespace sy::app
