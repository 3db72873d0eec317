#include "config/config.h"

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <boost/json.hpp>

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "base/time_format.h"
#include "config/config_yaml.h"

namespace sy::config {
namespace {

// How deep a destination's settings value may nest (the mapped HTTP destination's `mappings`
// need a few levels; the bound keeps the conversion's recursion shallow).
constexpr int kMaxSettingDepth = 32;

// Walks YAML nodes against the expected schema, collecting every error with its line.
class SchemaReader {
 public:
  explicit SchemaReader(std::string file) : file_(std::move(file)) {}

  void Error(const YAML::Node& node, const std::string& key, const std::string& problem) {
    int line = node.IsDefined() ? node.Mark().line + 1 : 0;
    errors_ << file_ << ":" << line << ": " << key << ": " << problem << "\n";
    has_errors_ = true;
  }

  // Checks that `node` is a map and has no keys outside `allowed`.
  bool ExpectMap(const YAML::Node& node, const std::string& path,
                 const std::set<std::string>& allowed) {
    if (!node.IsMap()) {
      Error(node, path.empty() ? "(top level)" : path, "expected a mapping");
      return false;
    }
    for (const auto& kv : node) {
      auto key = kv.first.as<std::string>();
      if (!allowed.contains(key)) {
        std::string known;
        for (const auto& k : allowed)
          known += (known.empty() ? "" : ", ") + k;
        Error(kv.first, Join(path, key), "unknown key (known keys: " + known + ")");
      }
    }
    return true;
  }

  static std::string Join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  bool Required(const YAML::Node& parent, const std::string& path, const std::string& key) {
    if (!parent[key]) {
      Error(parent, Join(path, key), "required key is missing");
      return false;
    }
    return true;
  }

  void String(const YAML::Node& parent, const std::string& path, const std::string& key,
              std::string* out) {
    YAML::Node n = parent[key];
    if (!n) return;
    if (!n.IsScalar()) return Error(n, Join(path, key), "expected a string");
    *out = n.Scalar();
  }

