#include "destinations/slack/slack.h"

#include <boost/json.hpp>
#include <charconv>

namespace sy::destinations {
namespace {
namespace json = boost::json;

const json::value* Lookup(const json::value& root, std::string_view path) {
  const json::value* cur = &root;
  while (!path.empty()) {
    size_t dot = path.find('.');
    std::string_view key = path.substr(0, dot);
    if (!cur->is_object()) return nullptr;
    cur = cur->as_object().if_contains(key);
    if (!cur) return nullptr;
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  }
  return cur;
}

class Slack final : public delivery::Destination {
 public:
  Slack(std::string url, std::string tmpl) : url_(std::move(url)), template_(std::move(tmpl)) {}

  // Slack takes one message per request; messages over 40,000 characters are truncated by it.
  delivery::DestinationLimits limits() const override { return {1, 40'000}; }

  delivery::EncodedBatch Encode(std::span<const delivery::RoutedEvent> events) const override {
    delivery::EncodedBatch out;
    for (size_t i = 0; i < events.size(); ++i) {
      std::string text = RenderSlackTemplate(template_, events[i].payload);
      if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
        out.unmappable.emplace_back(i, "the template renders an empty message");
        continue;
      }
      delivery::HttpRequest r;
      r.url = url_;
      r.headers = {{"Content-Type", "application/json"}};
      json::object body;
      body["text"] = text;
      r.body = json::serialize(body);
      r.events = {i};
      out.requests.push_back(std::move(r));
    }
    return out;
  }

 private:
  std::string url_;
  std::string template_;
};

}  // namespace

std::string RenderSlackTemplate(std::string_view tmpl, std::string_view event) {
  boost::system::error_code ec;
  json::value doc = json::parse(event, ec);
  if (ec) doc = json::object();
  std::string out;
  size_t pos = 0;
  while (pos < tmpl.size()) {
    size_t open = tmpl.find("{{", pos);
    size_t close = open == std::string_view::npos ? open : tmpl.find("}}", open + 2);
    if (open == std::string_view::npos || close == std::string_view::npos) {
      out += tmpl.substr(pos);
      break;
    }
    out += tmpl.substr(pos, open - pos);
    std::string_view path = tmpl.substr(open + 2, close - open - 2);
    while (!path.empty() && path.front() == ' ')
      path.remove_prefix(1);
    while (!path.empty() && path.back() == ' ')
      path.remove_suffix(1);
    if (const json::value* v = Lookup(doc, path)) {
      if (v->is_string()) {
        out += v->as_string();
      } else if (v->is_double()) {
        char buf[64];
        auto [end, ec2] = std::to_chars(buf, buf + sizeof buf, v->as_double());
        if (ec2 == std::errc()) out.append(buf, end);
      } else {
        out += json::serialize(*v);
      }
    }
    pos = close + 2;
  }
  return out;
}

namespace {

struct SlackSettings {
  std::string webhook_url;
  std::string template_text;
};

}  // namespace

delivery::DestinationType SlackType() {
  using S = SlackSettings;
  auto t = delivery::MakeDestinationType<S>(
      "slack", "Slack", "Posts one message per event to a Slack incoming webhook.",
      delivery::SettingsTable<S>()
          .Url("webhook_url", &S::webhook_url,
               "the incoming webhook URL (https://hooks.slack.com/services/…)")
          .Required()
          .String("template", &S::template_text,
                  "message text; {{path}} is replaced by the event's value at that dotted path")
          .Default("{{type}} {{event}} from {{userId}}"),
      [](const S& s) -> Result<std::unique_ptr<delivery::Destination>> {
        if (s.template_text.empty()) return InvalidArgument("template: must not be empty");
        return std::unique_ptr<delivery::Destination>(new Slack(s.webhook_url, s.template_text));
      });
  t.support = {"all six, rendered by the template", "no (one message per request)", "none", "n/a"};
  return t;
}

}  // namespace sy::destinations
