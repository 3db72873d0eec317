#include "destinations/http_mapped/mapping.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "base/time_format.h"

namespace sy::destinations::http_mapped {

namespace json = boost::json;

const char* const kTopLevelFields[] = {
    "type",       "event",     "name",      "userId",       "anonymousId",       "groupId",
    "previousId", "messageId", "timestamp", "sentAt",       "originalTimestamp", "receivedAt",
    "properties", "traits",    "context",   "integrations", "category",          "writeKey",
    "version",    nullptr};

namespace {

enum class Fn {
  kSha256,
  kMd5,
  kLowercase,
  kUppercase,
  kTrim,
  kDigits,
  kToUnixSeconds,
  kToUnixMillis,
  kToIso8601,
  kConcat,
  kDefault,
};

struct FnSpec {
  const char* name;
  Fn fn;
  size_t min_args;
  size_t max_args;  // SIZE_MAX: any number
};

constexpr FnSpec kFunctions[] = {
    {"sha256", Fn::kSha256, 1, 1},
    {"md5", Fn::kMd5, 1, 1},
    {"lowercase", Fn::kLowercase, 1, 1},
    {"uppercase", Fn::kUppercase, 1, 1},
    {"trim", Fn::kTrim, 1, 1},
    {"digits", Fn::kDigits, 1, 1},
    {"to_unix_seconds", Fn::kToUnixSeconds, 1, 1},
    {"to_unix_millis", Fn::kToUnixMillis, 1, 1},
    {"to_iso8601", Fn::kToIso8601, 1, 1},
    {"concat", Fn::kConcat, 1, SIZE_MAX},
    {"default", Fn::kDefault, 2, SIZE_MAX},
};

// Calls nest at most this deep (the parser recurses).
constexpr int kMaxNesting = 16;

}  // namespace

struct Expr {
  enum class Op { kLiteral, kPath, kMessageId, kReceivedAt, kSource, kApiKey, kCall };
  Op op = Op::kLiteral;
  json::value literal;                       // kLiteral
  std::vector<std::string> path;             // kPath: object keys (or list indexes)
  std::vector<std::optional<size_t>> index;  // kPath: each segment as a list index, if numeric
  Fn fn = Fn::kDefault;                      // kCall
  std::vector<Expr> args;                    // kCall

  bool ReadsEvent() const {
    if (op == Op::kPath || op == Op::kMessageId || op == Op::kReceivedAt || op == Op::kSource)
      return true;
    return std::any_of(args.begin(), args.end(), [](const Expr& a) { return a.ReadsEvent(); });
  }
};

namespace {

// ---- parsing ---------------------------------------------------------------------------------

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  std::optional<std::string> ParseWhole(Expr* out) {
    if (auto e = ParseExpr(out, 0)) return e;
    SkipSpace();
    if (pos_ != s_.size()) return "unexpected '" + std::string(s_.substr(pos_, 1)) + "'";
    return std::nullopt;
  }

 private:
  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n'))
      ++pos_;
  }
  static bool IsIdentStart(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
  }
  static bool IsSegmentChar(char c) {
    return IsIdentStart(c) || (c >= '0' && c <= '9') || c == '-';
  }

