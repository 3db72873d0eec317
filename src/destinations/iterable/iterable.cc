#include "destinations/iterable/iterable.h"

#include <boost/json.hpp>
#include <cctype>
#include <map>

#include "base/time_format.h"
#include "delivery/event_fields.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

// Percent-encodes everything but unreserved characters, so ',', '&', '=' and '#' stay
// separators in the URL fragment.
std::string Escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '@') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
      };
      const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  while (true) {
    const size_t at = s.find(sep);
    out.emplace_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s = s.substr(at + 1);
  }
}

// The lists of Iterable's bulk response that name refused emails / userIds.
constexpr const char* kEmailLists[] = {"invalidEmails", "notFoundEmails", "forgottenEmails",
                                       "conflictEmails"};
constexpr const char* kUserIdLists[] = {"invalidUserIds", "notFoundUserIds", "forgottenUserIds",
                                        "conflictUserIds"};

class Iterable final : public delivery::Destination {
 public:
  Iterable(std::string endpoint, std::string api_key) : api_key_(std::move(api_key)) {
    while (!endpoint.empty() && endpoint.back() == '/')
      endpoint.pop_back();
    endpoint_ = std::move(endpoint);
  }

  delivery::DestinationLimits limits() const override { return {1000, 3u << 20}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    Building tracks, users;
    delivery::MapEachEvent(
        events, &out, [&](size_t i, const json::object& e, std::string_view type) {
          if (type != "track" && type != "identify") {
            return delivery::EventMapping::Skip("iterable takes track and identify, not " +
                                                std::string(type));
          }
          const std::string user = delivery::FieldString(e, {"userId"});
          std::string email = delivery::FieldString(e, {"traits", "email"});
          if (email.empty()) email = delivery::FieldString(e, {"properties", "email"});
          if (email.empty()) email = delivery::FieldString(e, {"context", "traits", "email"});
          if (user.empty() && email.empty()) {
            return delivery::EventMapping::Skip("iterable needs a userId or an email");
          }
          json::object o;
          delivery::SetIfNotEmpty(o, "email", email);
          delivery::SetIfNotEmpty(o, "userId", user);
          std::string name;
          if (type == "track") {
            name = delivery::FieldString(e, {"event"});
            if (name.empty()) return delivery::EventMapping::Unmappable("track without event");
            o["eventName"] = name;
            o["id"] = events[i].message_id;
            auto ts = ParseIso8601(delivery::FieldString(e, {"timestamp"}));
            o["createdAt"] = (ts ? *ts : events[i].received_at).value() / 1000;
            const json::value* p = delivery::FieldAt(e, {"properties"});
            o["dataFields"] = p && p->is_object() ? *p : json::object();
          } else {
            const json::value* t = delivery::FieldAt(e, {"traits"});
            o["dataFields"] = t && t->is_object() ? *t : json::object();
            o["preferUserId"] = true;
            o["mergeNestedObjects"] = true;
          }
          Building& b = type == "track" ? tracks : users;
          b.items.push_back(std::move(o));
          b.events.push_back(i);
          b.keys += std::string(b.keys.empty() ? "#" : ",") + Escape(email) + ";" + Escape(user) +
                    ";" + Escape(name);
          return delivery::EventMapping::Mapped();
        });
    Finish("/api/events/trackBulk", "events", &tracks, &out);
    Finish("/api/users/bulkUpdate", "users", &users, &out);
    return out;
  }

