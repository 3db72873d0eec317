#include "app/config_controller.h"

#include <boost/json.hpp>

#include <cctype>
#include <charconv>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>

#include "app/app.h"
#include "base/data_dir.h"
#include "base/logging.h"
#include "base/time_format.h"
#include "destinations/registry.h"
#include "event/raw_json.h"
#include "functions/registry.h"
#include "governance/tracking_plans.h"

namespace sy::app {
namespace json = boost::json;
using admin::ApiResult;

namespace {

std::shared_ptr<spdlog::logger> Logger() {
  static auto l = ModuleLogger("config");
  return l;
}

ApiResult Error(int status, std::string_view code, std::string message, std::string field = "") {
  json::object e{{"code", code}, {"message", std::move(message)}};
  if (!field.empty()) e["field"] = std::move(field);
  ApiResult r;
  r.http_status = status;
  r.body = json::serialize(json::object{{"error", std::move(e)}});
  return r;
}

std::string Quoted(const std::string& v) {
  return "\"" + v + "\"";
}

// An entity tag as sent in If-Match, without W/ and quotes.
std::string_view Unquoted(std::string_view v) {
  while (!v.empty() && v.front() == ' ')
    v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ')
    v.remove_suffix(1);
  if (v.starts_with("W/")) v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return v;
}

// The largest unit that says `ms` exactly, in the config's own spelling ("4h", "30s", "250ms").
std::string FormatDuration(int64_t ms) {
  if (ms != 0 && ms % (24LL * 3600 * 1000) == 0)
    return std::to_string(ms / (24LL * 3600 * 1000)) + "d";
  if (ms != 0 && ms % (3600 * 1000) == 0) return std::to_string(ms / (3600 * 1000)) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// A new write key: 160 random bits as hex, prefixed so that it is recognisable in a leak scan.
std::string NewWriteKey() {
  std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string key = "sy_";
  for (int i = 0; i < 5; ++i) {
    uint32_t v = rd();
    for (int j = 0; j < 8; ++j, v >>= 4)
      key.push_back(kHex[v & 15]);
  }
  return key;
}

const char* CollectionName(bool source) {
  return source ? "sources" : "destinations";
}

json::object OriginJson(const std::map<std::string, std::map<std::string, std::string>>& origins,
                        const std::string& key) {
  json::object out;
  auto it = origins.find(key);
  if (it == origins.end()) return out;
  for (const auto& [field, from] : it->second)
    out[field] = from;
  return out;
}

json::object SourceJson(const config::SourceConfig& s) {
  json::object o;
  o["name"] = s.name;
  o["write_key"] = json::object{{"set", !s.write_key_sha256.empty()}};
  o["enabled"] = s.enabled;
  if (s.rate_limit_events_per_second > 0) {
    o["rate_limit"] = json::object{{"events_per_second", s.rate_limit_events_per_second},
                                   {"burst", s.rate_limit_burst}};
  } else {
    o["rate_limit"] = nullptr;
  }
  if (!s.previous_write_key_sha256.empty()) {
    o["previous_write_key"] = json::object{
        {"set", true}, {"expires", FormatIso8601(TimestampMs(s.previous_write_key_expires_ms))}};
  } else {
    o["previous_write_key"] = nullptr;
  }
  o["consent"] = json::object{{"default", s.consent_default_deny ? "deny" : "grant"}};
  return o;
}

// A destination's settings as given, typed by its table; secrets as {"set": bool}.
json::object SettingsJson(const config::DestinationConfig& d) {
  const delivery::DestinationType* type = destinations::FindDestinationType(d.type);
  auto spec_of = [&](const std::string& key) -> const delivery::SettingSpec* {
    if (!type) return nullptr;
    for (const auto& s : type->settings)
      if (s.name == key) return &s;
    return nullptr;
  };
  json::object out;
  for (const auto& raw : d.settings) {
    const delivery::SettingSpec* spec = spec_of(raw.key);
    if (spec && spec->type == delivery::SettingType::kSecret) {
      out[raw.key] = json::object{
          {"set", raw.kind != config::RawSetting::Kind::kScalar || !raw.scalar.empty()}};
      continue;
    }
    switch (raw.kind) {
      case config::RawSetting::Kind::kScalar: {
        int64_t n = 0;
        const char* end = raw.scalar.data() + raw.scalar.size();
        if (spec && spec->type == delivery::SettingType::kInt &&
            std::from_chars(raw.scalar.data(), end, n).ptr == end && !raw.scalar.empty()) {
          out[raw.key] = n;
        } else if (spec && spec->type == delivery::SettingType::kBool &&
                   (raw.scalar == "true" || raw.scalar == "false")) {
          out[raw.key] = raw.scalar == "true";
        } else {
          out[raw.key] = raw.scalar;
        }
        break;
      }
      case config::RawSetting::Kind::kList: {
        json::array a;
        for (const auto& item : raw.list)
          a.push_back(json::string(item));
        out[raw.key] = std::move(a);
        break;
      }
      case config::RawSetting::Kind::kMap: {
        json::object m;
        for (const auto& [k, v] : raw.map)
          m[k] = v;
        out[raw.key] = std::move(m);
        break;
      }
      case config::RawSetting::Kind::kTree: {
        boost::system::error_code ec;
        json::value tree = json::parse(raw.json, ec);
        out[raw.key] = ec ? json::value(nullptr) : std::move(tree);
        break;
      }
      case config::RawSetting::Kind::kMalformed:
        out[raw.key] = nullptr;
        break;
    }
  }
  if (type) {
    for (const auto& s : type->settings)
      if (s.type == delivery::SettingType::kSecret && !out.contains(s.name))
        out[s.name] = json::object{{"set", false}};
  }
  return out;
}

json::array Strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v)
    a.push_back(json::string(s));
  return a;
}

json::object DestinationJson(const config::DestinationConfig& d) {
  json::object o;
  o["name"] = d.name;
  o["type"] = d.type;
  o["enabled"] = d.enabled;
  o["sources"] = Strings(d.sources);
  o["allow_private_network"] = d.allow_private_network;
  o["retry_window"] = FormatDuration(d.retry_window_ms);
  o["timeout"] = FormatDuration(d.timeout_ms);
  o["batch"] = json::object{{"max_events", d.batch.max_events},
                            {"max_bytes", d.batch.max_bytes},
                            {"max_wait", FormatDuration(d.batch.max_wait_ms)}};
  o["ordering"] = d.ordering == config::Ordering::kPerUser ? "per_user" : "none";
  o["filters"] = json::object{{"drop_events", Strings(d.drop_events)},
                              {"drop_properties", Strings(d.drop_properties)}};
  o["consent_categories"] = Strings(d.consent_categories);
  o["mode"] = d.mode == config::DeliveryMode::kDevice ? "device"
              : d.mode == config::DeliveryMode::kBoth ? "both"
                                                      : "cloud";
  o["settings"] = SettingsJson(d);
  return o;
}

// One error of the config reader or a settings table, "<file>:<line>: <key>: <problem>".
struct ConfigError {
  std::string key, problem, line;
};

std::vector<ConfigError> SplitErrors(const std::string& errors, const std::string& file) {
  std::vector<ConfigError> out;
  std::istringstream in(errors);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    std::string_view l = line;
    if (l.starts_with(file + ":")) {
      l.remove_prefix(file.size() + 1);
      while (!l.empty() && std::isdigit(static_cast<unsigned char>(l.front())))
        l.remove_prefix(1);
      if (l.starts_with(": ")) l.remove_prefix(2);
    }
    ConfigError e;
    e.line = line;
    auto colon = l.find(": ");
    if (colon == std::string_view::npos) {
      e.problem = std::string(l);
    } else {
      e.key = std::string(l.substr(0, colon));
      e.problem = std::string(l.substr(colon + 2));
    }
    out.push_back(std::move(e));
  }
  return out;
}

