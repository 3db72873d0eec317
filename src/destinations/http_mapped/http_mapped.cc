#include "destinations/http_mapped/http_mapped.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/json.hpp>

#include <array>
#include <charconv>
#include <map>
#include <set>
#include <unordered_map>

#include "base/base64.h"
#include "delivery/event_fields.h"
#include "destinations/http_mapped/mapping.h"
#include "http/basic_auth.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;
using http_mapped::Scope;
using http_mapped::StringTemplate;
using http_mapped::TreeTemplate;

// The Segment call types a mapping may be given for, in the order docs list them.
constexpr std::array<std::string_view, 6> kEventTypes = {"track",  "identify", "page",
                                                         "screen", "group",    "alias"};

// How much of a refusing response's body becomes the dead letter's reason.
constexpr size_t kReasonExcerptBytes = 200;

struct HttpSettings {
  std::string url;
  std::string method;
  std::map<std::string, std::string> headers;
  std::string api_key;
  std::string auth;
  std::string username;
  std::string password;
  std::string token;
  std::string hmac_secret;
  std::string hmac_header;
  std::string hmac_encoding;
  std::string hmac_prefix;
  bool batch = false;
  int64_t max_events = 0;
  int64_t max_bytes = 0;
  std::string batch_envelope;
  std::string mappings;
  std::vector<std::string> retry_statuses;
  std::vector<std::string> reject_statuses;
};

// One event type's compiled mapping.
struct Mapping {
  std::string method;
  StringTemplate url;
  bool send_auth = true;
  TreeTemplate body;
};

// Everything compiled from the settings; built once, read-only afterwards.
struct Program {
  std::array<std::optional<Mapping>, kEventTypes.size()> mappings;
  // Constant request parts (they may read $api_key only): evaluated at config time.
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Type first
  std::string authorization;                                 // "" = none
  std::string hmac_secret, hmac_header, hmac_prefix;
  bool hmac_base64 = false;
  bool batch = false;
  size_t max_events = 1;
  size_t max_bytes = 1 << 20;
  std::string envelope_prefix, envelope_suffix;  // around the events' JSON array
  std::set<int> retry_statuses, reject_statuses;
  std::string api_key;
};

std::string HmacSha256(std::string_view key, std::string_view data, bool base64) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  std::string_view raw(reinterpret_cast<const char*>(md), len);
  if (base64) return Base64Encode(raw);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

// A printable excerpt of a response body for a reason: at most kReasonExcerptBytes, control
// characters as spaces, cut on a UTF-8 character boundary.
std::string Excerpt(std::string_view body) {
  std::string out;
  size_t n = std::min(body.size(), kReasonExcerptBytes);
  if (n < body.size()) {
    while (n > 0 && (static_cast<unsigned char>(body[n]) & 0xC0) == 0x80)
      --n;
  }
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(body[i]);
    out.push_back(c < 0x20 || c == 0x7f ? ' ' : static_cast<char>(c));
  }
  if (n < body.size()) out += "…";
  return out;
}

class HttpMapped final : public delivery::Destination {
 public:
  explicit HttpMapped(Program p) : p_(std::move(p)) {}