  std::optional<std::string> ParseExpr(Expr* out, int depth) {
    if (depth > kMaxNesting)
      return "calls nested more than " + std::to_string(kMaxNesting) + " deep";
    SkipSpace();
    if (pos_ == s_.size()) return std::string("expected an expression");
    char c = s_[pos_];
    if (c == '\'' || c == '"') return ParseString(out);
    if ((c >= '0' && c <= '9') || c == '-') return ParseNumber(out);
    if (!IsIdentStart(c)) return "unexpected '" + std::string(1, c) + "'";
    size_t start = pos_;
    while (pos_ < s_.size() && IsSegmentChar(s_[pos_]))
      ++pos_;
    std::string ident(s_.substr(start, pos_ - start));
    size_t after = pos_;
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == '(') {
      ++pos_;
      const FnSpec* spec = nullptr;
      for (const auto& f : kFunctions)
        if (ident == f.name) spec = &f;
      if (!spec) {
        std::string known;
        for (const auto& f : kFunctions)
          known += (known.empty() ? "" : ", ") + std::string(f.name);
        return "unknown function '" + ident + "' (known: " + known + ")";
      }
      out->op = Expr::Op::kCall;
      out->fn = spec->fn;
      SkipSpace();
      if (pos_ < s_.size() && s_[pos_] == ')') {
        ++pos_;
      } else {
        for (;;) {
          Expr arg;
          if (auto e = ParseExpr(&arg, depth + 1)) return e;
          out->args.push_back(std::move(arg));
          SkipSpace();
          if (pos_ < s_.size() && s_[pos_] == ',') {
            ++pos_;
            continue;
          }
          if (pos_ < s_.size() && s_[pos_] == ')') {
            ++pos_;
            break;
          }
          return "expected ',' or ')' in the call of " + ident;
        }
      }
      if (out->args.size() < spec->min_args || out->args.size() > spec->max_args) {
        std::string want = spec->min_args == spec->max_args
                               ? std::to_string(spec->min_args)
                               : "at least " + std::to_string(spec->min_args);
        return ident + " takes " + want + " argument" + (want == "1" ? "" : "s") + ", not " +
               std::to_string(out->args.size());
      }
      return std::nullopt;
    }
    pos_ = after;
    if (ident == "true" || ident == "false") {
      out->literal = ident == "true";
      return std::nullopt;
    }
    if (ident == "null") {
      out->literal = nullptr;
      return std::nullopt;
    }
    if (ident[0] == '$') {
      if (ident == "$message_id") {
        out->op = Expr::Op::kMessageId;
      } else if (ident == "$received_at") {
        out->op = Expr::Op::kReceivedAt;
      } else if (ident == "$source") {
        out->op = Expr::Op::kSource;
      } else if (ident == "$api_key") {
        out->op = Expr::Op::kApiKey;
      } else {
        return "unknown name '" + ident + "' (known: $message_id, $received_at, $source, $api_key)";
      }
      return std::nullopt;
    }
    bool known = false;
    for (const char* const* f = kTopLevelFields; *f; ++f)
      if (ident == *f) known = true;
    if (!known) {
      std::string fields;
      for (const char* const* f = kTopLevelFields; *f; ++f)
        fields += (fields.empty() ? "" : ", ") + std::string(*f);
      return "unknown field '" + ident + "' (a path starts with one of: " + fields + ")";
    }
    out->op = Expr::Op::kPath;
    out->path.push_back(std::move(ident));
    while (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      size_t seg = pos_;
      while (pos_ < s_.size() && IsSegmentChar(s_[pos_]))
        ++pos_;
      if (pos_ == seg) return std::string("empty key in a path");
      out->path.emplace_back(s_.substr(seg, pos_ - seg));
    }
    for (const auto& seg : out->path) {
      size_t n = 0;
      auto [p, ec] = std::from_chars(seg.data(), seg.data() + seg.size(), n);
      out->index.push_back(ec == std::errc() && p == seg.data() + seg.size()
                               ? std::optional<size_t>(n)
                               : std::nullopt);
    }
    return std::nullopt;
  }

  std::optional<std::string> ParseString(Expr* out) {
    char quote = s_[pos_++];
    std::string text;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
      text += s_[pos_++];
    }
    if (pos_ == s_.size()) return std::string("unterminated string");
    ++pos_;
    out->literal = json::string(text);
    return std::nullopt;
  }

  std::optional<std::string> ParseNumber(Expr* out) {
    size_t start = pos_;
    if (s_[pos_] == '-') ++pos_;
    while (pos_ < s_.size() &&
           ((s_[pos_] >= '0' && s_[pos_] <= '9') || s_[pos_] == '.' || s_[pos_] == 'e' ||
            s_[pos_] == 'E' || s_[pos_] == '+' || s_[pos_] == '-'))
      ++pos_;
    boost::system::error_code ec;
    json::value v = json::parse(s_.substr(start, pos_ - start), ec);
    if (ec || !v.is_number())
      return "bad number '" + std::string(s_.substr(start, pos_ - start)) + "'";
    out->literal = std::move(v);
    return std::nullopt;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

// ---- evaluation ------------------------------------------------------------------------------

void AppendNumberText(const json::value& v, std::string* out) {
  char buf[32];
  std::to_chars_result r{};
  if (v.is_int64()) {
    r = std::to_chars(buf, buf + sizeof buf, v.get_int64());
  } else if (v.is_uint64()) {
    r = std::to_chars(buf, buf + sizeof buf, v.get_uint64());
  } else {
    double d = v.get_double();
    if (!std::isfinite(d)) d = 0;  // JSON has no NaN (see delivery::RestoreZerosReadAsNaN)
    r = std::to_chars(buf, buf + sizeof buf, d);
  }
  out->append(buf, r.ptr);
}

// A value as text: a string's own text, a number's shortest form, other values as JSON.
void AppendText(const json::value& v, std::string* out) {
  if (v.is_string()) {
    out->append(v.get_string().data(), v.get_string().size());
  } else if (v.is_number()) {
    AppendNumberText(v, out);
  } else if (v.is_bool()) {
    out->append(v.get_bool() ? "true" : "false");
  } else {
    out->append(json::serialize(v));
  }
}

std::string Text(const json::value& v) {
  std::string out;
  AppendText(v, &out);
  return out;
}

void AppendUrlEncoded(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out->push_back(static_cast<char>(c));
    } else {
      out->push_back('%');
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    }
  }
}

