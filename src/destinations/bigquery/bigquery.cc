#include "destinations/bigquery/bigquery.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <boost/json.hpp>
#include <cctype>
#include <map>
#include <memory>

#include "base/base64.h"
#include "base/time_format.h"
#include "delivery/event_fields.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

constexpr const char* kScope = "https://www.googleapis.com/auth/bigquery.insertdata";
constexpr const char* kGrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer";
constexpr int kMaxFlattenDepth = 8;  // deeper objects become JSON text in one column

std::string Base64Url(std::string_view in) {
  std::string s = Base64Encode(in);
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!s.empty() && s.back() == '=')
    s.pop_back();
  return s;
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::shared_ptr<EVP_PKEY>;

// The service account's key file, as Google issues it (only the fields used).
struct ServiceAccount {
  std::string client_email;
  std::string private_key_id;
  std::string token_uri;
  Pkey key;
};

Result<ServiceAccount> ParseServiceAccount(const std::string& text) {
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec);
  if (ec || !doc.is_object()) return InvalidArgument("service_account_json: not a JSON object");
  const json::object& o = doc.as_object();
  if (delivery::FieldString(o, {"type"}) != "service_account") {
    return InvalidArgument("service_account_json: type must be \"service_account\"");
  }
  ServiceAccount sa;
  sa.client_email = delivery::FieldString(o, {"client_email"});
  sa.private_key_id = delivery::FieldString(o, {"private_key_id"});
  sa.token_uri = delivery::FieldString(o, {"token_uri"});
  if (sa.token_uri.empty()) sa.token_uri = "https://oauth2.googleapis.com/token";
  if (sa.client_email.empty()) return InvalidArgument("service_account_json: no client_email");
  if (!sa.token_uri.starts_with("https://") && !sa.token_uri.starts_with("http://")) {
    return InvalidArgument("service_account_json: token_uri is not an http(s) URL");
  }
  const std::string pem = delivery::FieldString(o, {"private_key"});
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (key == nullptr) {
    return InvalidArgument("service_account_json: private_key is not a PEM private key");
  }
  sa.key = Pkey(key, PkeyDeleter());
  if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
    return InvalidArgument("service_account_json: private_key is not an RSA key");
  }
  return sa;
}

// RS256: RSASSA-PKCS1-v1_5 with SHA-256 (deterministic, so golden-testable).
std::string SignRs256(EVP_PKEY* key, std::string_view data) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1) {
    return "";
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return "";
  }
  sig.resize(len);
  return sig;
}

std::string FormEscape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

// Sets row[prefix + column(key)] for each member of `o`, nested objects joined with '_'.
// Columns already set (the call's own) win.
void Flatten(const json::object& o, const std::string& prefix, int depth, json::object& row) {
  for (const auto& [k, v] : o) {
    const std::string name = prefix + BigqueryColumnName(k);
    if (v.is_null()) continue;
    if (v.is_object() && depth < kMaxFlattenDepth) {
      Flatten(v.as_object(), name + "_", depth + 1, row);
    } else if (v.is_object() || v.is_array()) {
      if (!row.contains(name)) row[name] = json::serialize(v);
    } else if (!row.contains(name)) {
      row[name] = v;
    }
  }
}

const json::object* ObjectAt(const json::object& e, std::string_view key) {
  const json::value* v = e.if_contains(key);
  return v && v->is_object() ? &v->as_object() : nullptr;
}

class Bigquery final : public delivery::Destination {
 public:
  Bigquery(std::string endpoint, std::string project, std::string dataset, std::string table,
           ServiceAccount sa, const Clock* clock)
      : project_(std::move(project)),
        dataset_(std::move(dataset)),
        table_(std::move(table)),
        sa_(std::move(sa)),
        clock_(clock) {
    while (!endpoint.empty() && endpoint.back() == '/')
      endpoint.pop_back();
    base_ = endpoint + "/bigquery/v2/projects/" + project_ + "/datasets/" + dataset_ + "/tables/";
  }