  delivery::DestinationLimits limits() const override {
    return {p_.batch ? p_.max_events : 1, p_.max_bytes};
  }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    // Batched events wait here per (method, URL, auth) in order of first appearance; a group
    // becomes a request when it is full or at the end.
    struct Group {
      const Mapping* mapping = nullptr;
      std::string url;
      std::vector<std::string> bodies;
      std::vector<size_t> events;
      size_t bytes = 0;
    };
    std::vector<Group> groups;
    std::unordered_map<std::string, size_t> group_of;
    auto flush = [&](Group& g) {
      if (g.events.empty()) return;
      std::string body;
      body.reserve(g.bytes);
      body += p_.envelope_prefix;
      body += '[';
      for (size_t k = 0; k < g.bodies.size(); ++k) {
        if (k) body += ',';
        body += g.bodies[k];
      }
      body += ']';
      body += p_.envelope_suffix;
      out.requests.push_back(Request(*g.mapping, g.url, std::move(body), std::move(g.events)));
      g.bodies.clear();
      g.events.clear();
      g.bytes = 0;
    };
    delivery::MapEachEvent(
        events, &out, [&](size_t i, const json::object& e, std::string_view type) {
          const Mapping* m = nullptr;
          for (size_t t = 0; t < kEventTypes.size(); ++t)
            if (kEventTypes[t] == type && p_.mappings[t]) m = &*p_.mappings[t];
          if (!m) {  // a call the user chose not to send: filtered, never an error
            return delivery::EventMapping::Skip("http: no mapping for type '" + std::string(type) +
                                                "'");
          }
          Scope scope{&e, events[i].message_id, events[i].received_at.value(), events[i].source,
                      p_.api_key};
          auto url = m->url.EvaluateText(scope, /*url_encode=*/true);
          if (!url) {
            return delivery::EventMapping::Unmappable(
                "http: the url reads a value this event does not have");
          }
          auto body = m->body.Evaluate(scope);
          std::string text = body ? json::serialize(*body) : "null";
          if (!p_.batch) {
            out.requests.push_back(Request(*m, std::move(*url), std::move(text), {i}));
            return delivery::EventMapping::Mapped();
          }
          std::string key = m->method + (m->send_auth ? " a " : " - ") + *url;
          auto [it, added] = group_of.try_emplace(std::move(key), groups.size());
          if (added) {
            groups.emplace_back();
            groups.back().mapping = m;
            groups.back().url = std::move(*url);
          }
          Group& g = groups[it->second];
          size_t overhead = p_.envelope_prefix.size() + p_.envelope_suffix.size() + 2;
          if (!g.events.empty() && (g.events.size() >= p_.max_events ||
                                    overhead + g.bytes + 1 + text.size() > p_.max_bytes))
            flush(g);
          g.bytes += text.size() + 1;
          g.bodies.push_back(std::move(text));
          g.events.push_back(i);
          return delivery::EventMapping::Mapped();
        });
    for (auto& g : groups)
      flush(g);
    for (auto& [i, reason] : out.unmappable)
      if (!reason.starts_with("http: ")) reason = "http: " + reason;
    return out;
  }

  std::vector<delivery::Outcome> Classify(const delivery::HttpRequest& request,
                                          const delivery::HttpResponse& response) const override {
    return std::vector<delivery::Outcome>(request.events.size(), ClassifyOne(response));
  }

 private:
  delivery::Outcome ClassifyOne(const delivery::HttpResponse& r) const {
    const int s = r.status;
    if (s >= 200 && s < 300) return delivery::Outcome::Delivered();
    if (s == 0) return delivery::ClassifyByStatus(r);
    std::string reason = "http " + std::to_string(s);
    if (!r.body.empty()) reason += ": " + Excerpt(r.body);
    if (p_.reject_statuses.contains(s)) return delivery::Outcome::Rejected(reason);
    if (p_.retry_statuses.contains(s))
      return delivery::Outcome::Retry(reason, delivery::RetryAfterMs(r));
    if (s == 401 || s == 403) return delivery::Outcome::AuthFailure(reason);
    if (http::IsTransientFailure(r))
      return delivery::Outcome::Retry(reason, delivery::RetryAfterMs(r));
    return delivery::Outcome::Rejected(reason);
  }

  delivery::HttpRequest Request(const Mapping& m, std::string url, std::string body,
                                std::vector<size_t> idx) const {
    delivery::HttpRequest r;
    r.method = m.method;
    r.url = std::move(url);
    r.headers = p_.headers;
    if (m.send_auth) {
      if (!p_.authorization.empty()) r.headers.emplace_back("Authorization", p_.authorization);
      if (!p_.hmac_secret.empty()) {
        r.headers.emplace_back(p_.hmac_header,
                               p_.hmac_prefix + HmacSha256(p_.hmac_secret, body, p_.hmac_base64));
      }
    }
    r.body = std::move(body);
    r.events = std::move(idx);
    return r;
  }

  Program p_;
};

// ---- compiling the settings ------------------------------------------------------------------

bool ValidHeaderName(std::string_view k) {
  if (k.empty()) return false;
  for (unsigned char c : k) {
    if (c <= 0x20 || c >= 0x7f || c == ':' || c == '(' || c == ')' || c == ',' || c == ';' ||
        c == '"' || c == '/' || c == '[' || c == ']' || c == '?' || c == '=' || c == '{' ||
        c == '}' || c == '\\' || c == '<' || c == '>' || c == '@')
      return false;
  }
  return true;
}

// A template evaluated once at config time (headers, username, the envelope): it may read
// $api_key but nothing of an event. Problems go to `errors` under `path`.
std::optional<std::string> ConstantText(const std::string& text, const std::string& path,
                                        const std::string& api_key,
                                        std::vector<std::string>* errors) {
  StringTemplate t;
  if (auto problem = StringTemplate::Compile(text, &t)) {
    errors->push_back(path + ": " + *problem);
    return std::nullopt;
  }
  if (t.reads_event()) {
    errors->push_back(path + ": may use only $api_key (it is not evaluated per event)");
    return std::nullopt;
  }
  Scope scope;
  scope.api_key = api_key;
  return t.EvaluateText(scope).value_or("");
}