// 400 for a change the merged config refuses, naming the field of the object changed
// (`prefix`, e.g. "destinations[2]") when the first such error is about it.
ApiResult InvalidChange(const std::string& errors, const std::string& file,
                        const std::string& prefix) {
  std::vector<ConfigError> all = SplitErrors(errors, file);
  if (all.empty()) return Error(400, "invalid_config", errors);
  const ConfigError* chosen = &all.front();
  std::string field = chosen->key;
  for (const auto& e : all) {
    if (!prefix.empty() && (e.key == prefix || e.key.starts_with(prefix + "."))) {
      chosen = &e;
      field = e.key == prefix ? "" : e.key.substr(prefix.size() + 1);
      break;
    }
  }
  if (field == "write_key_sha256") field = "write_key";
  std::string code = "invalid_config";
  if (chosen->problem.starts_with("unknown key"))
    code = "unknown_key";
  else if (field.starts_with("settings."))
    code = "invalid_setting";
  std::string message = chosen->key.empty()
                            ? chosen->problem
                            : (field.empty() ? chosen->key : field) + ": " + chosen->problem;
  return Error(400, code, message, field);
}

// Merges one API change into an entry's fields. `created`: the entry is the whole object, so
// a null removes the key; over a file object a null is kept (it removes the file's key).
void MergeFields(json::object* into, const json::object& patch, bool created) {
  for (const auto& [k, v] : patch) {
    if (k == "settings" && v.is_object()) {
      json::object settings;
      if (auto* old = into->if_contains("settings"); old && old->is_object())
        settings = old->as_object();
      for (const auto& [sk, sv] : v.as_object()) {
        if (sv.is_null() && created)
          settings.erase(sk);
        else
          settings[sk] = sv;
      }
      (*into)["settings"] = std::move(settings);
    } else if (v.is_null() && created) {
      into->erase(k);
    } else {
      (*into)[k] = v;
    }
  }
}

std::string ReadFileText(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  *ok = static_cast<bool>(in);
  std::stringstream ss;
  if (*ok) ss << in.rdbuf();
  return ss.str();
}

// Merges and checks whole; errors attributed to the file or to the overlay.
Result<EffectiveConfig> MergeChecked(const std::string& text, const std::string& path,
                                     const config::Overlay& overlay,
                                     const std::string& overlay_where) {
  config::MergedConfig m = config::MergeOverlay(text, path, overlay);
  std::string errors = m.parsed.errors;
  if (Status s = destinations::ValidateDestinations(m.parsed.config); !s.ok())
    errors += s.message();
  if (errors.empty()) {
    // Tracking plans' schema files: an error names the file and the problem.
    if (auto plans = governance::TrackingPlans::Compile(m.parsed.config); !plans.ok())
      return plans.status();
    EffectiveConfig e;
    e.config = std::move(m.parsed.config);
    e.overlay = overlay;
    e.yaml = std::move(m.yaml);
    e.origins = std::move(m.origins);
    e.notes = std::move(m.notes);
    return e;
  }
  // The file's own errors first, with its lines, exactly as `check-config` reports a file.
  if (auto alone = destinations::LoadConfig(path); !alone.ok()) return alone.status();
  return InvalidArgument("the changes made through the admin API (" + overlay_where +
                         ") do not fit the config file any more; fix the file, or change or "
                         "delete these objects through the API:\n" +
                         errors);
}

}  // namespace