  // BigQuery's recommendation: ≤ 500 rows per insertAll; its request limit is 10 MB, and rows
  // are re-encoded a little larger than stored, hence 8 MB of stored events.
  delivery::DestinationLimits limits() const override { return {500, 8u << 20}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    std::map<std::string, std::pair<json::array, std::vector<size_t>>> tables;
    std::vector<std::string> order;  // tables in first-seen order
    delivery::MapEachEvent(
        events, &out, [&](size_t i, const json::object& e, std::string_view type) {
          std::string table;
          json::object row;
          row["id"] = events[i].message_id;
          if (type == "track") {
            const std::string name = delivery::FieldString(e, {"event"});
            if (name.empty()) return delivery::EventMapping::Unmappable("track without event");
            table = BigqueryColumnName(name);
            row["event"] = table;
            row["event_text"] = name;
          } else if (type == "page" || type == "screen") {
            table = std::string(type) + "s";
            delivery::SetIfNotEmpty(row, "name", delivery::FieldString(e, {"name"}));
          } else if (type == "identify") {
            table = "identifies";
          } else if (type == "group") {
            table = "groups";
            delivery::SetIfNotEmpty(row, "group_id", delivery::FieldString(e, {"groupId"}));
          } else if (type == "alias") {
            table = "aliases";
            delivery::SetIfNotEmpty(row, "previous_id", delivery::FieldString(e, {"previousId"}));
          } else {
            return delivery::EventMapping::Unmappable("bigquery has no table for type '" +
                                                      std::string(type) + "'");
          }
          if (table.empty()) return delivery::EventMapping::Unmappable("no table name");
          if (!table_.empty()) {
            table = table_;
            row["type"] = std::string(type);
          }
          delivery::SetIfNotEmpty(row, "anonymous_id", delivery::FieldString(e, {"anonymousId"}));
          delivery::SetIfNotEmpty(row, "user_id", delivery::FieldString(e, {"userId"}));
          row["received_at"] = FormatIso8601(events[i].received_at);
          for (auto [key, column] : {std::pair{"sentAt", "sent_at"},
                                     {"timestamp", "timestamp"},
                                     {"originalTimestamp", "original_timestamp"}}) {
            auto ts = ParseIso8601(delivery::FieldString(e, {key}));
            if (ts) row[column] = FormatIso8601(*ts);
          }
          const bool traits = type == "identify" || type == "group";
          if (const json::object* p = ObjectAt(e, traits ? "traits" : "properties")) {
            Flatten(*p, "", 0, row);
          }
          if (const json::object* c = ObjectAt(e, "context")) Flatten(*c, "context_", 0, row);
          auto [it, inserted] = tables.try_emplace(table);
          if (inserted) order.push_back(table);
          json::object r;
          r["insertId"] = events[i].message_id;
          r["json"] = std::move(row);
          it->second.first.push_back(std::move(r));
          it->second.second.push_back(i);
          return delivery::EventMapping::Mapped();
        });
    for (const std::string& table : order) {
      auto& [rows, indexes] = tables[table];
      json::object body;
      body["kind"] = "bigquery#tableDataInsertAllRequest";
      body["skipInvalidRows"] = false;
      body["ignoreUnknownValues"] = false;
      body["rows"] = std::move(rows);
      delivery::HttpRequest r = InsertRequest(base_ + table + "/insertAll", json::serialize(body));
      r.events = std::move(indexes);
      // The URL and body travel in `carry` too: a 401 to the call fetches a new token and
      // sends the call again (the framework keeps no body once sent).
      r.carry = r.url + "\n" + r.body;
      if (HasToken()) {
        r.headers.emplace_back("Authorization", "Bearer " + token_);
        r.step = "insert";
        out.requests.push_back(std::move(r));
      } else {
        out.requests.push_back(TokenRequest(r, "token"));
      }
    }
    return out;
  }

  std::optional<delivery::HttpRequest> FollowUp(const delivery::HttpRequest& sent,
                                                const delivery::HttpResponse& res) override {
    const bool token_step = sent.step == "token" || sent.step == "token-again";
    if (token_step && res.status == 200) {
      boost::system::error_code ec;
      json::value doc = json::parse(res.body, ec);
      if (ec || !doc.is_object()) return std::nullopt;
      const std::string token = delivery::FieldString(doc.as_object(), {"access_token"});
      auto expires = delivery::CountOf(doc.as_object().if_contains("expires_in"));
      if (token.empty()) return std::nullopt;
      token_ = token;
      token_expires_ms_ = clock_->Now().value() + expires.value_or(3600) * 1000;
      const size_t nl = sent.carry.find('\n');
      delivery::HttpRequest insert =
          InsertRequest(sent.carry.substr(0, nl), sent.carry.substr(nl + 1));
      insert.headers.emplace_back("Authorization", "Bearer " + token_);
      insert.step = sent.step == "token" ? "insert" : "insert-again";
      insert.carry = sent.carry;
      return insert;
    }
    // A 401 to a call with a cached token: the token was revoked or expired early. Fetch a new
    // one once; a 401 to the call made with it is classified (refused credentials).
    if (sent.step == "insert" && res.status == 401) {
      token_.clear();
      return TokenRequest(sent, "token-again");
    }
    return std::nullopt;
  }