std::optional<std::string> CompileUrl(const std::string& url, const std::string& path,
                                      StringTemplate* out, std::vector<std::string>* errors) {
  size_t scheme = url.find("://");
  size_t host_end = scheme == std::string::npos ? std::string::npos : url.find('/', scheme + 3);
  std::string_view authority =
      std::string_view(url).substr(0, host_end == std::string::npos ? url.size() : host_end);
  if (!(url.starts_with("http://") || url.starts_with("https://"))) {
    errors->push_back(path + ": expected an http:// or https:// URL");
    return std::nullopt;
  }
  if (authority.find("{{") != std::string_view::npos) {
    errors->push_back(path + ": templates are allowed in the path and query, not the host");
    return std::nullopt;
  }
  std::string outside_templates;  // spaces inside {{ }} are the expressions'
  for (size_t pos = 0; pos < url.size();) {
    size_t open = url.find("{{", pos);
    outside_templates += url.substr(pos, open == std::string::npos ? open : open - pos);
    if (open == std::string::npos) break;
    size_t close = url.find("}}", open);
    pos = close == std::string::npos ? url.size() : close + 2;
  }
  if (outside_templates.find_first_of(" \r\n\t") != std::string::npos) {
    errors->push_back(path + ": spaces and line breaks are not allowed in a URL");
    return std::nullopt;
  }
  if (auto problem = StringTemplate::Compile(url, out)) {
    errors->push_back(path + ": " + *problem);
    return std::nullopt;
  }
  return url;
}

std::set<int> Statuses(const std::vector<std::string>& items, const std::string& key,
                       std::vector<std::string>* errors) {
  std::set<int> out;
  for (const auto& s : items) {
    int v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v < 300 || v > 599) {
      errors->push_back(key + ": '" + s + "' is not an HTTP status from 300 to 599");
      continue;
    }
    out.insert(v);
  }
  return out;
}