  void Int(const YAML::Node& parent, const std::string& path, const std::string& key, int64_t lo,
           int64_t hi, int64_t* out) {
    YAML::Node n = parent[key];
    if (!n) return;
    int64_t v = 0;
    if (!n.IsScalar() || !YAML::convert<int64_t>::decode(n, v)) {
      return Error(n, Join(path, key), "expected an integer");
    }
    if (v < lo || v > hi) {
      return Error(n, Join(path, key),
                   "out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    *out = v;
  }

  void Bool(const YAML::Node& parent, const std::string& path, const std::string& key, bool* out) {
    YAML::Node n = parent[key];
    if (!n) return;
    bool v = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
      return Error(n, Join(path, key), "expected true or false");
    }
    *out = v;
  }

  void Duration(const YAML::Node& parent, const std::string& path, const std::string& key,
                int64_t min_ms, int64_t* out_ms) {
    YAML::Node n = parent[key];
    if (!n) return;
    auto v = n.IsScalar() ? ParseDurationMs(n.Scalar()) : std::nullopt;
    if (!v) return Error(n, Join(path, key), "expected a duration such as 500ms, 30s, 5m, 4h");
    if (*v < min_ms)
      return Error(n, Join(path, key), "must be at least " + std::to_string(min_ms) + "ms");
    *out_ms = *v;
  }

  // A duration within [min_ms, max_ms].
  void Duration(const YAML::Node& parent, const std::string& path, const std::string& key,
                int64_t min_ms, int64_t max_ms, int64_t* out_ms) {
    int64_t v = *out_ms;
    Duration(parent, path, key, min_ms, &v);
    if (v > max_ms) {
      return Error(parent[key], Join(path, key),
                   "must be at most " + std::to_string(max_ms / 1000) + "s");
    }
    *out_ms = v;
  }

  void Size(const YAML::Node& parent, const std::string& path, const std::string& key,
            int64_t min_bytes, int64_t* out) {
    YAML::Node n = parent[key];
    if (!n) return;
    auto v = n.IsScalar() ? ParseByteSize(n.Scalar()) : std::nullopt;
    if (!v) return Error(n, Join(path, key), "expected a size such as 512KB, 64MB, 1GB");
    if (*v < min_bytes)
      return Error(n, Join(path, key), "must be at least " + std::to_string(min_bytes) + " bytes");
    *out = *v;
  }

  void StringList(const YAML::Node& parent, const std::string& path, const std::string& key,
                  std::vector<std::string>* out) {
    YAML::Node n = parent[key];
    if (!n) return;
    if (!n.IsSequence()) return Error(n, Join(path, key), "expected a list of strings");
    out->clear();
    for (const auto& item : n) {
      if (!item.IsScalar()) return Error(item, Join(path, key), "expected a list of strings");
      out->push_back(item.Scalar());
    }
  }

  bool has_errors() const { return has_errors_; }
  std::string errors() const { return errors_.str(); }

 private:
  std::string file_;
  std::ostringstream errors_;
  bool has_errors_ = false;
};

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  }
  return true;
}

// One of `allowed`, else an error naming the key.
void OneOf(SchemaReader& r, const YAML::Node& parent, const std::string& path,
           const std::string& key, const std::vector<std::string>& allowed, std::string* out) {
  YAML::Node n = parent[key];
  if (!n) return;
  std::string v = n.IsScalar() ? n.Scalar() : "";
  for (const auto& a : allowed) {
    if (v == a) {
      *out = v;
      return;
    }
  }
  std::string list;
  for (const auto& a : allowed)
    list += (list.empty() ? "" : ", ") + a;
  r.Error(n, SchemaReader::Join(path, key), "expected one of: " + list);
}

void ReadKafka(SchemaReader& r, const YAML::Node& n, KafkaLogConfig* k) {
  const std::string p = "log.kafka";
  if (!r.ExpectMap(
          n, p,
          {"brokers", "topic_prefix", "partitions", "replication_factor", "min_insync_replicas",
           "client_id", "protocol", "sasl_mechanism", "username", "password", "password_env",
           "ca_file", "ack_timeout", "linger", "producer_queue_messages", "producer_queue_size",
           "compression", "session_timeout", "fetch_max_size"}))
    return;
  if (auto b = n["brokers"]; b && b.IsScalar()) {
    // One string "h1:9092,h2:9092" or a list.
    k->brokers.clear();
    std::stringstream ss(b.Scalar());
    for (std::string item; std::getline(ss, item, ',');)
      if (!item.empty()) k->brokers.push_back(item);
  } else {
    r.StringList(n, p, "brokers", &k->brokers);
  }
  if (k->brokers.empty()) r.Error(n, "log.kafka.brokers", "required: at least one host:port");
  for (const auto& b : k->brokers) {
    const auto colon = b.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == b.size() ||
        b.find_first_of(" \t,") != std::string::npos ||
        b.find_first_not_of("0123456789", colon + 1) != std::string::npos)
      r.Error(n["brokers"], "log.kafka.brokers", "expected host:port, got \"" + b + "\"");
  }
  r.String(n, p, "topic_prefix", &k->topic_prefix);
  {
    // Kafka topic and group names: [A-Za-z0-9._-], and the events topic must stay under 249.
    bool ok = !k->topic_prefix.empty() && k->topic_prefix.size() <= 100;
    for (char c : k->topic_prefix)
      ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
    if (!ok)
      r.Error(n["topic_prefix"] ? n["topic_prefix"] : n, "log.kafka.topic_prefix",
              "expected 1 to 100 of [A-Za-z0-9._-]");
  }
  r.Int(n, p, "partitions", 1, 10000, &k->partitions);
  r.Int(n, p, "replication_factor", 1, 32, &k->replication_factor);
  r.Int(n, p, "min_insync_replicas", 1, 32, &k->min_insync_replicas);
  if (k->min_insync_replicas > k->replication_factor)
    r.Error(n["min_insync_replicas"] ? n["min_insync_replicas"] : n,
            "log.kafka.min_insync_replicas", "must not exceed log.kafka.replication_factor");
  r.String(n, p, "client_id", &k->client_id);
  OneOf(r, n, p, "protocol", {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}, &k->protocol);
  OneOf(r, n, p, "sasl_mechanism", {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}, &k->sasl_mechanism);
  r.String(n, p, "username", &k->username);
  r.String(n, p, "password", &k->password);
  if (auto e = n["password_env"]) {
    if (n["password"]) r.Error(e, "log.kafka.password_env", "give password or password_env");
    std::string var;
    r.String(n, p, "password_env", &var);
    const char* v = var.empty() ? nullptr : std::getenv(var.c_str());
    if (v == nullptr)
      r.Error(e, "log.kafka.password_env", "the environment variable is not set");
    else
      k->password = v;
  }
  r.String(n, p, "ca_file", &k->ca_file);
  const bool sasl = k->protocol.starts_with("SASL_");
  if (sasl && (k->sasl_mechanism.empty() || k->username.empty() || k->password.empty()))
    r.Error(n, "log.kafka.sasl_mechanism",
            "protocol " + k->protocol + " needs sasl_mechanism, username and password");
  if (!sasl) {
    for (const char* key : {"sasl_mechanism", "username", "password", "password_env"})
      if (n[key])
        r.Error(n[key], SchemaReader::Join(p, key),
                "only used with protocol SASL_PLAINTEXT or SASL_SSL");
  }
  if (n["ca_file"] && k->protocol != "SSL" && k->protocol != "SASL_SSL")
    r.Error(n["ca_file"], "log.kafka.ca_file", "only used with protocol SSL or SASL_SSL");
  r.Duration(n, p, "ack_timeout", 100, 300'000, &k->ack_timeout_ms);
  r.Duration(n, p, "linger", 0, 10'000, &k->linger_ms);
  r.Int(n, p, "producer_queue_messages", 1, 10'000'000, &k->producer_queue_messages);
  r.Size(n, p, "producer_queue_size", 1 << 20, &k->producer_queue_bytes);
  if (k->producer_queue_bytes > (int64_t{2} << 30))
    r.Error(n["producer_queue_size"], "log.kafka.producer_queue_size", "must be at most 2GB");
  OneOf(r, n, p, "compression", {"none", "gzip", "snappy", "lz4", "zstd"}, &k->compression);
  r.Duration(n, p, "session_timeout", 6000, 300'000, &k->session_timeout_ms);
  r.Size(n, p, "fetch_max_size", 64 << 10, &k->fetch_max_bytes);
  if (k->fetch_max_bytes > (int64_t{1} << 30))
    r.Error(n["fetch_max_size"], "log.kafka.fetch_max_size", "must be at most 1GB");
}

void ReadLog(SchemaReader& r, const YAML::Node& n, LogConfig* log) {
  const std::string p = "log";
  if (!r.ExpectMap(n, p,
                   {"fsync", "fsync_interval", "segment_size", "retention_size", "retention_age",
                    "compression", "max_pending", "preallocate", "reserve", "backend", "kafka"}))
    return;
  if (auto b = n["backend"]) {
    std::string v = b.IsScalar() ? b.Scalar() : "";
    if (v == "local")
      log->backend = LogBackend::kLocal;
    else if (v == "kafka")
      log->backend = LogBackend::kKafka;
    else
      r.Error(b, "log.backend", "expected one of: local, kafka");
  }
  if (log->backend == LogBackend::kKafka) {
    if (auto k = n["kafka"])
      ReadKafka(r, k, &log->kafka);
    else
      r.Error(n, "log.kafka", "required with backend: kafka");
  } else if (auto k = n["kafka"]) {
    r.Error(k, "log.kafka", "only used with backend: kafka");
  }
  if (auto f = n["fsync"]) {
    std::string v = f.IsScalar() ? f.Scalar() : "";
    if (v == "always")
      log->fsync = FsyncPolicy::kAlways;
    else if (v == "interval")
      log->fsync = FsyncPolicy::kInterval;
    else if (v == "never")
      log->fsync = FsyncPolicy::kNever;
    else
      r.Error(f, "log.fsync", "expected one of: always, interval, never");
  }
  r.Duration(n, p, "fsync_interval", 1, &log->fsync_interval_ms);
  r.Size(n, p, "segment_size", 1 << 20, &log->segment_bytes);
  r.Size(n, p, "retention_size", 0, &log->retention_bytes);
  r.Duration(n, p, "retention_age", 0, &log->retention_age_ms);
  r.Size(n, p, "max_pending", 1 << 20, &log->max_pending_bytes);
  r.Size(n, p, "preallocate", 0, &log->preallocate_bytes);
  r.Size(n, p, "reserve", 0, &log->reserve_bytes);
  if (auto c = n["compression"]) {
    std::string v = c.IsScalar() ? c.Scalar() : "";
    if (v == "none")
      log->compression = Compression::kNone;
    else if (v == "zstd")
      log->compression = Compression::kZstd;
    else
      r.Error(c, "log.compression", "expected one of: none, zstd");
  }
}

void ReadIngest(SchemaReader& r, const YAML::Node& n, IngestConfig* in) {
  const std::string p = "ingest";
  if (!r.ExpectMap(n, p,
                   {"max_event_size", "max_request_size", "max_batch_events", "max_json_depth",
                    "dedupe_window", "dedupe", "trusted_proxies", "cors_origins"}))
    return;
  r.Size(n, p, "max_event_size", 1024, &in->max_event_bytes);
  r.Size(n, p, "max_request_size", 1024, &in->max_request_bytes);
  r.Int(n, p, "max_batch_events", 1, 100'000, &in->max_batch_events);
  r.Int(n, p, "max_json_depth", 4, 1024, &in->max_json_depth);
  r.Duration(n, p, "dedupe_window", 0, &in->dedupe_window_ms);
  if (auto d = n["dedupe"]) {
    if (r.ExpectMap(d, p + ".dedupe", {"max_memory"}))
      r.Size(d, p + ".dedupe", "max_memory", 4LL << 20, &in->dedupe_max_memory_bytes);
  }
  r.StringList(n, p, "trusted_proxies", &in->trusted_proxies);
  r.StringList(n, p, "cors_origins", &in->cors_origins);
  if (in->max_event_bytes > in->max_request_bytes) {
    r.Error(n, "ingest.max_event_size", "must not exceed ingest.max_request_size");
  }
}

void ReadWeb(SchemaReader& r, const YAML::Node& n, WebConfig* web) {
  const std::string p = "web";
  if (!r.ExpectMap(n, p, {"cache_max_age", "public_api_host"})) return;
  r.Duration(n, p, "cache_max_age", 0, &web->cache_max_age_ms);
  if (web->cache_max_age_ms % 1000 != 0) {
    r.Error(n["cache_max_age"], "web.cache_max_age", "must be whole seconds (it is max-age=N)");
  } else if (web->cache_max_age_ms > 365LL * 24 * 3600 * 1000) {
    r.Error(n["cache_max_age"], "web.cache_max_age", "must be at most 365d");
  }
  if (auto h = n["public_api_host"]) {
    std::string v = h.IsScalar() ? h.Scalar() : "";
    for (std::string scheme : {"http", "https"}) {
      if (v.starts_with(scheme + "://")) {
        web->public_api_protocol = scheme;
        v = v.substr(scheme.size() + 3);
      }
    }
    // Written verbatim into JavaScript and JSON: only URL characters, and a host before any '/'.
    bool ok = !v.empty() && v.front() != '/' &&
              v.find_first_not_of(
                  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                  ".-_~:/[]%") == std::string::npos;
    if (!ok) {
      r.Error(h, "web.public_api_host",
              "expected [http://|https://]host[:port][/path], e.g. api.example.com/v1");
    } else {
      while (v.size() > 1 && v.back() == '/')
        v.pop_back();
      web->public_api_host = v;
    }
  }
}

// A settings value as JSON (RawSetting::json): mappings in document order; a plain scalar that
// reads as YAML 1.2 core null/bool/int/float becomes null/a bool/a number, any other scalar (and
// every quoted one) a string. False when nested deeper than `depth` levels.
// `lines` (may be null) receives the line of each key and list item by its path below `path`.
bool YamlToJson(const YAML::Node& v, int depth, boost::json::value* out, const std::string& path,
                std::vector<std::pair<std::string, int>>* lines) {
  if (depth <= 0) return false;
  if (v.IsMap()) {
    boost::json::object o;
    for (const auto& e : v) {
      boost::json::value child;
      if (!e.first.IsScalar()) return false;
      std::string child_path = path.empty() ? e.first.Scalar() : path + "." + e.first.Scalar();
      if (lines) lines->emplace_back(child_path, e.first.Mark().line + 1);
      if (!YamlToJson(e.second, depth - 1, &child, child_path, lines)) return false;
      o[e.first.Scalar()] = std::move(child);
    }
    *out = std::move(o);
    return true;
  }
  if (v.IsSequence()) {
    boost::json::array a;
    for (const auto& e : v) {
      boost::json::value child;
      std::string child_path = path + "[" + std::to_string(a.size()) + "]";
      if (lines) lines->emplace_back(child_path, e.Mark().line + 1);
      if (!YamlToJson(e, depth - 1, &child, child_path, lines)) return false;
      a.push_back(std::move(child));
    }
    *out = std::move(a);
    return true;
  }
  if (!v.IsScalar()) {
    *out = nullptr;  // `key:` with no value
    return true;
  }
  const std::string& s = v.Scalar();
  // Plain (not quoted) in a file, or built in memory from the console's JSON (overlay.cc), where
  // a number or bool arrives as its text.
  if (v.Tag() == "?" || v.Tag().empty()) {
    if (s == "null" || s == "~") {
      *out = nullptr;
      return true;
    }
    if (s == "true" || s == "false") {
      *out = s == "true";
      return true;
    }
    boost::system::error_code ec;
    boost::json::value num = boost::json::parse(s, ec);
    if (!ec && num.is_number() && s.find_first_of(" \t\n") == std::string::npos) {
      *out = std::move(num);
      return true;
    }
  }
  *out = s;
  return true;
}

// `functions: [a, b]` of a source or destination: names from the top-level `functions:`.
void ReadFunctionList(SchemaReader& r, const YAML::Node& item, const std::string& p,
                      const Config& c, std::vector<std::string>* out) {
  r.StringList(item, p, "functions", out);
  std::set<std::string> seen;
  for (const auto& f : *out) {
    bool known = false;
    for (const auto& fc : c.functions)
      known = known || fc.name == f;
    if (!known)
      r.Error(item["functions"], p + ".functions", "no function named '" + f + "' in functions:");
    if (!seen.insert(f).second) {
      r.Error(item["functions"], p + ".functions", "function '" + f + "' is listed twice");
    }
  }
}

// A YAML node as JSON (function settings): scalars that read as null, booleans or numbers are
// written as such, everything else as strings; mappings and lists nest.
void YamlToJson(const YAML::Node& n, std::string* out) {
  auto quote = [out](const std::string& s) {
    out->push_back('"');
    for (unsigned char ch : s) {
      if (ch == '"' || ch == '\\') {
        out->push_back('\\');
        out->push_back(static_cast<char>(ch));
      } else if (ch < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", ch);
        out->append(buf);
      } else {
        out->push_back(static_cast<char>(ch));
      }
    }
    out->push_back('"');
  };
  if (n.IsMap()) {
    out->push_back('{');
    bool first = true;
    for (const auto& kv : n) {
      if (!first) out->push_back(',');
      first = false;
      quote(kv.first.as<std::string>());
      out->push_back(':');
      YamlToJson(kv.second, out);
    }
    out->push_back('}');
  } else if (n.IsSequence()) {
    out->push_back('[');
    for (size_t i = 0; i < n.size(); ++i) {
      if (i) out->push_back(',');
      YamlToJson(n[i], out);
    }
    out->push_back(']');
  } else if (n.IsNull()) {
    out->append("null");
  } else {
    const std::string& v = n.Scalar();
    static const std::regex kJsonNumber(R"(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)");
    if (n.Tag() != "!" && (v == "true" || v == "false" || std::regex_match(v, kJsonNumber))) {
      out->append(v);  // unquoted in the file and JSON as it stands
    } else {
      quote(v);
    }
  }
}

// `function_limits:` and a function's `limits:`: each key given replaces the one in `out`.
void ReadFunctionLimits(SchemaReader& r, const YAML::Node& n, const std::string& p,
                        FunctionLimitsConfig* out) {
  if (!r.ExpectMap(n, p, {"event_timeout", "batch_timeout", "memory"})) return;
  // At most a minute: a stream waits for its functions, so a longer call would only hide a
  // runaway (and the watchdog's deadline would hold a destination for that long).
  r.Duration(n, p, "event_timeout", 1, 60'000, &out->event_timeout_ms);
  r.Duration(n, p, "batch_timeout", 1, 60'000, &out->batch_timeout_ms);
  // At least 16 MiB: SpiderMonkey's own code and the prelude need a few MiB of every context.
  // At most 1 GiB: the heap cap is a 32-bit engine parameter, and one context runs per stream.
  constexpr int64_t kMinMemory = 16LL << 20, kMaxMemory = 1LL << 30;
  int64_t memory = out->memory_bytes;
  r.Size(n, p, "memory", kMinMemory, &memory);
  if (memory > kMaxMemory) {
    r.Error(n["memory"], p + ".memory", "must be at most 1GB");
  } else {
    out->memory_bytes = memory;
  }
}

void ReadFunctions(SchemaReader& r, const YAML::Node& n, Config* c) {
  if (!n.IsSequence()) return r.Error(n, "functions", "expected a list of functions");
  std::set<std::string> names;
  const std::filesystem::path base = std::filesystem::path(c->file).parent_path();
  for (size_t i = 0; i < n.size(); ++i) {
    YAML::Node item = n[i];
    std::string p = "functions[" + std::to_string(i) + "]";
    if (!r.ExpectMap(item, p, {"name", "file", "source", "settings", "limits"})) continue;
    FunctionConfig f;
    f.line = item.Mark().line + 1;
    f.limits = c->function_limits;
    if (auto l = item["limits"]) ReadFunctionLimits(r, l, p + ".limits", &f.limits);
    if (r.Required(item, p, "name")) r.String(item, p, "name", &f.name);
    if (!f.name.empty() && !ValidName(f.name)) {
      r.Error(item["name"], p + ".name", "use 1-64 letters, digits, '_' or '-'");
    } else if (!f.name.empty() && !names.insert(f.name).second) {
      r.Error(item["name"], p + ".name", "duplicate function name '" + f.name + "'");
    }
    if (item["file"] && item["source"]) {
      r.Error(item, p, "give file or source, not both");
    } else if (item["source"]) {
      r.String(item, p, "source", &f.source);
      if (f.source.empty()) r.Error(item["source"], p + ".source", "must not be empty");
    } else if (r.Required(item, p, "file")) {
      r.String(item, p, "file", &f.file);
    }
    if (!f.file.empty() && std::filesystem::path(f.file).is_relative() && !base.empty()) {
      f.file = (base / f.file).lexically_normal().string();
    }
    if (auto s = item["settings"]) {
      if (!s.IsMap()) {
        r.Error(s, p + ".settings", "expected a mapping");
      } else {
        f.settings_json.clear();
        YamlToJson(s, &f.settings_json);
      }
    }
    c->functions.push_back(std::move(f));
  }
}

void ReadDestinations(SchemaReader& r, const YAML::Node& n, Config* c) {
  if (!n.IsSequence()) return r.Error(n, "destinations", "expected a list of destinations");
  std::set<std::string> names;
  std::set<std::string> source_names;
  for (const auto& s : c->sources)
    source_names.insert(s.name);
  for (size_t i = 0; i < n.size(); ++i) {
    YAML::Node item = n[i];
    std::string p = "destinations[" + std::to_string(i) + "]";
    if (!r.ExpectMap(item, p,
                     {"name", "type", "enabled", "sources", "allow_private_network", "retry_window",
                      "timeout", "batch", "ordering", "filters", "settings", "functions",
                      "consent_categories", "mode"}))
      continue;
    DestinationConfig d;
    d.line = item.Mark().line + 1;
    if (r.Required(item, p, "name")) r.String(item, p, "name", &d.name);
    if (!d.name.empty() && !ValidName(d.name)) {
      r.Error(item["name"], p + ".name", "use 1-64 letters, digits, '_' or '-'");
    } else if (!d.name.empty() && !names.insert(d.name).second) {
      r.Error(item["name"], p + ".name", "duplicate destination name '" + d.name + "'");
    }
    if (r.Required(item, p, "type")) r.String(item, p, "type", &d.type);
    r.Bool(item, p, "enabled", &d.enabled);
    r.Bool(item, p, "allow_private_network", &d.allow_private_network);
    r.StringList(item, p, "sources", &d.sources);
    for (const auto& s : d.sources) {
      if (!source_names.contains(s)) {
        r.Error(item["sources"], p + ".sources", "no source named '" + s + "' in sources:");
      }
    }
    ReadFunctionList(r, item, p, *c, &d.functions);
    r.StringList(item, p, "consent_categories", &d.consent_categories);
    {
      std::set<std::string> seen;
      for (const auto& cat : d.consent_categories) {
        if (cat.empty() || cat.size() > 64) {
          r.Error(item["consent_categories"], p + ".consent_categories",
                  "a category is 1 to 64 characters");
        } else if (!seen.insert(cat).second) {
          r.Error(item["consent_categories"], p + ".consent_categories",
                  "category '" + cat + "' is listed twice");
        }
      }
      if (!d.consent_categories.empty()) {
        for (const auto& s : c->sources)
          if (s.consent_default_deny) d.consent_deny_by_default_sources.push_back(s.name);
      }
    }
    r.Duration(item, p, "retry_window", 0, &d.retry_window_ms);
    r.Duration(item, p, "timeout", 1, &d.timeout_ms);
    if (auto b = item["batch"]) {
      std::string bp = p + ".batch";
      if (r.ExpectMap(b, bp, {"max_events", "max_bytes", "max_wait"})) {
        r.Int(b, bp, "max_events", 1, 100'000, &d.batch.max_events);
        r.Size(b, bp, "max_bytes", 1024, &d.batch.max_bytes);
        r.Duration(b, bp, "max_wait", 0, &d.batch.max_wait_ms);
      }
    }
    if (auto o = item["ordering"]) {
      std::string v = o.IsScalar() ? o.Scalar() : "";
      if (v == "none")
        d.ordering = Ordering::kNone;
      else if (v == "per_user")
        d.ordering = Ordering::kPerUser;
      else
        r.Error(o, p + ".ordering", "expected one of: none, per_user");
    }
    if (auto m = item["mode"]) {
      std::string v = m.IsScalar() ? m.Scalar() : "";
      if (v == "cloud")
        d.mode = DeliveryMode::kCloud;
      else if (v == "device")
        d.mode = DeliveryMode::kDevice;
      else if (v == "both")
        d.mode = DeliveryMode::kBoth;
      else
        r.Error(m, p + ".mode", "expected one of: cloud, device, both");
    }
    if (auto f = item["filters"]) {
      std::string fp = p + ".filters";
      if (r.ExpectMap(f, fp, {"drop_events", "drop_properties"})) {
        r.StringList(f, fp, "drop_events", &d.drop_events);
        r.StringList(f, fp, "drop_properties", &d.drop_properties);
      }
    }
    if (auto s = item["settings"]) {
      std::string sp = p + ".settings";
      if (!s.IsMap()) {
        r.Error(s, sp, "expected a mapping");
      } else {
        for (const auto& kv : s) {
          RawSetting rs;
          rs.key = kv.first.as<std::string>();
          rs.line = kv.first.Mark().line + 1;
          const YAML::Node& v = kv.second;
          bool ok = true;
          if (v.IsScalar()) {
            rs.kind = RawSetting::Kind::kScalar;
            rs.scalar = v.Scalar();
          } else if (v.IsSequence()) {
            rs.kind = RawSetting::Kind::kList;
            for (const auto& e : v) {
              if (!e.IsScalar()) ok = false;
              if (ok) rs.list.push_back(e.Scalar());
            }
          } else if (v.IsMap()) {
            rs.kind = RawSetting::Kind::kMap;
            for (const auto& e : v) {
              if (!e.second.IsScalar()) ok = false;
              if (ok) rs.map.emplace_back(e.first.as<std::string>(), e.second.Scalar());
            }
          } else {
            ok = false;
          }
          if (v.IsMap() || v.IsSequence()) {
            // Lists and mappings are kept as JSON too; nested ones only as JSON (kTree): the
            // settings table says whether the key takes one (delivery/settings.h).
            boost::json::value tree;
            if (!YamlToJson(v, kMaxSettingDepth, &tree, "", &rs.tree_lines)) {
              r.Error(kv.first, sp + "." + rs.key,
                      "nested more than " + std::to_string(kMaxSettingDepth) + " levels deep");
              rs.kind = RawSetting::Kind::kMalformed;
              rs.tree_lines.clear();
            } else {
              rs.json = boost::json::serialize(tree);
              if (!ok) rs.kind = RawSetting::Kind::kTree;
            }
            if (!ok) {
              rs.list.clear();
              rs.map.clear();
            }
          } else if (!ok) {
            r.Error(kv.first, sp + "." + rs.key,
                    "expected a scalar, a list of scalars or a mapping of scalars");
            rs.kind = RawSetting::Kind::kMalformed;
          }
          d.settings.push_back(std::move(rs));
        }
      }
    }
    c->destinations.push_back(std::move(d));
  }
}

void ReadArchive(SchemaReader& r, const YAML::Node& n, ArchiveConfig* a) {
  const std::string p = "archive";
  if (!r.ExpectMap(
          n, p,
          {"store", "path", "roll_size", "roll_age", "prefix", "bucket", "region", "endpoint",
           "path_style", "access_key_id", "secret_access_key", "multipart_size"}))
    return;
  a->enabled = true;
  if (r.Required(n, p, "store")) {
    auto s = n["store"];
    std::string v = s.IsScalar() ? s.Scalar() : "";
    if (v == "local")
      a->store = ArchiveStore::kLocal;
    else if (v == "s3")
      a->store = ArchiveStore::kS3;
    else
      r.Error(s, "archive.store", "expected one of: local, s3");
  }
  r.String(n, p, "path", &a->path);
  r.Size(n, p, "roll_size", 1024, &a->roll_bytes);
  // Archive reads stop at 1 GiB of decompressed data per file (archive/gzip.h, a gzip-bomb
  // bound): a file must stay well below it, one event past roll_size included.
  if (a->roll_bytes > (512LL << 20))
    r.Error(n["roll_size"], "archive.roll_size", "must be at most 512MB");
  r.Duration(n, p, "roll_age", 100, &a->roll_age_ms);
  r.String(n, p, "prefix", &a->prefix);
  r.String(n, p, "bucket", &a->bucket);
  r.String(n, p, "region", &a->region);
  r.String(n, p, "endpoint", &a->endpoint);
  r.Bool(n, p, "path_style", &a->path_style);
  r.String(n, p, "access_key_id", &a->access_key_id);
  r.String(n, p, "secret_access_key", &a->secret_access_key);
  r.Size(n, p, "multipart_size", 5LL << 20, &a->multipart_size);
  if (a->prefix.find("..") != std::string::npos || a->prefix.starts_with("/"))
    r.Error(n["prefix"], "archive.prefix", "must be a relative key prefix without '..'");
  if (a->store == ArchiveStore::kLocal) {
    if (a->path.empty()) r.Error(n, "archive.path", "required with store: local");
    for (const char* k : {"bucket", "endpoint", "access_key_id", "secret_access_key"})
      if (n[k]) r.Error(n[k], SchemaReader::Join(p, k), "only used with store: s3");
  } else {
    if (a->bucket.empty()) r.Error(n, "archive.bucket", "required with store: s3");
    if (n["path"]) r.Error(n["path"], "archive.path", "only used with store: local");
    if (n["access_key_id"].IsDefined() != n["secret_access_key"].IsDefined())
      r.Error(n, "archive.access_key_id", "give access_key_id and secret_access_key together");
    if (!a->endpoint.empty() && !a->endpoint.starts_with("http://") &&
        !a->endpoint.starts_with("https://"))
      r.Error(n["endpoint"], "archive.endpoint", "expected http://host[:port] or https://…");
  }
}

// host:port ([::1]:port for IPv6) into `host` and `port`.
void ReadListen(SchemaReader& r, const YAML::Node& l, const std::string& key, std::string* host,
                uint16_t* out_port) {
  std::string s = l.IsScalar() ? l.Scalar() : "";
  auto colon = s.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    try {
      size_t used = 0;
      port = std::stoi(s.substr(colon + 1), &used);
      if (used != s.size() - colon - 1) port = -1;
    } catch (...) {
      port = -1;
    }
  }
  if (colon == std::string::npos || colon == 0 || port < 0 || port > 65535) {
    r.Error(l, key, "expected host:port, e.g. 127.0.0.1:8080");
  } else {
    *host = s.substr(0, colon);
    if (host->size() > 2 && host->front() == '[' && host->back() == ']')
      *host = host->substr(1, host->size() - 2);
    *out_port = static_cast<uint16_t>(port);
  }
}

void ReadHttp(SchemaReader& r, const YAML::Node& n, HttpConfig* h) {
  const std::string p = "http";
  if (!r.ExpectMap(n, p,
                   {"max_connections", "send_timeout", "lingering_time", "idle_timeout",
                    "header_timeout", "body_timeout"}))
    return;
  r.Int(n, p, "max_connections", 0, 1 << 20, &h->max_connections);
  // The server checks read timeouts once a second: under 1 s would not mean what it says; over
  // an hour holds a connection for no client's good.
  r.Duration(n, p, "idle_timeout", 1000, 3'600'000, &h->idle_timeout_ms);
  r.Duration(n, p, "header_timeout", 1000, 3'600'000, &h->header_timeout_ms);
  r.Duration(n, p, "body_timeout", 1000, 3'600'000, &h->body_timeout_ms);
  r.Duration(n, p, "send_timeout", 100, &h->send_timeout_ms);
  r.Duration(n, p, "lingering_time", 0, &h->lingering_time_ms);
}

void ReadMetrics(SchemaReader& r, const YAML::Node& n, MetricsConfig* m) {
  const std::string p = "metrics";
  if (!r.ExpectMap(n, p, {"listen", "token", "token_sha256"})) return;
  if (auto l = n["listen"]) ReadListen(r, l, "metrics.listen", &m->listen_host, &m->listen_port);
  std::string token, hash;
  r.String(n, p, "token", &token);
  r.String(n, p, "token_sha256", &hash);
  if (n["token"] && n["token_sha256"]) {
    r.Error(n, "metrics.token", "give token or token_sha256, not both");
  } else if (n["token"]) {
    // Guessable tokens would make the check pointless: ask for at least 16 characters.
    if (token.size() < 16) r.Error(n["token"], "metrics.token", "use at least 16 characters");
    m->token_sha256 = Sha256Hex(token);
  } else if (n["token_sha256"]) {
    if (hash.size() != 64 || hash.find_first_not_of("0123456789abcdef") != std::string::npos)
      r.Error(n["token_sha256"], "metrics.token_sha256", "expected 64 lowercase hex digits");
    m->token_sha256 = hash;
  }
}

void ReadAdmin(SchemaReader& r, const YAML::Node& n, AdminConfig* a) {
  const std::string p = "admin";
  a->enabled = true;
  if (n.IsNull()) return;  // `admin:` alone: every default
  if (!r.ExpectMap(n, p,
                   {"listen", "session_idle_timeout", "session_max_age", "secure_cookie",
                    "max_live_streams", "live_rate", "tls"}))
    return;
  if (auto t = n["tls"]) {
    if (r.ExpectMap(t, "admin.tls", {"cert", "key"})) {
      for (auto [key, out] : {std::pair{"cert", &a->tls_cert}, std::pair{"key", &a->tls_key}}) {
        const std::string path = std::string("admin.tls.") + key;
        if (!t[key] || !t[key].IsScalar() || t[key].Scalar().empty()) {
          r.Error(t, path, "required: the PEM file's path");
          continue;
        }
        *out = t[key].Scalar();
        // Read at start (the server loads and checks them); here only: is the file there.
        if (::access(out->c_str(), R_OK) != 0)
          r.Error(t[key], path, "cannot read " + *out + ": " + std::strerror(errno));
      }
    }
  }
  if (auto l = n["listen"]) ReadListen(r, l, "admin.listen", &a->listen_host, &a->listen_port);
  r.Duration(n, p, "session_idle_timeout", 60'000, &a->session_idle_timeout_ms);
  r.Duration(n, p, "session_max_age", 60'000, &a->session_max_age_ms);
  r.Bool(n, p, "secure_cookie", &a->secure_cookie);
  r.Int(n, p, "max_live_streams", 0, 1024, &a->max_live_streams);
  r.Int(n, p, "live_rate", 1, 10'000, &a->live_rate);
}

// `unplanned:` / `violations:` of a plan.
void ReadPlanAction(SchemaReader& r, const YAML::Node& item, const std::string& path,
                    const std::string& key, PlanAction* out) {
  YAML::Node n = item[key];
  if (!n) return;
  const std::string v = n.IsScalar() ? n.Scalar() : "";
  if (v == "allow")
    *out = PlanAction::kAllow;
  else if (v == "flag")
    *out = PlanAction::kFlag;
  else if (v == "block")
    *out = PlanAction::kBlock;
  else
    r.Error(n, SchemaReader::Join(path, key), "expected one of: allow, flag, block");
}

// `{schema: FILE}` under `path`; "" when missing (an error is recorded).
std::string ReadSchemaRef(SchemaReader& r, const YAML::Node& n, const std::string& path) {
  if (!r.ExpectMap(n, path, {"schema"}) || !r.Required(n, path, "schema")) return "";
  std::string file;
  r.String(n, path, "schema", &file);
  if (file.empty()) r.Error(n["schema"], path + ".schema", "must name a file");
  return file;
}

// Tracking plans (docs/governance.md). Checks names and references only; the schema files are
// read and compiled by governance::TrackingPlans::Compile, which app/ runs with these checks.
void ReadTrackingPlans(SchemaReader& r, const YAML::Node& n, Config* c) {
  if (n.IsNull()) return;
  if (!n.IsSequence()) return r.Error(n, "tracking_plans", "expected a list of plans");
  std::set<std::string> names, sources_known, sources_taken;
  for (const auto& s : c->sources)
    sources_known.insert(s.name);
  for (size_t i = 0; i < n.size(); ++i) {
    YAML::Node item = n[i];
    const std::string path = "tracking_plans[" + std::to_string(i) + "]";
    if (!r.ExpectMap(item, path,
                     {"name", "sources", "events", "identify", "group", "page", "screen", "alias",
                      "unplanned", "violations"}))
      continue;
    TrackingPlanConfig plan;
    if (r.Required(item, path, "name")) r.String(item, path, "name", &plan.name);
    if (!plan.name.empty() && !ValidName(plan.name))
      r.Error(item["name"], path + ".name", "use 1-64 letters, digits, '_' or '-'");
    if (!names.insert(plan.name).second)
      r.Error(item["name"], path + ".name", "duplicate plan name '" + plan.name + "'");
    if (r.Required(item, path, "sources")) {
      r.StringList(item, path, "sources", &plan.sources);
      if (plan.sources.empty()) r.Error(item["sources"], path + ".sources", "list a source");
      for (const auto& s : plan.sources) {
        if (!sources_known.contains(s))
          r.Error(item["sources"], path + ".sources", "unknown source '" + s + "'");
        else if (!sources_taken.insert(s).second)
          r.Error(item["sources"], path + ".sources",
                  "source '" + s + "' is already in another plan (one plan per source)");
      }
    }
    if (YAML::Node ev = item["events"]) {
      if (!ev.IsMap()) {
        r.Error(ev, path + ".events", "expected a mapping of event names to {schema: FILE}");
      } else {
        for (const auto& kv : ev) {
          const std::string name = kv.first.as<std::string>();
          const std::string file = ReadSchemaRef(r, kv.second, path + ".events." + name);
          if (name.empty()) r.Error(kv.first, path + ".events", "an event name must not be empty");
          plan.events.emplace_back(name, file);
        }
      }
    }
    for (const char* type : {"identify", "group", "page", "screen", "alias"}) {
      if (YAML::Node t = item[type])
        plan.types.emplace_back(type, ReadSchemaRef(r, t, path + "." + type));
    }
    ReadPlanAction(r, item, path, "unplanned", &plan.unplanned);
    ReadPlanAction(r, item, path, "violations", &plan.violations);
    c->tracking_plans.push_back(std::move(plan));
  }
}

PartialConfig Parse(const YAML::Node& root, const std::string& file) {
  SchemaReader r(file);
  PartialConfig out;
  Config& c = out.config;
  c.file = file;
  if (!r.ExpectMap(root, "",
                   {"version", "listen", "data_dir", "io_threads", "log_level", "sources", "log",
                    "ingest", "web", "destinations", "archive", "http", "metrics", "admin",
                    "tracking_plans", "functions", "function_limits"})) {
    out.errors = r.errors();
    return out;
  }
  if (r.Required(root, "", "version")) {
    int64_t v = 0;
    r.Int(root, "", "version", 1, 1, &v);
  }
  if (auto l = root["listen"]) ReadListen(r, l, "listen", &c.listen_host, &c.listen_port);
  if (r.Required(root, "", "data_dir")) r.String(root, "", "data_dir", &c.data_dir);
  r.Int(root, "", "io_threads", 0, 256, &c.io_threads);
  r.String(root, "", "log_level", &c.log_level);
  if (!std::set<std::string>{"debug", "info", "warn", "error", "off"}.contains(c.log_level)) {
    r.Error(root["log_level"], "log_level", "expected one of: debug, info, warn, error, off");
  }
  // Every function's default limits, before the functions that override them.
  if (auto n = root["function_limits"])
    ReadFunctionLimits(r, n, "function_limits", &c.function_limits);
  // Before sources and destinations, which name them.
  if (auto n = root["functions"]) ReadFunctions(r, n, &c);
  if (r.Required(root, "", "sources")) {
    YAML::Node s = root["sources"];
    if (!s.IsSequence() || s.size() == 0) {
      r.Error(s, "sources", "expected a non-empty list of sources");
    } else {
      std::set<std::string> names, keys;
      for (size_t i = 0; i < s.size(); ++i) {
        YAML::Node item = s[i];
        std::string path = "sources[" + std::to_string(i) + "]";
        if (!r.ExpectMap(item, path,
                         {"name", "write_key", "write_key_sha256", "rate_limit", "enabled",
                          "previous_write_key", "functions", "consent"}))
          continue;
        SourceConfig src;
        if (r.Required(item, path, "name")) r.String(item, path, "name", &src.name);
        if (!src.name.empty() && !ValidName(src.name)) {
          r.Error(item["name"], path + ".name", "use 1-64 letters, digits, '_' or '-'");
        }
        if (!names.insert(src.name).second) {
          r.Error(item["name"], path + ".name", "duplicate source name '" + src.name + "'");
        }
        std::string key, key_hash;
        r.String(item, path, "write_key", &key);
        r.String(item, path, "write_key_sha256", &key_hash);
        if (item["write_key"] && item["write_key_sha256"]) {
          r.Error(item, path, "give write_key or write_key_sha256, not both");
        } else if (item["write_key"]) {
          if (key.empty()) r.Error(item["write_key"], path + ".write_key", "must not be empty");
          src.write_key_sha256 = Sha256Hex(key);
        } else if (item["write_key_sha256"]) {
          bool hex = key_hash.size() == 64 &&
                     key_hash.find_first_not_of("0123456789abcdef") == std::string::npos;
          if (!hex)
            r.Error(item["write_key_sha256"], path + ".write_key_sha256",
                    "expected 64 lowercase hex digits");
          src.write_key_sha256 = key_hash;
        } else {
          r.Error(item, path + ".write_key", "required key is missing");
        }
        if (!src.write_key_sha256.empty() && !keys.insert(src.write_key_sha256).second) {
          r.Error(item, path + ".write_key", "the same write key is used by two sources");
        }
        r.Bool(item, path, "enabled", &src.enabled);
        ReadFunctionList(r, item, path, c, &src.functions);
        if (YAML::Node pk = item["previous_write_key"]) {
          const std::string pk_path = path + ".previous_write_key";
          if (r.ExpectMap(pk, pk_path, {"sha256", "expires"}) &&
              r.Required(pk, pk_path, "sha256") && r.Required(pk, pk_path, "expires")) {
            std::string hash, expires;
            r.String(pk, pk_path, "sha256", &hash);
            r.String(pk, pk_path, "expires", &expires);
            if (hash.size() != 64 ||
                hash.find_first_not_of("0123456789abcdef") != std::string::npos)
              r.Error(pk["sha256"], pk_path + ".sha256", "expected 64 lowercase hex digits");
            else if (!keys.insert(hash).second)
              r.Error(pk, pk_path, "the same write key is used twice");
            src.previous_write_key_sha256 = hash;
            if (auto t = ParseIso8601(expires))
              src.previous_write_key_expires_ms = t->value();
            else
              r.Error(pk["expires"], pk_path + ".expires",
                      "expected an ISO-8601 time such as 2026-12-04T12:00:00Z");
          }
        }
        if (YAML::Node cn = item["consent"]) {
          const std::string cn_path = path + ".consent";
          if (r.ExpectMap(cn, cn_path, {"default"})) {
            if (YAML::Node dv = cn["default"]) {
              const std::string v = dv.IsScalar() ? dv.Scalar() : "";
              if (v == "deny")
                src.consent_default_deny = true;
              else if (v != "grant")
                r.Error(dv, cn_path + ".default", "expected one of: grant, deny");
            }
          }
        }
        if (YAML::Node rl = item["rate_limit"]) {
          const std::string rl_path = path + ".rate_limit";
          if (r.ExpectMap(rl, rl_path, {"events_per_second", "burst"}) &&
              r.Required(rl, rl_path, "events_per_second")) {
            r.Int(rl, rl_path, "events_per_second", 1, 10'000'000,
                  &src.rate_limit_events_per_second);
            src.rate_limit_burst = src.rate_limit_events_per_second;
            r.Int(rl, rl_path, "burst", 1, 100'000'000, &src.rate_limit_burst);
          }
        }
        c.sources.push_back(std::move(src));
      }
    }
  }
  if (auto n = root["log"]) ReadLog(r, n, &c.log);
  if (auto n = root["ingest"]) ReadIngest(r, n, &c.ingest);
  if (auto n = root["web"]) ReadWeb(r, n, &c.web);
  if (auto n = root["destinations"]) ReadDestinations(r, n, &c);
  if (auto n = root["archive"]) ReadArchive(r, n, &c.archive);
  if (auto n = root["http"]) ReadHttp(r, n, &c.http);
  if (auto n = root["metrics"]) ReadMetrics(r, n, &c.metrics);
  if (auto n = root["admin"]) ReadAdmin(r, n, &c.admin);
  if (auto n = root["tracking_plans"]) ReadTrackingPlans(r, n, &c);
  if (c.log.backend == LogBackend::kKafka && c.archive.enabled) {
    // The archive names files by log offsets; on Kafka it becomes its own consumer group with
    // files named by partition and offset range (issue 14, a later slice).
    r.Error(root["archive"], "archive", "not available yet with log.backend: kafka");
  }
  if (c.log.backend == LogBackend::kKafka) {
    // The warehouse loaders sync by draining the log to its end offset, which the Kafka log does
    // not have; they become their own consumer groups in a later slice.
    for (const auto& d : c.destinations)
      if (d.type == "sqlite" || d.type == "postgres")
        r.Error(root["destinations"], "destinations." + d.name,
                "warehouse type " + d.type + " is not available yet with log.backend: kafka");
  }
  if (c.web.public_api_host.empty()) {
    bool v6 = c.listen_host.find(':') != std::string::npos;
    c.web.public_api_host = (v6 ? "[" + c.listen_host + "]" : c.listen_host) + ":" +
                            std::to_string(c.listen_port) + "/v1";
  }
  out.errors = r.errors();
  return out;
}

}  // namespace

PartialConfig ParseConfigNode(const YAML::Node& root, const std::string& file) {
  try {
    return Parse(root, file);
  } catch (const YAML::Exception& e) {
    PartialConfig out;
    out.config.file = file;
    out.errors = file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg + "\n";
    return out;
  }
}

std::string_view PlanActionName(PlanAction a) {
  switch (a) {
    case PlanAction::kAllow:
      return "allow";
    case PlanAction::kFlag:
      return "flag";
    case PlanAction::kBlock:
      return "block";
  }
  return "?";
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

PartialConfig ParseConfigString(const std::string& yaml, const std::string& file_name) {
  PartialConfig out;
  out.config.file = file_name;
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
    return Parse(root, file_name);
  } catch (const YAML::Exception& e) {
    out.errors = file_name + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg + "\n";
  }
  return out;
}

PartialConfig ParseConfigFile(const std::string& path) {
  // data_dir is relative to the working directory, like every CLI path.
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    PartialConfig out;
    out.config.file = path;
    out.errors = "cannot read config file " + path + "\n";
    return out;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfigString(ss.str(), path);
}

Result<Config> LoadConfigString(const std::string& yaml, const std::string& file_name) {
  PartialConfig p = ParseConfigString(yaml, file_name);
  if (!p.errors.empty()) return InvalidArgument(p.errors);
  return std::move(p.config);
}

Result<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read config file " + path);
  PartialConfig p = ParseConfigFile(path);
  if (!p.errors.empty()) return InvalidArgument(p.errors);
  return std::move(p.config);
}

}  // namespace sy::config