  std::vector<delivery::Outcome> Classify(const delivery::HttpRequest& request,
                                          const delivery::HttpResponse& response) const override {
    const size_t n = request.events.size();
    if (request.step == "token" || request.step == "token-again") {
      delivery::Outcome o = delivery::ClassifyByStatus(response);
      if (response.status == 400 || response.status == 401 || response.status == 403) {
        o = delivery::Outcome::AuthFailure("bigquery: token: " + OauthError(response));
      } else if (response.status == 200) {
        o = delivery::Outcome::Retry("bigquery: token: no access_token in the answer");
      }
      return std::vector<delivery::Outcome>(n, o);
    }
    if (response.status == 200) return RowOutcomes(request, response);
    delivery::Outcome o = delivery::ClassifyByStatus(response);
    const std::string reason = GoogleReason(response);
    const std::string text = "bigquery: " + GoogleMessage(response);
    if (response.status == 401) {
      o = delivery::Outcome::AuthFailure(text);
    } else if (response.status == 403) {
      o = reason == "rateLimitExceeded" || reason == "quotaExceeded"
              ? delivery::Outcome::Retry(text, delivery::RetryAfterMs(response))
              : delivery::Outcome::AuthFailure(text);
    } else if (o.kind == delivery::Outcome::Kind::kRejected && response.status != 0) {
      o = delivery::Outcome::Rejected(text);
    }
    return std::vector<delivery::Outcome>(n, o);
  }

 private:
  bool HasToken() const {
    return !token_.empty() && clock_->Now().value() + 60'000 < token_expires_ms_;
  }

  static delivery::HttpRequest InsertRequest(std::string url, std::string body) {
    delivery::HttpRequest r;
    r.url = std::move(url);
    r.headers = {{"Content-Type", "application/json"}};
    r.body = std::move(body);
    return r;
  }

  // The token exchange standing in front of `call` (its URL and body carried to the next step).
  delivery::HttpRequest TokenRequest(const delivery::HttpRequest& call, std::string step) const {
    delivery::HttpRequest t;
    t.url = sa_.token_uri;
    t.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    t.body = "grant_type=" + FormEscape(kGrantType) + "&assertion=" + FormEscape(Jwt());
    t.events = call.events;
    t.step = std::move(step);
    t.carry = call.carry;
    return t;
  }

  std::string Jwt() const {
    const int64_t now = clock_->Now().value() / 1000;
    json::object header{{"alg", "RS256"}, {"typ", "JWT"}};
    if (!sa_.private_key_id.empty()) header["kid"] = sa_.private_key_id;
    json::object claims{{"iss", sa_.client_email},
                        {"scope", kScope},
                        {"aud", sa_.token_uri},
                        {"iat", now},
                        {"exp", now + 3600}};
    const std::string signing_input =
        Base64Url(json::serialize(header)) + "." + Base64Url(json::serialize(claims));
    return signing_input + "." + Base64Url(SignRs256(sa_.key.get(), signing_input));
  }

  std::vector<delivery::Outcome> RowOutcomes(const delivery::HttpRequest& request,
                                             const delivery::HttpResponse& response) const {
    std::vector<delivery::Outcome> out(request.events.size(), delivery::Outcome::Delivered());
    boost::system::error_code ec;
    json::value doc = json::parse(response.body, ec);
    if (ec || !doc.is_object()) return out;
    const json::value* errs = doc.as_object().if_contains("insertErrors");
    if (errs == nullptr || !errs->is_array()) return out;
    for (const json::value& e : errs->as_array()) {
      if (!e.is_object()) continue;
      auto index = delivery::CountOf(e.as_object().if_contains("index"));
      if (!index || *index < 0 || static_cast<size_t>(*index) >= out.size()) continue;
      const json::value* list = e.as_object().if_contains("errors");
      std::string invalid, other;
      if (list != nullptr && list->is_array()) {
        for (const json::value& x : list->as_array()) {
          if (!x.is_object()) continue;
          const std::string reason = delivery::FieldString(x.as_object(), {"reason"});
          const std::string message = delivery::FieldString(x.as_object(), {"message"});
          const std::string text = reason + ": " + message;
          if (reason == "invalid") {
            if (invalid.empty()) invalid = text;
          } else if (other.empty()) {
            other = text;
          }
        }
      }
      out[static_cast<size_t>(*index)] =
          !invalid.empty() ? delivery::Outcome::Rejected("bigquery: " + invalid)
                           : delivery::Outcome::Retry("bigquery: " +
                                                      (other.empty() ? "row not inserted" : other));
    }
    return out;
  }