// Compiles settings into a Program; problems, one per entry, as "<key path>: <problem>".
Program Compile(const HttpSettings& s, std::vector<std::string>* errors) {
  Program p;
  p.api_key = s.api_key;
  p.batch = s.batch;
  p.max_events = static_cast<size_t>(s.max_events);
  p.max_bytes = static_cast<size_t>(s.max_bytes);
  p.retry_statuses = Statuses(s.retry_statuses, "retry_statuses", errors);
  p.reject_statuses = Statuses(s.reject_statuses, "reject_statuses", errors);
  for (int st : p.retry_statuses)
    if (p.reject_statuses.contains(st))
      errors->push_back("retry_statuses: " + std::to_string(st) + " is also in reject_statuses");

  StringTemplate default_url;
  CompileUrl(s.url, "url", &default_url, errors);

  // Headers: Content-Type first unless given; values may read $api_key.
  bool has_content_type = false;
  for (const auto& [k, v] : s.headers) {
    std::string lower;
    for (char c : k)
      lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (!ValidHeaderName(k)) {
      errors->push_back("headers." + k + ": not a valid header name");
      continue;
    }
    if (lower == "authorization" && s.auth != "none") {
      errors->push_back("headers." + k + ": set by auth: " + s.auth + "; drop one of them");
      continue;
    }
    if (lower == "content-type") has_content_type = true;
    auto text = ConstantText(v, "headers." + k, s.api_key, errors);
    if (!text) continue;
    if (text->find_first_of("\r\n") != std::string::npos) {
      errors->push_back("headers." + k + ": line breaks are not allowed in a header value");
      continue;
    }
    p.headers.emplace_back(k, std::move(*text));
  }
  if (!has_content_type) p.headers.insert(p.headers.begin(), {"Content-Type", "application/json"});

  // Auth.
  auto need = [&](const std::string& value, const char* key) {
    if (value.empty()) errors->push_back(std::string(key) + ": required with auth: " + s.auth);
  };
  if (s.auth == "basic") {
    need(s.username, "username");
    auto user = ConstantText(s.username, "username", s.api_key, errors);
    if (user) p.authorization = http::BasicAuthorization(*user, s.password);
  } else if (s.auth == "bearer") {
    need(s.token, "token");
    p.authorization = "Bearer " + s.token;
  } else if (s.auth == "hmac") {
    need(s.hmac_secret, "hmac_secret");
    if (!ValidHeaderName(s.hmac_header)) errors->push_back("hmac_header: not a valid header name");
    if (s.hmac_prefix.find_first_of("\r\n") != std::string::npos)
      errors->push_back("hmac_prefix: line breaks are not allowed");
    p.hmac_secret = s.hmac_secret;
    p.hmac_header = s.hmac_header;
    p.hmac_prefix = s.hmac_prefix;
    p.hmac_base64 = s.hmac_encoding == "base64";
  }
  auto unused = [&](bool given, const char* key, const char* with) {
    if (given) errors->push_back(std::string(key) + ": only used with " + with);
  };
  unused(!s.username.empty() && s.auth != "basic", "username", "auth: basic");
  unused(!s.password.empty() && s.auth != "basic", "password", "auth: basic");
  unused(!s.token.empty() && s.auth != "bearer", "token", "auth: bearer");
  unused(!s.hmac_secret.empty() && s.auth != "hmac", "hmac_secret", "auth: hmac");

  // The batch envelope: evaluated now (it may read $api_key), cut around `{{ events }}`.
  if (!s.batch_envelope.empty()) {
    if (!s.batch) errors->push_back("batch_envelope: only used with batch: true");
    json::value tree = json::parse(s.batch_envelope);  // the table checked it is JSON
    std::vector<std::string> env_errors;
    TreeTemplate env = TreeTemplate::Compile(tree, "batch_envelope", true, &env_errors);
    if (env_errors.empty() && env.reads_event())
      env_errors.push_back("batch_envelope: may use only $api_key and {{ events }}");
    if (env_errors.empty() && env.events_markers() != 1)
      env_errors.push_back(
          "batch_envelope: must hold '{{ events }}' exactly once (where the "
          "events go)");
    if (env_errors.empty()) {
      Scope scope;
      scope.api_key = s.api_key;
      std::string text = json::serialize(env.Evaluate(scope).value_or(nullptr));
      std::string marker = json::serialize(json::value(json::string(TreeTemplate::kEventsMarker)));
      size_t at = text.find(marker);
      p.envelope_prefix = text.substr(0, at);
      p.envelope_suffix = text.substr(at + marker.size());
    }
    errors->insert(errors->end(), env_errors.begin(), env_errors.end());
  }

  // The mappings, per event type.
  json::value tree = json::parse(s.mappings);
  if (!tree.is_object()) {
    errors->push_back("mappings: expected a mapping of event type to {body: …}");
    return p;
  }
  if (tree.get_object().empty()) errors->push_back("mappings: map at least one event type");
  for (const auto& [type_key, entry] : tree.get_object()) {
    std::string path = "mappings." + std::string(type_key);
    size_t t = 0;
    while (t < kEventTypes.size() && kEventTypes[t] != std::string_view(type_key))
      ++t;
    if (t == kEventTypes.size()) {
      errors->push_back(path +
                        ": unknown event type (known: track, identify, page, screen, "
                        "group, alias)");
      continue;
    }
    if (!entry.is_object()) {
      errors->push_back(path + ": expected a mapping with body (and optionally url, method, auth)");
      continue;
    }
    Mapping m;
    m.method = s.method;
    bool has_body = false;
    bool has_url = false;
    for (const auto& [k, v] : entry.get_object()) {
      std::string kp = path + "." + std::string(k);
      if (k == "body") {
        has_body = true;
        if (!v.is_object() && !v.is_array()) {
          errors->push_back(kp + ": expected a mapping or a list");
          continue;
        }
        m.body = TreeTemplate::Compile(v, kp, false, errors);
      } else if (k == "url") {
        has_url = true;
        if (!v.is_string()) {
          errors->push_back(kp + ": expected a URL");
          continue;
        }
        CompileUrl(std::string(v.get_string()), kp, &m.url, errors);
      } else if (k == "method") {
        if (!v.is_string() ||
            (v.get_string() != "POST" && v.get_string() != "PUT" && v.get_string() != "PATCH")) {
          errors->push_back(kp + ": expected one of: POST, PUT, PATCH");
          continue;
        }
        m.method = std::string(v.get_string());
      } else if (k == "auth") {
        if (!v.is_string() || v.get_string() != "none") {
          errors->push_back(kp + ": only 'none' (send this type without the auth)");
          continue;
        }
        m.send_auth = false;
      } else {
        errors->push_back(kp + ": unknown key (known keys: body, url, method, auth)");
      }
    }
    if (!has_body) errors->push_back(path + ".body: required key is missing");
    if (!has_url) {
      std::vector<std::string> reported_above;  // the top-level url's problems, once
      CompileUrl(s.url, "url", &m.url, &reported_above);
    }
    p.mappings[t] = std::move(m);
  }
  return p;
}

}  // namespace