std::string DigestHex(const EVP_MD* md, std::string_view data) {
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), buf, &len, md, nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(kHex[buf[i] >> 4]);
    out.push_back(kHex[buf[i] & 15]);
  }
  return out;
}

bool Absent(const std::optional<json::value>& v) {
  return !v || v->is_null();
}

std::optional<json::value> Eval(const Expr& e, const Scope& scope);

std::optional<json::value> Call(const Expr& e, const Scope& scope) {
  if (e.fn == Fn::kDefault) {
    for (const auto& a : e.args) {
      auto v = Eval(a, scope);
      if (Absent(v) || (v->is_string() && v->get_string().empty())) continue;
      return v;
    }
    return std::nullopt;
  }
  if (e.fn == Fn::kConcat) {
    std::string out;
    for (const auto& a : e.args) {
      auto v = Eval(a, scope);
      if (Absent(v)) return std::nullopt;
      AppendText(*v, &out);
    }
    return json::value(json::string(out));
  }
  auto arg = Eval(e.args[0], scope);
  if (Absent(arg)) return std::nullopt;
  switch (e.fn) {
    case Fn::kSha256:
      return json::value(json::string(DigestHex(EVP_sha256(), Text(*arg))));
    case Fn::kMd5:
      return json::value(json::string(DigestHex(EVP_md5(), Text(*arg))));
    case Fn::kLowercase:
    case Fn::kUppercase: {
      std::string s = Text(*arg);
      for (char& c : s) {
        if (e.fn == Fn::kLowercase && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (e.fn == Fn::kUppercase && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      }
      return json::value(json::string(s));
    }
    case Fn::kTrim: {
      std::string s = Text(*arg);
      size_t b = s.find_first_not_of(" \t\r\n\f\v");
      if (b == std::string::npos) return json::value(json::string());
      size_t end = s.find_last_not_of(" \t\r\n\f\v");
      return json::value(json::string(s.substr(b, end - b + 1)));
    }
    case Fn::kDigits: {
      std::string s = Text(*arg), out;
      for (char c : s)
        if (c >= '0' && c <= '9') out.push_back(c);
      return json::value(json::string(out));
    }
    case Fn::kToUnixSeconds:
    case Fn::kToUnixMillis: {
      if (!arg->is_string()) return std::nullopt;
      auto t = ParseIso8601(std::string_view(arg->get_string()));
      if (!t) return std::nullopt;
      int64_t ms = t->value();
      if (e.fn == Fn::kToUnixMillis) return json::value(ms);
      return json::value(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
    }
    case Fn::kToIso8601: {
      if (arg->is_string()) {
        auto t = ParseIso8601(std::string_view(arg->get_string()));
        if (!t) return std::nullopt;
        return json::value(json::string(FormatIso8601(*t)));
      }
      if (arg->is_int64())
        return json::value(json::string(FormatIso8601(TimestampMs(arg->get_int64()))));
      if (arg->is_uint64() && arg->get_uint64() <= static_cast<uint64_t>(INT64_MAX))
        return json::value(
            json::string(FormatIso8601(TimestampMs(static_cast<int64_t>(arg->get_uint64())))));
      return std::nullopt;
    }
    case Fn::kConcat:
    case Fn::kDefault:
      break;
  }
  return std::nullopt;
}

std::optional<json::value> Eval(const Expr& e, const Scope& scope) {
  switch (e.op) {
    case Expr::Op::kLiteral:
      return e.literal;
    case Expr::Op::kMessageId:
      if (!scope.event) return std::nullopt;
      return json::value(json::string(scope.message_id));
    case Expr::Op::kReceivedAt:
      if (!scope.event) return std::nullopt;
      return json::value(scope.received_at_ms);
    case Expr::Op::kSource:
      if (!scope.event) return std::nullopt;
      return json::value(json::string(scope.source));
    case Expr::Op::kApiKey:
      return json::value(json::string(scope.api_key));
    case Expr::Op::kCall:
      return Call(e, scope);
    case Expr::Op::kPath: {
      if (!scope.event) return std::nullopt;
      const json::value* v = scope.event->if_contains(e.path[0]);
      for (size_t i = 1; v && i < e.path.size(); ++i) {
        if (v->is_object()) {
          v = v->get_object().if_contains(e.path[i]);
        } else if (v->is_array() && e.index[i]) {
          const auto& a = v->get_array();
          v = *e.index[i] < a.size() ? &a[*e.index[i]] : nullptr;
        } else {
          v = nullptr;
        }
      }
      if (!v) return std::nullopt;
      return *v;
    }
  }
  return std::nullopt;
}

}  // namespace

// ---- StringTemplate --------------------------------------------------------------------------

struct StringTemplate::Part {
  std::string text;  // literal text, when !expr
  std::optional<Expr> expr;
};

StringTemplate::StringTemplate() = default;
StringTemplate::~StringTemplate() = default;
StringTemplate::StringTemplate(StringTemplate&&) noexcept = default;
StringTemplate& StringTemplate::operator=(StringTemplate&&) noexcept = default;

std::optional<std::string> StringTemplate::Compile(std::string_view text, StringTemplate* out) {
  out->parts_.clear();
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) {
      out->parts_.push_back({std::string(text.substr(pos)), std::nullopt});
      break;
    }
    if (open > pos)
      out->parts_.push_back({std::string(text.substr(pos, open - pos)), std::nullopt});
    size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) return std::string("'{{' without '}}'");
    Expr e;
    if (auto problem = Parser(text.substr(open + 2, close - open - 2)).ParseWhole(&e))
      return problem;
    out->parts_.push_back({"", std::move(e)});
    pos = close + 2;
  }
  for (const auto& p : out->parts_)
    if (!p.expr && p.text.find("}}") != std::string::npos) return std::string("'}}' without '{{'");
  return std::nullopt;
}