Result<EffectiveConfig> LoadEffectiveConfig(const std::string& config_path, Env* env) {
  bool ok = false;
  std::string text = ReadFileText(config_path, &ok);
  config::PartialConfig alone = config::ParseConfigString(text, config_path);
  if (!ok || !alone.errors.empty()) {
    auto checked = destinations::LoadConfig(config_path);  // every error of the file
    if (!checked.ok()) return checked.status();
    return InvalidArgument("cannot read config file " + config_path);
  }
  config::FileOverlayStore store(env, DataDir(alone.config.data_dir).ConfigOverlay());
  SY_ASSIGN_OR_RETURN(config::Overlay overlay, store.Load());
  return MergeChecked(text, config_path, overlay, store.Describe());
}

std::string ExportText(const std::string& config_path, const EffectiveConfig& effective) {
  std::string out = "# Switchyard configuration: " + config_path +
                    " merged with the changes made through the admin API (overlay version " +
                    std::to_string(effective.overlay.version) +
                    ").\n# Secrets are included as given: keep this file private.\n";
  for (const auto& note : effective.notes)
    out += "# " + note + "\n";
  return out + effective.yaml;
}

ConfigController::ConfigController(Options options) : options_(std::move(options)) {}
ConfigController::~ConfigController() = default;

Result<std::unique_ptr<ConfigController>> ConfigController::Open(Options options) {
  bool ok = false;
  std::string text = ReadFileText(options.config_path, &ok);
  config::PartialConfig alone = config::ParseConfigString(text, options.config_path);
  if (!ok || !alone.errors.empty()) {
    auto checked = destinations::LoadConfig(options.config_path);
    if (!checked.ok()) return checked.status();
    return InvalidArgument("cannot read config file " + options.config_path);
  }
  if (!options.store) {
    options.store = std::make_unique<config::FileOverlayStore>(
        options.env, DataDir(alone.config.data_dir).ConfigOverlay());
  }
  SY_ASSIGN_OR_RETURN(config::Overlay overlay, options.store->Load());
  SY_ASSIGN_OR_RETURN(EffectiveConfig effective,
                      MergeChecked(text, options.config_path, overlay, options.store->Describe()));
  std::unique_ptr<ConfigController> c(new ConfigController(std::move(options)));
  c->file_text_ = std::move(text);
  c->file_only_ = std::move(alone.config);
  c->current_ = std::move(effective);
  return c;
}

EffectiveConfig ConfigController::Effective() {
  std::lock_guard lock(mu_);
  return current_;
}

void ConfigController::Attach(App* app) {
  std::lock_guard lock(mu_);
  app_ = app;
}

Status ConfigController::ReloadFile(std::string* ignored) {
  std::lock_guard lock(mu_);
  bool ok = false;
  std::string text = ReadFileText(options_.config_path, &ok);
  config::PartialConfig alone = config::ParseConfigString(text, options_.config_path);
  if (!ok || !alone.errors.empty()) {
    auto checked = destinations::LoadConfig(options_.config_path);
    return checked.ok() ? InvalidArgument("cannot read config file " + options_.config_path)
                        : checked.status();
  }
  if (alone.config.data_dir != file_only_.data_dir)
    return InvalidArgument("data_dir changed; that needs a restart (nothing was applied)");
  SY_ASSIGN_OR_RETURN(
      EffectiveConfig next,
      MergeChecked(text, options_.config_path, current_.overlay, options_.store->Describe()));
  // Checked whole above, so ApplyConfig can only fail part-way (a stream that does not start):
  // what it applied is the running config now, and the next change or SIGHUP applies it again.
  Status applied = app_ ? app_->ApplyConfig(next.config, ignored) : Status::Ok();
  for (const auto& note : next.notes)
    Logger()->warn("{}", note);
  file_text_ = std::move(text);
  file_only_ = std::move(alone.config);
  current_ = std::move(next);
  return applied;
}

bool ConfigController::InFile(Kind kind, const std::string& name) const {
  if (kind == Kind::kSource) {
    for (const auto& s : file_only_.sources)
      if (s.name == name) return true;
  } else {
    for (const auto& d : file_only_.destinations)
      if (d.name == name) return true;
  }
  return false;
}

bool ConfigController::Exists(Kind kind, const std::string& name) const {
  if (kind == Kind::kSource) {
    for (const auto& s : current_.config.sources)
      if (s.name == name) return true;
  } else {
    for (const auto& d : current_.config.destinations)
      if (d.name == name) return true;
  }
  return false;
}

std::string ConfigController::ObjectJson(Kind kind, const std::string& name) const {
  json::object o;
  bool found = false;
  if (kind == Kind::kSource) {
    for (const auto& s : current_.config.sources)
      if (s.name == name) o = SourceJson(s), found = true;
  } else {
    for (const auto& d : current_.config.destinations)
      if (d.name == name) o = DestinationJson(d), found = true;
  }
  if (!found) return "";
  const std::string key = std::string(CollectionName(kind == Kind::kSource)) + "/" + name;
  o["origin"] = OriginJson(current_.origins, key);
  return json::serialize(o);
}

std::string ConfigController::ObjectVersion(Kind kind, const std::string& name) const {
  const auto& entries =
      kind == Kind::kSource ? current_.overlay.sources : current_.overlay.destinations;
  auto it = entries.find(name);
  uint64_t n = it == entries.end() ? 0 : it->second.version;
  return std::to_string(n) + "-" + config::Sha256Hex(ObjectJson(kind, name)).substr(0, 12);
}

std::string ConfigController::ConfigVersion() const {
  return std::to_string(current_.overlay.version) + "-" +
         config::Sha256Hex(current_.yaml).substr(0, 12);
}

