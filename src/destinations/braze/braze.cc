#include "destinations/braze/braze.h"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>

#include "base/time_format.h"
#include "delivery/event_fields.h"

namespace sy::destinations {
namespace {
namespace json = boost::json;

// Braze's documented per-call limits of /users/track, per array.
constexpr size_t kMaxPerArray = 75;
// The three arrays of a /users/track body, in the order of the URL fragment's layout.
constexpr std::array<const char*, 3> kArrays = {"attributes", "events", "purchases"};
constexpr std::array<char, 3> kArrayKeys = {'a', 'e', 'p'};

std::string Lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Braze's gender codes from the spellings Segment's destination accepts; "" for anything else.
std::string BrazeGender(const std::string& g) {
  const std::string l = Lower(g);
  if (l == "m" || l == "male" || l == "man") return "M";
  if (l == "f" || l == "female" || l == "woman") return "F";
  if (l == "o" || l == "other") return "O";
  if (l == "n" || l == "not applicable") return "N";
  if (l == "p" || l == "prefer not to say") return "P";
  if (l == "u" || l == "unknown") return "U";
  return "";
}

// What one Segment event becomes: entries for each of the three arrays.
struct Piece {
  std::array<json::array, 3> entries;
};

class Braze final : public delivery::Destination {
 public:
  Braze(std::string endpoint, std::string api_key) : auth_("Bearer " + std::move(api_key)) {
    while (!endpoint.empty() && endpoint.back() == '/')
      endpoint.pop_back();
    url_ = endpoint + "/users/track";
  }

  // A chunk of ≤ 75 events fits one request unless orders bring purchases; Encode splits then.
  delivery::DestinationLimits limits() const override { return {kMaxPerArray, 4u << 20}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    Building b;
    delivery::MapEachEvent(
        events, &out, [&](size_t i, const json::object& e, std::string_view type) {
          Piece piece;
          if (type == "page" || type == "screen" || type == "group" || type == "alias") {
            return delivery::EventMapping::Skip("braze /users/track has no " + std::string(type));
          }
          json::object who;
          const std::string user = delivery::FieldString(e, {"userId"});
          const std::string anon = delivery::FieldString(e, {"anonymousId"});
          if (!user.empty()) {
            who["external_id"] = user;
          } else if (!anon.empty()) {
            who["user_alias"] = json::object{{"alias_name", anon}, {"alias_label", "anonymous_id"}};
          } else {
            return delivery::EventMapping::Unmappable("braze needs a userId or anonymousId");
          }
          auto ts = ParseIso8601(delivery::FieldString(e, {"timestamp"}));
          const std::string time = FormatIso8601(ts ? *ts : events[i].received_at);
          if (type == "identify") {
            json::object a = who;
            if (user.empty()) a["_update_existing_only"] = false;
            MapTraits(e, &a);
            piece.entries[0].push_back(std::move(a));
          } else if (type == "track") {
            const std::string name = delivery::FieldString(e, {"event"});
            if (name.empty()) return delivery::EventMapping::Unmappable("track without event");
            const json::value* props = delivery::FieldAt(e, {"properties"});
            const json::value* products = delivery::FieldAt(e, {"properties", "products"});
            if (name == "Order Completed" && products && products->is_array() &&
                !products->as_array().empty()) {
              if (products->as_array().size() > kMaxPerArray) {
                return delivery::EventMapping::Unmappable(
                    "order of " + std::to_string(products->as_array().size()) +
                    " products: braze takes at most 75 purchases per request");
              }
              std::string currency = delivery::FieldString(e, {"properties", "currency"});
              if (currency.empty()) currency = "USD";
              for (const auto& pv : products->as_array()) {
                if (!pv.is_object()) continue;
                const json::object& p = pv.as_object();
                json::object pur = who;
                std::string id = delivery::FieldString(p, {"product_id"});
                if (id.empty()) id = delivery::FieldString(p, {"sku"});
                if (id.empty()) id = delivery::FieldString(p, {"id"});
                if (id.empty()) id = delivery::FieldString(p, {"name"});
                if (id.empty()) return delivery::EventMapping::Unmappable("product without id");
                pur["product_id"] = id;
                pur["currency"] = currency;
                const json::value* price = p.if_contains("price");
                pur["price"] = price && price->is_number() ? *price : json::value(0);
                const json::value* qty = p.if_contains("quantity");
                pur["quantity"] = qty && qty->is_int64() ? *qty : json::value(1);
                pur["time"] = time;
                json::object extra = p;
                for (const char* k : {"product_id", "sku", "id", "price", "quantity"})
                  extra.erase(k);
                if (!extra.empty()) pur["properties"] = std::move(extra);
                piece.entries[2].push_back(std::move(pur));
              }
            } else {
              json::object ev = who;
              ev["name"] = name;
              ev["time"] = time;
              if (props && props->is_object() && !props->as_object().empty())
                ev["properties"] = *props;
              piece.entries[1].push_back(std::move(ev));
            }
          } else {
            return delivery::EventMapping::Unmappable("braze has no mapping for type '" +
                                                      std::string(type) + "'");
          }
          Add(i, std::move(piece), &b, &out);
          return delivery::EventMapping::Mapped();
        });
    Flush(&b, &out);
    return out;
  }