delivery::DestinationType HttpMappedType() {
  using S = HttpSettings;
  delivery::SettingsTable<S> table;
  table
      .Url("url", &S::url,
           "where requests go; path and query may hold templates such as "
           "/users/{{ userId }} (URL-encoded)")
      .Required()
      .Enum("method", &S::method, {"POST", "PUT", "PATCH"}, "HTTP method")
      .Default("POST")
      .Map("headers", &S::headers,
           "extra request headers; values may use {{ $api_key }} (Content-Type defaults to "
           "application/json)")
      .Secret("api_key", &S::api_key,
              "a secret the headers, username, batch_envelope and mappings reach as "
              "{{ $api_key }}")
      .Enum("auth", &S::auth, {"none", "basic", "bearer", "hmac"},
            "none; basic (username, password); bearer (token); hmac (HMAC-SHA256 of the body "
            "in hmac_header)")
      .Default("none")
      .String("username", &S::username, "auth: basic's user name; may be {{ $api_key }}")
      .Secret("password", &S::password, "auth: basic's password")
      .Secret("token", &S::token, "auth: bearer's token")
      .Secret("hmac_secret", &S::hmac_secret, "auth: hmac's key")
      .String("hmac_header", &S::hmac_header, "auth: hmac's header")
      .Default("X-Signature")
      .Enum("hmac_encoding", &S::hmac_encoding, {"hex", "base64"},
            "auth: hmac's encoding of the signature (hex is lowercase)")
      .Default("hex")
      .String("hmac_prefix", &S::hmac_prefix,
              "auth: hmac's text before the signature in the header, e.g. sha256=")
      .Bool("batch", &S::batch,
            "send several events per request, as a JSON array or in "
            "batch_envelope")
      .Default("false")
      .Int("max_events", &S::max_events, "events per request with batch: true")
      .Default("100")
      .Range(1, 10'000)
      .Int("max_bytes", &S::max_bytes, "body bytes per request (a larger single event goes alone)")
      .Default("1048576")
      .Range(1024, 16 << 20)
      .Json("batch_envelope", &S::batch_envelope,
            "with batch: true, the body around the events, e.g. {batch: '{{ events }}', "
            "api_key: '{{ $api_key }}'}; without it the body is the events' JSON array")
      .Json("mappings", &S::mappings,
            "per event type (track, identify, page, screen, group, alias): {body: …, url?, "
            "method?, auth: none?}; a type without one is skipped (docs/destinations/http.md)")
      .Required()
      .List("retry_statuses", &S::retry_statuses,
            "statuses retried besides 408, 429 and 5xx (e.g. 409)")
      .List("reject_statuses", &S::reject_statuses,
            "statuses rejected that would be retried or be an auth failure (e.g. 501)");

  delivery::DestinationType t;
  t.type = "http";
  t.display_name = "HTTP";
  t.description =
      "Sends events to any HTTP API, mapped per event type in the config (URL, headers, auth, "
      "batching, body).";
  t.settings = table.specs();
  t.support = {"the types given a mapping; the others skipped",
               "optional (batch: true: ≤ max_events events and max_bytes per request, in "
               "batch_envelope)",
               "what the mapping sends (e.g. {{ $message_id }} as the receiver's key)",
               "not forwarded"};
  t.create = [table](const std::vector<config::RawSetting>& raw,
                     const delivery::SettingsOrigin& origin)
      -> Result<std::unique_ptr<delivery::Destination>> {
    SY_ASSIGN_OR_RETURN(S settings, delivery::ParseSettings(table, raw, origin));
    std::vector<std::string> errors;
    Program program = Compile(settings, &errors);
    if (!errors.empty()) {
      // Each problem names its key path, on the line of the deepest key config saw on it.
      std::string out;
      for (const auto& e : errors) {
        std::string path = e.substr(0, e.find(": "));
        size_t end = path.find_first_of(".[");
        std::string key = path.substr(0, end);
        std::string below =
            end == std::string::npos ? "" : path.substr(end + (path[end] == '.' ? 1 : 0));
        int line = origin.line;
        for (const auto& r : raw) {
          if (r.key != key) continue;
          line = r.line;
          size_t best = 0;
          for (const auto& [p, l] : r.tree_lines) {
            bool prefix = below == p || (below.starts_with(p) && below.size() > p.size() &&
                                         (below[p.size()] == '.' || below[p.size()] == '['));
            if (prefix && p.size() > best && l > 0) {
              best = p.size();
              line = l;
            }
          }
        }
        out += origin.file + ":" + std::to_string(line) + ": " + origin.path + "." + e + "\n";
      }
      return InvalidArgument(out);
    }
    return std::unique_ptr<delivery::Destination>(new HttpMapped(std::move(program)));
  };
  return t;
}

}  // namespace sy::destinations