ApiResult ConfigController::Get(Kind kind, std::string_view name_view) {
  std::lock_guard lock(mu_);
  std::string name(name_view);
  std::string body = ObjectJson(kind, name);
  if (body.empty())
    return Error(404, "not_found",
                 std::string(kind == Kind::kSource ? "no source" : "no destination") + " named '" +
                     name + "'");
  json::value v = json::parse(body);
  std::string version = ObjectVersion(kind, name);
  v.as_object()["version"] = version;
  ApiResult r;
  r.body = json::serialize(v);
  r.etag = Quoted(version);
  return r;
}

ApiResult ConfigController::List(Kind kind) {
  std::lock_guard lock(mu_);
  json::array items;
  auto add = [&](const std::string& name) {
    json::value v = json::parse(ObjectJson(kind, name));
    v.as_object()["version"] = ObjectVersion(kind, name);
    items.push_back(std::move(v));
  };
  if (kind == Kind::kSource) {
    for (const auto& s : current_.config.sources)
      add(s.name);
  } else {
    for (const auto& d : current_.config.destinations)
      add(d.name);
  }
  std::string version = ConfigVersion();
  json::object doc{{CollectionName(kind == Kind::kSource), std::move(items)}, {"version", version}};
  if (!current_.notes.empty()) doc["notes"] = Strings(current_.notes);
  ApiResult r;
  r.body = json::serialize(doc);
  r.etag = Quoted(version);
  return r;
}

namespace {

// The body as a JSON object, or the 400 to answer.
std::optional<ApiResult> ParseBody(std::string_view body, json::object* out) {
  std::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return Error(400, "bad_json", "the body is not JSON: " + ec.message());
  if (!v.is_object()) return Error(400, "bad_json", "the body must be a JSON object");
  *out = std::move(v.as_object());
  return std::nullopt;
}

// Drops what a client may send back from a GET (read-only fields, masked secrets) and refuses
// what only create and rotate-key may set.
std::optional<ApiResult> CleanFields(bool source, json::object* fields) {
  fields->erase("origin");
  fields->erase("version");
  if (source) {
    for (const char* k : {"write_key", "write_key_sha256", "previous_write_key"}) {
      if (fields->contains(k))
        return Error(400, "read_only",
                     std::string(k) + ": write keys are made by create and rotate-key", k);
    }
  } else if (auto* s = fields->if_contains("settings"); s && s->is_object()) {
    // {"set": true|false} is how a secret is shown: sent back, it keeps the secret.
    std::vector<std::string> masked;
    for (const auto& [k, v] : s->as_object()) {
      const json::object* o = v.if_object();
      if (o && o->size() == 1 && o->contains("set") && o->at("set").is_bool())
        masked.emplace_back(k);
    }
    for (const auto& k : masked)
      s->as_object().erase(k);
  }
  return std::nullopt;
}

}  // namespace

ApiResult ConfigController::Commit(Kind kind, const std::string& name, config::Overlay next,
                                   const std::function<ApiResult()>& make_ok) {
  if (!app_) return Error(503, "not_running", "the server is not running; nothing was changed");
  const bool source = kind == Kind::kSource;
  config::MergedConfig m = config::MergeOverlay(file_text_, options_.config_path, next);
  std::string errors = m.parsed.errors;
  if (Status s = destinations::ValidateDestinations(m.parsed.config); !s.ok())
    errors += s.message();
  if (!errors.empty()) {
    std::string prefix;
    if (source) {
      for (size_t i = 0; i < m.parsed.config.sources.size(); ++i)
        if (m.parsed.config.sources[i].name == name) prefix = "sources[" + std::to_string(i) + "]";
    } else if (kind == Kind::kFunction) {
      for (size_t i = 0; i < m.parsed.config.functions.size(); ++i)
        if (m.parsed.config.functions[i].name == name)
          prefix = "functions[" + std::to_string(i) + "]";
    } else {
      for (size_t i = 0; i < m.parsed.config.destinations.size(); ++i)
        if (m.parsed.config.destinations[i].name == name)
          prefix = "destinations[" + std::to_string(i) + "]";
    }
    return InvalidChange(errors, options_.config_path, prefix);
  }
  const std::string key =
      (kind == Kind::kFunction ? std::string("functions") : std::string(CollectionName(source))) +
      "/" + name;
  if (Status s = options_.store->Store(next, key); !s.ok()) {
    Logger()->error("config change not stored key={} status={}", key, s.ToString());
    return Error(500, "not_stored",
                 "the change could not be stored, nothing was changed: " + s.message());
  }
  EffectiveConfig e;
  e.config = std::move(m.parsed.config);
  e.overlay = std::move(next);
  e.yaml = std::move(m.yaml);
  e.origins = std::move(m.origins);
  e.notes = std::move(m.notes);
  std::string ignored;
  Status applied = app_->ApplyConfig(e.config, &ignored);
  current_ = std::move(e);  // stored: it is the config now, whatever the apply said
  Logger()->info("config change stored and applied key={} overlay_version={}", key,
                 current_.overlay.version);
  if (!applied.ok()) {
    Logger()->error("config change stored but not fully applied key={} status={}", key,
                    applied.ToString());
    return Error(500, "not_applied",
                 "the change is stored but applying it failed: " + applied.message() +
                     " (applied again on the next change or SIGHUP)");
  }
  return make_ok();
}

namespace {

// The 404 body of an unknown object.
ApiResult NoSuchObject(bool source, const std::string& name) {
  return Error(404, "not_found",
               std::string(source ? "no source" : "no destination") + " named '" + name + "'");
}

}  // namespace