  std::vector<delivery::Outcome> Classify(const delivery::HttpRequest& request,
                                          const delivery::HttpResponse& response) const override {
    const size_t n = request.events.size();
    if (response.status == 401 || response.status == 403) {
      return std::vector(n, delivery::Outcome::AuthFailure("braze: " + Message(response)));
    }
    if (response.status == 429) {
      std::optional<int64_t> after = delivery::RetryAfterMs(response);
      std::string reset = response.Header("X-RateLimit-Reset");
      int64_t reset_s = 0;
      if (auto [p, ec] = std::from_chars(reset.data(), reset.data() + reset.size(), reset_s);
          ec == std::errc() && p == reset.data() + reset.size() && response.received_unix_ms > 0) {
        after = std::clamp<int64_t>(reset_s * 1000 - response.received_unix_ms, 0, 86'400'000);
      }
      return std::vector(n, delivery::Outcome::Retry("braze: rate limited (429)", after));
    }
    delivery::Outcome o = delivery::ClassifyByStatus(response);
    if (o.kind == delivery::Outcome::Kind::kRejected && response.status != 0) {
      o = delivery::Outcome::Rejected("braze: " + Message(response));
    }
    std::vector<delivery::Outcome> out(n, o);
    if (o.kind != delivery::Outcome::Kind::kDelivered) return out;
    // Non-fatal errors: the named objects were not processed, everything else was.
    boost::system::error_code ec;
    json::value doc = json::parse(response.body, ec);
    const json::value* errors =
        !ec && doc.is_object() ? doc.as_object().if_contains("errors") : nullptr;
    if (!errors || !errors->is_array()) return out;
    const auto layout = ParseLayout(request.url);
    for (const auto& err : errors->as_array()) {
      if (!err.is_object()) continue;
      const std::string array = delivery::FieldString(err.as_object(), {"input_array"});
      const json::value* index = err.as_object().if_contains("index");
      if (!index || !index->is_int64() || index->as_int64() < 0) continue;
      for (size_t k = 0; k < kArrays.size(); ++k) {
        if (array != kArrays[k]) continue;
        const size_t at = static_cast<size_t>(index->as_int64());
        if (at >= layout[k].size() || layout[k][at] >= n) continue;
        std::string type = delivery::FieldString(err.as_object(), {"type"});
        out[layout[k][at]] = delivery::Outcome::Rejected("braze rejected " + array + "[" +
                                                         std::to_string(at) + "]: " + type);
      }
    }
    return out;
  }

 private:
  struct Building {
    std::array<json::array, 3> arrays;
    std::array<std::vector<size_t>, 3> layout;  // per array entry: position in `events`
    std::vector<size_t> events;
  };

  void Add(size_t index, Piece piece, Building* b, delivery::EncodedBatch* out) const {
    for (size_t k = 0; k < 3; ++k) {
      if (b->arrays[k].size() + piece.entries[k].size() > kMaxPerArray) {
        Flush(b, out);
        break;
      }
    }
    const size_t pos = b->events.size();
    b->events.push_back(index);
    for (size_t k = 0; k < 3; ++k) {
      for (auto& v : piece.entries[k]) {
        b->arrays[k].push_back(std::move(v));
        b->layout[k].push_back(pos);
      }
    }
  }

  void Flush(Building* b, delivery::EncodedBatch* out) const {
    if (b->events.empty()) return;
    json::object body;
    std::string fragment;
    for (size_t k = 0; k < 3; ++k) {
      if (b->arrays[k].empty()) continue;
      body[kArrays[k]] = std::move(b->arrays[k]);
      fragment += std::string(fragment.empty() ? "#" : "&") + kArrayKeys[k] + "=";
      for (size_t j = 0; j < b->layout[k].size(); ++j)
        fragment += (j ? "," : "") + std::to_string(b->layout[k][j]);
    }
    delivery::HttpRequest r;
    r.url = url_ + fragment;
    r.headers = {{"Content-Type", "application/json"}, {"Authorization", auth_}};
    r.body = json::serialize(body);
    r.events = std::move(b->events);
    out->requests.push_back(std::move(r));
    *b = Building();
  }