bool StringTemplate::has_expressions() const {
  return std::any_of(parts_.begin(), parts_.end(),
                     [](const Part& p) { return p.expr.has_value(); });
}

bool StringTemplate::reads_event() const {
  return std::any_of(parts_.begin(), parts_.end(),
                     [](const Part& p) { return p.expr && p.expr->ReadsEvent(); });
}

std::optional<json::value> StringTemplate::Evaluate(const Scope& scope, bool url_encode) const {
  if (parts_.size() == 1 && parts_[0].expr && !url_encode) return Eval(*parts_[0].expr, scope);
  auto text = EvaluateText(scope, url_encode);
  if (!text) return std::nullopt;
  return json::value(json::string(*text));
}

std::optional<std::string> StringTemplate::EvaluateText(const Scope& scope, bool url_encode) const {
  std::string out;
  for (const auto& p : parts_) {
    if (!p.expr) {
      out += p.text;
      continue;
    }
    auto v = Eval(*p.expr, scope);
    if (Absent(v)) return std::nullopt;
    if (url_encode) {
      AppendUrlEncoded(Text(*v), &out);
    } else {
      AppendText(*v, &out);
    }
  }
  return out;
}

// ---- TreeTemplate ----------------------------------------------------------------------------

struct TreeTemplate::Node {
  enum class Kind { kLiteral, kTemplate, kObject, kArray, kEventsMarker };
  Kind kind = Kind::kLiteral;
  json::value literal;
  StringTemplate tmpl;
  // kObject: the fields in order (a key starting with "..." spreads its value).
  std::vector<std::string> keys;
  std::vector<bool> spread;
  std::vector<Node> values;
  std::vector<Node> items;  // kArray

  bool ReadsEvent() const {
    if (kind == Kind::kTemplate) return tmpl.reads_event();
    for (const auto& v : values)
      if (v.ReadsEvent()) return true;
    for (const auto& i : items)
      if (i.ReadsEvent()) return true;
    return false;
  }
  size_t Markers() const {
    size_t n = kind == Kind::kEventsMarker ? 1 : 0;
    for (const auto& v : values)
      n += v.Markers();
    for (const auto& i : items)
      n += i.Markers();
    return n;
  }