ApiResult ConfigController::Create(Kind kind, std::string_view body) {
  const bool source = kind == Kind::kSource;
  json::object fields;
  if (auto err = ParseBody(body, &fields)) return *err;
  if (auto err = CleanFields(source, &fields)) return *err;
  const json::value* name_value = fields.if_contains("name");
  if (!name_value || !name_value->is_string() || name_value->as_string().empty())
    return Error(400, "invalid_config", "name: required (a string)", "name");
  std::string name(name_value->as_string());
  fields.erase("name");
  std::lock_guard lock(mu_);
  if (Exists(kind, name))
    return Error(
        409, "name_exists",
        std::string(source ? "a source" : "a destination") + " named '" + name + "' exists");
  std::string write_key;
  if (source) {
    write_key = NewWriteKey();
    fields["write_key_sha256"] = config::Sha256Hex(write_key);
  }
  config::Overlay next = current_.overlay;
  next.version++;
  auto& entries = source ? next.sources : next.destinations;
  // A tombstone or an orphan of this name is replaced: the new object owns the name.
  entries[name] = config::OverlayEntry{config::OverlayEntry::Op::kCreate, next.version, fields};
  return Commit(kind, name, std::move(next), [&] {
    ApiResult r;
    r.http_status = 201;
    std::string version = ObjectVersion(kind, name);
    json::value v = json::parse(ObjectJson(kind, name));
    r.audit_after = json::serialize(v);
    v.as_object()["version"] = version;
    if (source) v.as_object()["write_key"] = write_key;  // shown this once
    r.body = json::serialize(v);
    r.etag = Quoted(version);
    return r;
  });
}

ApiResult ConfigController::Patch(Kind kind, std::string_view name_view, std::string_view body,
                                  std::string_view if_match) {
  const bool source = kind == Kind::kSource;
  std::string name(name_view);
  json::object fields;
  if (auto err = ParseBody(body, &fields)) return *err;
  if (auto err = CleanFields(source, &fields)) return *err;
  if (auto* n = fields.if_contains("name")) {
    if (!n->is_string() || n->as_string() != name)
      return Error(400, "invalid_config", "name: cannot be changed (create a new one)", "name");
    fields.erase("name");
  }
  std::lock_guard lock(mu_);
  if (!Exists(kind, name)) return NoSuchObject(source, name);
  if (!if_match.empty() && Unquoted(if_match) != "*" &&
      Unquoted(if_match) != ObjectVersion(kind, name)) {
    return Error(412, "version_mismatch",
                 "the " + std::string(source ? "source" : "destination") +
                     " changed since that version (now " + ObjectVersion(kind, name) +
                     "): read it again");
  }
  std::string before = ObjectJson(kind, name);
  config::Overlay next = current_.overlay;
  next.version++;
  auto& entries = source ? next.sources : next.destinations;
  auto [it, inserted] = entries.try_emplace(name);
  config::OverlayEntry& e = it->second;
  if (inserted) e.op = config::OverlayEntry::Op::kPatch;
  e.version = next.version;
  MergeFields(&e.fields, fields, e.op == config::OverlayEntry::Op::kCreate);
  return Commit(kind, name, std::move(next), [&] {
    ApiResult r;
    std::string version = ObjectVersion(kind, name);
    json::value v = json::parse(ObjectJson(kind, name));
    r.audit_before = before;
    r.audit_after = json::serialize(v);
    v.as_object()["version"] = version;
    r.body = json::serialize(v);
    r.etag = Quoted(version);
    return r;
  });
}

ApiResult ConfigController::Delete(Kind kind, std::string_view name_view) {
  const bool source = kind == Kind::kSource;
  std::string name(name_view);
  std::lock_guard lock(mu_);
  config::Overlay next = current_.overlay;
  auto& entries = source ? next.sources : next.destinations;
  if (!Exists(kind, name)) {
    // An orphaned entry (its file object is gone) is dropped by deleting it.
    if (!entries.erase(name)) return NoSuchObject(source, name);
    next.version++;
    return Commit(kind, name, std::move(next), [] {
      ApiResult r;
      r.http_status = 204;
      return r;
    });
  }
  if (source) {
    std::vector<std::string> users;
    for (const auto& d : current_.config.destinations)
      for (const auto& s : d.sources)
        if (s == name) users.push_back(d.name);
    if (!users.empty()) {
      std::string list;
      for (const auto& u : users)
        list += (list.empty() ? "" : ", ") + u;
      return Error(409, "still_referenced",
                   "source '" + name + "' is in the sources of destination(s) " + list +
                       ": change their sources first");
    }
  }
  std::string before = ObjectJson(kind, name);
  next.version++;
  if (InFile(kind, name)) {
    entries[name] = config::OverlayEntry{config::OverlayEntry::Op::kDelete, next.version, {}};
  } else {
    entries.erase(name);  // made through the API: nothing of it remains
  }
  return Commit(kind, name, std::move(next), [&] {
    ApiResult r;
    r.http_status = 204;
    r.audit_before = before;
    r.etag = Quoted(ConfigVersion());
    return r;
  });
}