  // The fragment Flush wrote: per array, the position in request.events of each entry.
  static std::array<std::vector<size_t>, 3> ParseLayout(const std::string& url) {
    std::array<std::vector<size_t>, 3> layout;
    const size_t hash = url.find('#');
    if (hash == std::string::npos) return layout;
    std::string_view rest = std::string_view(url).substr(hash + 1);
    while (!rest.empty()) {
      const size_t amp = rest.find('&');
      std::string_view part = rest.substr(0, amp);
      rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
      if (part.size() < 2 || part[1] != '=') continue;
      const auto* key = std::find(kArrayKeys.begin(), kArrayKeys.end(), part[0]);
      if (key == kArrayKeys.end()) continue;
      auto& list = layout[static_cast<size_t>(key - kArrayKeys.begin())];
      std::string_view nums = part.substr(2);
      while (!nums.empty()) {
        const size_t comma = nums.find(',');
        std::string_view num = nums.substr(0, comma);
        size_t v = 0;
        std::from_chars(num.data(), num.data() + num.size(), v);
        list.push_back(v);
        nums = comma == std::string_view::npos ? std::string_view() : nums.substr(comma + 1);
      }
    }
    return layout;
  }

  // Segment traits → Braze's standard attributes; the rest as custom attributes.
  static void MapTraits(const json::object& e, json::object* a) {
    const json::value* tv = delivery::FieldAt(e, {"traits"});
    if (!tv || !tv->is_object()) return;
    for (const auto& [key, value] : tv->as_object()) {
      if (key == "firstName" || key == "first_name") {
        (*a)["first_name"] = value;
      } else if (key == "lastName" || key == "last_name") {
        (*a)["last_name"] = value;
      } else if (key == "avatar") {
        (*a)["image_url"] = value;
      } else if (key == "birthday") {
        if (value.is_string()) {
          auto t = ParseIso8601(std::string(value.as_string()));
          if (t) (*a)["dob"] = FormatIso8601(*t).substr(0, 10);
        }
      } else if (key == "gender") {
        if (value.is_string())
          delivery::SetIfNotEmpty(*a, "gender", BrazeGender(std::string(value.as_string())));
      } else if (key == "address") {
        if (value.is_object()) {
          delivery::SetIfNotEmpty(*a, "home_city",
                                  delivery::FieldString(value.as_object(), {"city"}));
          delivery::SetIfNotEmpty(*a, "country",
                                  delivery::FieldString(value.as_object(), {"country"}));
        }
      } else if (key == "id" || key == "userId") {
        continue;  // the identity is external_id
      } else {
        (*a)[key] = value;  // email, phone and custom attributes keep their names
      }
    }
  }

  static std::string Message(const delivery::HttpResponse& response) {
    boost::system::error_code ec;
    json::value doc = json::parse(response.body, ec);
    if (!ec && doc.is_object()) {
      std::string m = delivery::FieldString(doc.as_object(), {"message"});
      if (!m.empty()) return m;
    }
    return "http " + std::to_string(response.status);
  }

  std::string url_;
  std::string auth_;
};

struct BrazeSettings {
  std::string api_key;
  std::string endpoint;
};

}  // namespace

delivery::DestinationType BrazeType() {
  using S = BrazeSettings;
  auto t = delivery::MakeDestinationType<S>(
      "braze", "Braze",
      "Tracks users in Braze (/users/track): identify → attributes, track → events, Order "
      "Completed → purchases.",
      delivery::SettingsTable<S>()
          .Secret("api_key", &S::api_key, "REST API key with users.track permission (Bearer)")
          .Required()
          .Url("endpoint", &S::endpoint,
               "the workspace's REST endpoint, https://rest.<instance>.braze.com (see Braze's "
               "API overview for your instance)")
          .Default("https://rest.iad-01.braze.com"),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (s.api_key.empty()) return InvalidArgument("api_key: must not be empty");
        return std::unique_ptr<delivery::Destination>(new Braze(s.endpoint, s.api_key));
      });
  t.support = {"identify, track (Order Completed → purchases); page, screen, group, alias skipped",
               "≤ 75 attributes + 75 events + 75 purchases per request",
               "none (Braze has no dedupe key on /users/track)",
               "not forwarded (Braze: /users/delete)"};
  return t;
}

}  // namespace sy::destinations