  std::vector<delivery::Outcome> Classify(const delivery::HttpRequest& request,
                                          const delivery::HttpResponse& response) const override {
    const size_t n = request.events.size();
    if (response.status == 401 || response.status == 403) {
      return std::vector(n, delivery::Outcome::AuthFailure("iterable: " + Message(response)));
    }
    delivery::Outcome o = delivery::ClassifyByStatus(response);
    if (o.kind == delivery::Outcome::Kind::kRejected && response.status != 0) {
      o = delivery::Outcome::Rejected("iterable: " + Message(response));
    }
    std::vector<delivery::Outcome> out(n, o);
    if (o.kind != delivery::Outcome::Kind::kDelivered) return out;
    boost::system::error_code ec;
    json::value doc = json::parse(response.body, ec);
    if (ec || !doc.is_object()) return out;
    // Identifier → why Iterable refused it.
    std::map<std::string, std::string> bad_email, bad_user, bad_name;
    auto collect = [](const json::value* list, const char* why,
                      std::map<std::string, std::string>* into) {
      if (!list || !list->is_array()) return;
      for (const auto& v : list->as_array())
        if (v.is_string()) into->emplace(std::string(v.as_string()), why);
    };
    const json::value* failed = doc.as_object().if_contains("failedUpdates");
    if (failed && failed->is_object()) {
      for (const char* l : kEmailLists)
        collect(failed->as_object().if_contains(l), l, &bad_email);
      for (const char* l : kUserIdLists)
        collect(failed->as_object().if_contains(l), l, &bad_user);
    }
    collect(doc.as_object().if_contains("disallowedEventNames"), "disallowedEventNames", &bad_name);
    if (bad_email.empty() && bad_user.empty() && bad_name.empty()) return out;
    const size_t hash = request.url.find('#');
    if (hash == std::string::npos) return out;
    const auto keys = Split(std::string_view(request.url).substr(hash + 1), ',');
    for (size_t k = 0; k < keys.size() && k < n; ++k) {
      const auto parts = Split(keys[k], ';');
      if (parts.size() != 3) continue;
      const std::string email = Unescape(parts[0]), user = Unescape(parts[1]),
                        name = Unescape(parts[2]);
      std::string why;
      if (auto it = bad_email.find(email); !email.empty() && it != bad_email.end()) {
        why = it->second + " " + email;
      } else if (auto iu = bad_user.find(user); !user.empty() && iu != bad_user.end()) {
        why = iu->second + " " + user;
      } else if (auto in = bad_name.find(name); !name.empty() && in != bad_name.end()) {
        why = in->second + " " + name;
      }
      if (!why.empty()) out[k] = delivery::Outcome::Rejected("iterable rejected: " + why);
    }
    return out;
  }

 private:
  struct Building {
    json::array items;
    std::vector<size_t> events;
    std::string keys;  // the URL fragment: per event "email;userId;eventName", escaped
  };

  void Finish(const char* path, const char* key, Building* b, delivery::EncodedBatch* out) const {
    if (b->events.empty()) return;
    json::object body;
    body[key] = std::move(b->items);
    delivery::HttpRequest r;
    r.url = endpoint_ + path + b->keys;
    r.headers = {{"Content-Type", "application/json"}, {"Api-Key", api_key_}};
    r.body = json::serialize(body);
    r.events = std::move(b->events);
    out->requests.push_back(std::move(r));
  }

  // Iterable's error body: {"msg": "...", "code": "BadParams", "params": ...}.
  static std::string Message(const delivery::HttpResponse& response) {
    boost::system::error_code ec;
    json::value doc = json::parse(response.body, ec);
    if (!ec && doc.is_object()) {
      std::string code = delivery::FieldString(doc.as_object(), {"code"});
      std::string msg = delivery::FieldString(doc.as_object(), {"msg"});
      if (!code.empty() || !msg.empty()) return code + (msg.empty() ? "" : ": " + msg);
    }
    return "http " + std::to_string(response.status);
  }

  std::string endpoint_;
  std::string api_key_;
};

struct IterableSettings {
  std::string api_key;
  std::string endpoint;
};

}  // namespace

delivery::DestinationType IterableType() {
  using S = IterableSettings;
  auto t = delivery::MakeDestinationType<S>(
      "iterable", "Iterable",
      "Tracks events (events/trackBulk) and updates users (users/bulkUpdate) in Iterable.",
      delivery::SettingsTable<S>()
          .Secret("api_key", &S::api_key, "server-side API key (Api-Key header)")
          .Required()
          .Url("endpoint", &S::endpoint, "API base URL (EU: https://api.eu.iterable.com)")
          .Default("https://api.iterable.com"),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (s.api_key.empty()) return InvalidArgument("api_key: must not be empty");
        return std::unique_ptr<delivery::Destination>(new Iterable(s.endpoint, s.api_key));
      });
  t.support = {"track, identify (with a userId or email); page, screen, group, alias skipped",
               "≤ 1,000 events or users, 4 MB per request",
               "messageId as the event id (a resend updates, not duplicates)",
               "not forwarded (Iterable: users/forget)"};
  return t;
}

}  // namespace sy::destinations