ApiResult ConfigController::RotateSourceKeyWithGrace(const admin::Actor&,
                                                     std::string_view name_view, int64_t grace_ms) {
  std::string name(name_view);
  if (grace_ms < 0) return Error(400, "invalid_config", "grace: must not be negative", "grace");
  std::lock_guard lock(mu_);
  const config::SourceConfig* now = nullptr;
  for (const auto& s : current_.config.sources)
    if (s.name == name) now = &s;
  if (!now) return NoSuchObject(true, name);
  std::string before = ObjectJson(Kind::kSource, name);
  std::string write_key = NewWriteKey();
  json::object fields{{"write_key_sha256", config::Sha256Hex(write_key)}};
  if (grace_ms > 0) {
    const int64_t expires = options_.clock->Now().value() + grace_ms;
    fields["previous_write_key"] = json::object{{"sha256", now->write_key_sha256},
                                                {"expires", FormatIso8601(TimestampMs(expires))}};
  } else {
    fields["previous_write_key"] = nullptr;
  }
  config::Overlay next = current_.overlay;
  next.version++;
  auto [it, inserted] = next.sources.try_emplace(name);
  if (inserted) it->second.op = config::OverlayEntry::Op::kPatch;
  it->second.version = next.version;
  MergeFields(&it->second.fields, fields, it->second.op == config::OverlayEntry::Op::kCreate);
  return Commit(Kind::kSource, name, std::move(next), [&] {
    ApiResult r;
    std::string version = ObjectVersion(Kind::kSource, name);
    json::value v = json::parse(ObjectJson(Kind::kSource, name));
    r.audit_before = before;
    r.audit_after = json::serialize(v);
    v.as_object()["version"] = version;
    v.as_object()["write_key"] = write_key;  // shown this once
    r.body = json::serialize(v);
    r.etag = Quoted(version);
    return r;
  });
}

ApiResult ConfigController::ListSources() {
  return List(Kind::kSource);
}
ApiResult ConfigController::GetSource(std::string_view name) {
  return Get(Kind::kSource, name);
}
ApiResult ConfigController::CreateSource(const admin::Actor&, std::string_view body) {
  return Create(Kind::kSource, body);
}
ApiResult ConfigController::PatchSource(const admin::Actor&, std::string_view name,
                                        std::string_view body, std::string_view if_match) {
  return Patch(Kind::kSource, name, body, if_match);
}
ApiResult ConfigController::DeleteSource(const admin::Actor&, std::string_view name) {
  return Delete(Kind::kSource, name);
}
ApiResult ConfigController::RotateSourceKey(const admin::Actor& actor, std::string_view name) {
  return RotateSourceKeyWithGrace(actor, name, kDefaultRotationGraceMs);
}
ApiResult ConfigController::ListDestinations() {
  return List(Kind::kDestination);
}
ApiResult ConfigController::GetDestination(std::string_view name) {
  return Get(Kind::kDestination, name);
}
ApiResult ConfigController::CreateDestination(const admin::Actor&, std::string_view body) {
  return Create(Kind::kDestination, body);
}
ApiResult ConfigController::PatchDestination(const admin::Actor&, std::string_view name,
                                             std::string_view body, std::string_view if_match) {
  return Patch(Kind::kDestination, name, body, if_match);
}
ApiResult ConfigController::DeleteDestination(const admin::Actor&, std::string_view name) {
  return Delete(Kind::kDestination, name);
}

ApiResult ConfigController::ListDestinationTypes() {
  json::array types;
  for (const delivery::DestinationType* t : destinations::OfferedDestinationTypes()) {
    json::array settings;
    for (const auto& s : t->settings) {
      json::object row{{"name", s.name},
                       {"type", delivery::SettingTypeName(s.type)},
                       {"required", s.required},
                       {"description", s.description},
                       {"secret", s.type == delivery::SettingType::kSecret}};
      if (s.default_value.empty())
        row["default"] = nullptr;
      else
        row["default"] = s.default_value;
      if (s.type == delivery::SettingType::kEnum) row["enum"] = Strings(s.allowed);
      if (s.type == delivery::SettingType::kStringList && !s.allowed.empty())
        row["items"] = Strings(s.allowed);
      if (s.min) row["min"] = *s.min;
      if (s.max) row["max"] = *s.max;
      settings.push_back(std::move(row));
    }
    types.push_back(json::object{{"type", t->type},
                                 {"display_name", t->display_name},
                                 {"description", t->description},
                                 {"settings", std::move(settings)}});
  }
  ApiResult r;
  r.body = json::serialize(json::object{{"types", std::move(types)}});
  return r;
}

namespace {

// Milliseconds and bytes in the config's own spelling.
std::string FormatSize(int64_t bytes) {
  if (bytes != 0 && bytes % (1LL << 30) == 0) return std::to_string(bytes >> 30) + "GB";
  if (bytes != 0 && bytes % (1LL << 20) == 0) return std::to_string(bytes >> 20) + "MB";
  if (bytes != 0 && bytes % 1024 == 0) return std::to_string(bytes >> 10) + "KB";
  return std::to_string(bytes) + "B";
}

json::object LimitsJson(const config::FunctionLimitsConfig& l) {
  return json::object{{"event_timeout", FormatDuration(l.event_timeout_ms)},
                      {"batch_timeout", FormatDuration(l.batch_timeout_ms)},
                      {"memory", FormatSize(l.memory_bytes)}};
}

// "<file>:<line>: <message>" → a 400 naming them.
ApiResult CompileError(const std::string& message) {
  json::object e{{"code", "compile_error"}, {"message", message}};
  const std::string first = message.substr(0, message.find('\n'));
  const size_t colon = first.find(':');
  if (colon != std::string::npos) {
    size_t end = colon + 1;
    while (end < first.size() && std::isdigit(static_cast<unsigned char>(first[end])))
      ++end;
    if (end > colon + 1 && end < first.size() && first[end] == ':') {
      e["file"] = first.substr(0, colon);
      e["line"] = std::stoll(first.substr(colon + 1, end - colon - 1));
    }
  }
  e["field"] = "source";
  ApiResult r;
  r.http_status = 400;
  r.body = json::serialize(json::object{{"error", std::move(e)}});
  return r;
}

const char* ResultName(const functions::RunResult& r) {
  switch (r.kind) {
    case functions::RunResult::Kind::kKeep:
      return "kept";
    case functions::RunResult::Kind::kEvents:
      return r.events.empty() ? "dropped" : "events";
    case functions::RunResult::Kind::kRetry:
      return "retry";
    case functions::RunResult::Kind::kError:
      return "error";
  }
  return "error";
}

}  // namespace