  std::optional<json::value> Evaluate(const Scope& scope) const {
    switch (kind) {
      case Kind::kLiteral:
        return literal;
      case Kind::kEventsMarker:
        return json::value(json::string(kEventsMarker));
      case Kind::kTemplate:
        return tmpl.Evaluate(scope);
      case Kind::kObject: {
        json::object o;
        o.reserve(keys.size());
        for (size_t i = 0; i < keys.size(); ++i) {
          auto v = values[i].Evaluate(scope);
          if (!v) continue;
          if (!spread[i]) {
            o.insert_or_assign(keys[i], std::move(*v));
          } else if (v->is_object()) {
            for (auto& kv : v->get_object())
              o.insert_or_assign(kv.key(), std::move(kv.value()));
          }
        }
        return json::value(std::move(o));
      }
      case Kind::kArray: {
        json::array a;
        a.reserve(items.size());
        for (const auto& i : items)
          if (auto v = i.Evaluate(scope)) a.push_back(std::move(*v));
        return json::value(std::move(a));
      }
    }
    return std::nullopt;
  }
};

namespace {

bool IsEventsMarker(std::string_view s) {
  auto trim = [](std::string_view v) {
    while (!v.empty() && v.front() == ' ')
      v.remove_prefix(1);
    while (!v.empty() && v.back() == ' ')
      v.remove_suffix(1);
    return v;
  };
  s = trim(s);
  if (!s.starts_with("{{") || !s.ends_with("}}") || s.size() < 4) return false;
  return trim(s.substr(2, s.size() - 4)) == "events";
}

}  // namespace

TreeTemplate::TreeTemplate() = default;
TreeTemplate::~TreeTemplate() = default;
TreeTemplate::TreeTemplate(TreeTemplate&&) noexcept = default;
TreeTemplate& TreeTemplate::operator=(TreeTemplate&&) noexcept = default;

TreeTemplate TreeTemplate::Compile(const json::value& tree, const std::string& prefix,
                                   bool allow_events_marker, std::vector<std::string>* errors) {
  TreeTemplate t;
  t.root_ = std::make_unique<Node>();
  CompileNode(tree, prefix, allow_events_marker, t.root_.get(), errors);
  return t;
}

void TreeTemplate::CompileNode(const json::value& v, const std::string& path, bool allow_marker,
                               Node* out, std::vector<std::string>* errors) {
  if (v.is_object()) {
    out->kind = Node::Kind::kObject;
    for (const auto& kv : v.get_object()) {
      std::string key(kv.key());
      std::string child_path = path + "." + key;
      bool spread = key.starts_with("...");
      Node value;
      CompileNode(kv.value(), child_path, allow_marker, &value, errors);
      if (spread && value.kind != Node::Kind::kTemplate)
        errors->push_back(child_path +
                          ": a spread ('...') takes one expression, such as '{{ properties }}'");
      out->keys.push_back(std::move(key));
      out->spread.push_back(spread);
      out->values.push_back(std::move(value));
    }
    return;
  }
  if (v.is_array()) {
    out->kind = Node::Kind::kArray;
    size_t i = 0;
    for (const auto& item : v.get_array()) {
      Node n;
      CompileNode(item, path + "[" + std::to_string(i++) + "]", allow_marker, &n, errors);
      out->items.push_back(std::move(n));
    }
    return;
  }
  if (v.is_string() && v.get_string().find("{{") != json::string::npos) {
    std::string_view s = v.get_string();
    if (IsEventsMarker(s)) {
      if (allow_marker) {
        out->kind = Node::Kind::kEventsMarker;
      } else {
        errors->push_back(path +
                          ": {{ events }} marks where a batch's events go, only in "
                          "batch_envelope");
      }
      return;
    }
    out->kind = Node::Kind::kTemplate;
    if (auto problem = StringTemplate::Compile(s, &out->tmpl))
      errors->push_back(path + ": " + *problem);
    return;
  }
  out->kind = Node::Kind::kLiteral;
  out->literal = v;
}

std::optional<json::value> TreeTemplate::Evaluate(const Scope& scope) const {
  return root_ ? root_->Evaluate(scope) : std::nullopt;
}

bool TreeTemplate::reads_event() const {
  return root_ && root_->ReadsEvent();
}

size_t TreeTemplate::events_markers() const {
  return root_ ? root_->Markers() : 0;
}

}  // namespace sy::destinations::http_mapped