  // Google's error body: {"error": {"code", "message", "errors": [{"reason", "message"}]}}.
  static std::string GoogleMessage(const delivery::HttpResponse& r) {
    boost::system::error_code ec;
    json::value doc = json::parse(r.body, ec);
    if (!ec && doc.is_object()) {
      std::string m = delivery::FieldString(doc.as_object(), {"error", "message"});
      if (!m.empty()) return m;
    }
    return "http " + std::to_string(r.status);
  }
  static std::string GoogleReason(const delivery::HttpResponse& r) {
    boost::system::error_code ec;
    json::value doc = json::parse(r.body, ec);
    if (ec || !doc.is_object()) return "";
    const json::value* errs = delivery::FieldAt(doc.as_object(), {"error", "errors"});
    if (errs == nullptr || !errs->is_array() || errs->as_array().empty() ||
        !errs->as_array()[0].is_object()) {
      return "";
    }
    return delivery::FieldString(errs->as_array()[0].as_object(), {"reason"});
  }
  // OAuth's error body: {"error": "invalid_grant", "error_description": "..."}.
  static std::string OauthError(const delivery::HttpResponse& r) {
    boost::system::error_code ec;
    json::value doc = json::parse(r.body, ec);
    if (!ec && doc.is_object()) {
      std::string e = delivery::FieldString(doc.as_object(), {"error"});
      std::string d = delivery::FieldString(doc.as_object(), {"error_description"});
      if (!e.empty()) return d.empty() ? e : e + ": " + d;
    }
    return "http " + std::to_string(r.status);
  }

  std::string base_;
  std::string project_;
  std::string dataset_;
  std::string table_;
  ServiceAccount sa_;
  const Clock* clock_;
  // The cached access token (set by FollowUp on the stream's thread, read by Encode there).
  std::string token_;
  int64_t token_expires_ms_ = 0;
};

struct BigquerySettings {
  std::string project_id;
  std::string dataset_id;
  std::string table;
  std::string service_account_json;
  std::string endpoint;
};

// BigQuery names: datasets and tables letters, digits and underscores (tables may hold more,
// but Switchyard writes only these); projects also '-', ':' and '.' (domain-scoped ids).
bool IsName(const std::string& s, std::string_view extra, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' &&
        extra.find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string BigqueryColumnName(std::string_view key) {
  std::string out;
  for (size_t i = 0; i < key.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(key[i]);
    if (std::isupper(c)) {
      const unsigned char prev = i > 0 ? static_cast<unsigned char>(key[i - 1]) : 0;
      if (i > 0 && (std::islower(prev) || std::isdigit(prev))) out += '_';
      out += static_cast<char>(std::tolower(c));
    } else if (std::isalnum(c)) {
      out += static_cast<char>(c);
    } else if (!out.empty() && out.back() != '_') {
      out += '_';
    }
  }
  while (!out.empty() && out.back() == '_')
    out.pop_back();
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out.insert(0, "_");
  if (out.size() > 300) out.resize(300);  // BigQuery's column name limit
  return out;
}

delivery::DestinationType BigqueryType(const Clock* clock) {
  using S = BigquerySettings;
  auto t = delivery::MakeDestinationType<S>(
      "bigquery", "Google BigQuery",
      "Streams every call into BigQuery tables (tabledata.insertAll), authenticated as a "
      "service account; a table per event type or one table.",
      delivery::SettingsTable<S>()
          .String("project_id", &S::project_id, "the Google Cloud project of the dataset")
          .Required()
          .String("dataset_id", &S::dataset_id, "the dataset the tables are in")
          .Required()
          .String("table", &S::table,
                  "one table for every row (empty: a table per event type, named as Segment's "
                  "warehouses name them)")
          .Default("")
          .Secret("service_account_json", &S::service_account_json,
                  "the service account's JSON key (client_email, private_key, token_uri); it "
                  "needs the BigQuery Data Editor role on the dataset")
          .Required()
          .Url("endpoint", &S::endpoint, "BigQuery's API host")
          .Default("https://bigquery.googleapis.com"),
      [clock](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (!IsName(s.project_id, "-:.", 100)) {
          return InvalidArgument("project_id: not a Google Cloud project id");
        }
        if (!IsName(s.dataset_id, "", 1024)) {
          return InvalidArgument("dataset_id: letters, digits and underscores only");
        }
        if (!s.table.empty() && !IsName(s.table, "", 1024)) {
          return InvalidArgument("table: letters, digits and underscores only");
        }
        SY_ASSIGN_OR_RETURN(ServiceAccount sa, ParseServiceAccount(s.service_account_json));
        return std::unique_ptr<delivery::Destination>(
            new Bigquery(s.endpoint, s.project_id, s.dataset_id, s.table, std::move(sa), clock));
      });
  t.support = {"all six (a table per event type, or one table)", "≤ 500 rows, 10 MB per request",
               "messageId as insertId", "not forwarded (rows: DELETE by user_id in SQL)"};
  return t;
}

}  // namespace sy::destinations