std::string ConfigController::FunctionJson(const std::string& name, bool with_source) const {
  for (const auto& fc : current_.config.functions) {
    if (fc.name != name) continue;
    json::object o;
    o["name"] = fc.name;
    o["file"] = fc.file.empty() ? json::value(nullptr) : json::value(fc.file);
    boost::system::error_code ec;
    json::value settings = json::parse(fc.settings_json, ec);
    o["settings"] = ec ? json::value(json::object{}) : std::move(settings);
    o["limits"] = LimitsJson(fc.limits);
    o["origin"] = current_.overlay.functions.contains(name) ? "console" : "file";
    std::string source = fc.source;
    if (!fc.file.empty()) {
      auto text = ReadWholeFile(options_.env, fc.file);
      source = text.ok() ? *text : "";
    }
    o["source_sha256"] = config::Sha256Hex(source);
    if (with_source) o["source"] = source;
    return json::serialize(o);
  }
  return "";
}

std::string ConfigController::FunctionVersion(const std::string& name) const {
  auto it = current_.overlay.functions.find(name);
  uint64_t n = it == current_.overlay.functions.end() ? 0 : it->second.version;
  return std::to_string(n) + "-" + config::Sha256Hex(FunctionJson(name, false)).substr(0, 12);
}

ApiResult ConfigController::ListFunctions() {
  std::lock_guard lock(mu_);
  json::array items;
  for (const auto& fc : current_.config.functions) {
    json::value v = json::parse(FunctionJson(fc.name, false));
    v.as_object()["version"] = FunctionVersion(fc.name);
    items.push_back(std::move(v));
  }
  std::string version = ConfigVersion();
  ApiResult r;
  r.body = json::serialize(json::object{{"functions", std::move(items)}, {"version", version}});
  r.etag = Quoted(version);
  return r;
}

ApiResult ConfigController::GetFunction(std::string_view name_view) {
  std::lock_guard lock(mu_);
  std::string name(name_view);
  std::string body = FunctionJson(name, true);
  if (body.empty()) return Error(404, "not_found", "no function named '" + name + "'");
  json::value v = json::parse(body);
  std::string version = FunctionVersion(name);
  v.as_object()["version"] = version;
  ApiResult r;
  r.body = json::serialize(v);
  r.etag = Quoted(version);
  return r;
}

ApiResult ConfigController::PutFunction(const admin::Actor&, std::string_view name_view,
                                        std::string_view body, std::string_view if_match) {
  std::string name(name_view);
  json::object fields;
  if (auto err = ParseBody(body, &fields)) return *err;
  // What a GET returns and a client may send back.
  for (const char* k : {"origin", "version", "file", "source_sha256"})
    fields.erase(k);
  if (auto* n = fields.if_contains("name")) {
    if (!n->is_string() || n->as_string() != name)
      return Error(400, "invalid_config", "name: cannot be changed (put a new one)", "name");
    fields.erase("name");
  }
  for (const auto& [k, v] : fields) {
    if (k != "source" && k != "settings" && k != "limits")
      return Error(400, "unknown_key",
                   std::string(k) + ": unknown key (known keys: source, settings, limits)",
                   std::string(k));
  }
  const json::value* src = fields.if_contains("source");
  if (!src || !src->is_string() || src->as_string().empty())
    return Error(400, "invalid_config", "source: required (the JavaScript text)", "source");
  if (src->as_string().size() > kMaxFunctionSourceBytes)
    return Error(400, "invalid_config",
                 "source: at most " + std::to_string(kMaxFunctionSourceBytes) + " bytes", "source");
  for (const char* k : {"settings", "limits"}) {
    const json::value* v = fields.if_contains(k);
    if (v && !v->is_object())
      return Error(400, "invalid_config", std::string(k) + ": expected an object", k);
  }
  std::lock_guard lock(mu_);
  const bool exists = !FunctionJson(name, false).empty();
  if (exists && !if_match.empty() && Unquoted(if_match) != "*" &&
      Unquoted(if_match) != FunctionVersion(name)) {
    return Error(412, "version_mismatch",
                 "the function changed since that version (now " + FunctionVersion(name) +
                     "): read it again");
  }
  std::string before = FunctionJson(name, false);
  config::Overlay next = current_.overlay;
  next.version++;
  // The whole function, replacing the file's of the same name (if any).
  next.functions[name] =
      config::OverlayEntry{config::OverlayEntry::Op::kCreate, next.version, fields};
  // Compiled before anything is stored: a function that does not compile changes nothing, and
  // the running version stays.
  config::MergedConfig m = config::MergeOverlay(file_text_, options_.config_path, next);
  if (m.parsed.errors.empty()) {
    config::Config only;
    for (const auto& fc : m.parsed.config.functions)
      if (fc.name == name) only.functions.push_back(fc);
    if (Status s = functions::CheckFunctions(only); !s.ok()) {
      std::string message = s.message();
      while (!message.empty() && message.back() == '\n')
        message.pop_back();
      return CompileError(message);
    }
  }
  return Commit(Kind::kFunction, name, std::move(next), [&] {
    ApiResult r;
    r.http_status = exists ? 200 : 201;
    std::string version = FunctionVersion(name);
    r.audit_before = before;  // the source as its digest: the audit log stays small
    r.audit_after = FunctionJson(name, false);
    json::value v = json::parse(FunctionJson(name, true));
    v.as_object()["version"] = version;
    r.body = json::serialize(v);
    r.etag = Quoted(version);
    return r;
  });
}

ApiResult ConfigController::DeleteFunction(const admin::Actor&, std::string_view name_view) {
  std::string name(name_view);
  std::lock_guard lock(mu_);
  if (!current_.overlay.functions.contains(name)) {
    if (FunctionJson(name, false).empty())
      return Error(404, "not_found", "no function named '" + name + "'");
    return Error(409, "in_file",
                 "function '" + name + "' is defined in the config file only: remove it there");
  }
  bool in_file = false;
  for (const auto& fc : file_only_.functions)
    in_file = in_file || fc.name == name;
  if (!in_file) {
    std::vector<std::string> users;
    for (const auto& s : current_.config.sources)
      for (const auto& f : s.functions)
        if (f == name) users.push_back("source " + s.name);
    for (const auto& d : current_.config.destinations)
      for (const auto& f : d.functions)
        if (f == name) users.push_back("destination " + d.name);
    if (!users.empty()) {
      std::string list;
      for (const auto& u : users)
        list += (list.empty() ? "" : ", ") + u;
      return Error(
          409, "still_referenced",
          "function '" + name + "' is listed by " + list + ": change their functions first");
    }
  }
  std::string before = FunctionJson(name, false);
  config::Overlay next = current_.overlay;
  next.functions.erase(name);
  next.version++;
  return Commit(Kind::kFunction, name, std::move(next), [&] {
    ApiResult r;
    r.http_status = in_file ? 200 : 204;
    r.audit_before = before;
    if (in_file) {  // the file's version again
      r.audit_after = FunctionJson(name, false);
      json::value v = json::parse(FunctionJson(name, true));
      v.as_object()["version"] = FunctionVersion(name);
      r.body = json::serialize(v);
      r.etag = Quoted(FunctionVersion(name));
    }
    return r;
  });
}

ApiResult ConfigController::TestFunction(const admin::Actor&, std::string_view name_view,
                                         std::string_view body) {
  std::string name(name_view);
  json::object in;
  if (auto err = ParseBody(body, &in)) return *err;
  for (const auto& [k, v] : in) {
    if (k != "event" && k != "source" && k != "settings")
      return Error(400, "unknown_key",
                   std::string(k) + ": unknown key (known keys: event, source, settings)",
                   std::string(k));
  }
  const json::value* event = in.if_contains("event");
  if (!event || !event->is_object())
    return Error(400, "invalid_value", "event: required (a JSON object: the sample event)",
                 "event");
  config::FunctionConfig fc;
  {
    std::lock_guard lock(mu_);
    bool found = false;
    for (const auto& f : current_.config.functions)
      if (f.name == name) fc = f, found = true;
    if (!found && !in.contains("source"))
      return Error(404, "not_found",
                   "no function named '" + name + "' (send its source to test it)");
    if (!found) fc.limits = current_.config.function_limits;
    fc.name = name;
  }
  // Unsaved code and settings (the console's editor): tested as given, nothing stored.
  if (const json::value* src = in.if_contains("source")) {
    if (!src->is_string() || src->as_string().empty() ||
        src->as_string().size() > kMaxFunctionSourceBytes)
      return Error(400, "invalid_value", "source: expected the JavaScript text (at most 1 MiB)",
                   "source");
    fc.source = std::string(src->as_string());
    fc.file.clear();
  }
  if (const json::value* settings = in.if_contains("settings")) {
    if (!settings->is_object())
      return Error(400, "invalid_value", "settings: expected an object", "settings");
    fc.settings_json = json::serialize(*settings);
  }
  // The sample as the client wrote it (its number text), not re-serialised.
  std::string event_text = json::serialize(*event);
  std::vector<event::RawMember> members;
  if (event::SplitObject(body, &members)) {
    for (const auto& m : members)
      if (m.key == "event") event_text = std::string(m.value);
  }
  functions::FunctionTestRun run = functions::TestFunction(fc, event_text);
  if (!run.status.ok()) return CompileError(run.status.message());
  const functions::RunResult& r = run.result;
  json::object o{
      {"function", name}, {"style", functions::StyleName(run.style)}, {"result", ResultName(r)}};
  if (r.kind == functions::RunResult::Kind::kError ||
      r.kind == functions::RunResult::Kind::kRetry) {
    o["error"] = json::object{{"kind", r.kind == functions::RunResult::Kind::kRetry
                                           ? std::string("retry")
                                           : std::string(functions::ErrorKindName(r.error))},
                              {"message", r.message},
                              {"stack", r.stack}};
  } else {
    o["error"] = nullptr;
  }
  json::array logs;
  for (const auto& l : run.logs)
    logs.push_back(json::object{{"level", l.level}, {"text", l.text}});
  o["logs"] = std::move(logs);
  o["logs_dropped"] = run.logs_dropped;
  o["timing_ms"] = json::object{{"compile", run.compile_ms}, {"run", run.run_ms}};
  // The events as the engine wrote them (JSON.stringify's text, not re-serialised here).
  std::string out = json::serialize(o);
  out.pop_back();
  out += ",\"events\":[";
  if (r.kind == functions::RunResult::Kind::kKeep) {
    out += event_text;
  } else {
    for (size_t i = 0; i < r.events.size(); ++i)
      out += (i ? "," : "") + r.events[i];
  }
  out += "]}";
  ApiResult res;
  res.body = std::move(out);
  return res;
}

ApiResult ConfigController::ExportYaml() {
  std::lock_guard lock(mu_);
  ApiResult r;
  r.content_type = "application/yaml";
  r.body = ExportText(options_.config_path, current_);
  r.etag = Quoted(ConfigVersion());
  return r;
}

}  // namespace sy::app
