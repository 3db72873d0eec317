#include "destinations/describe.h"

#include <algorithm>

namespace sy::destinations {
namespace {

// Display width of UTF-8 text: its code points (the tables hold no wide characters).
size_t Width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    n += (c & 0xC0) != 0x80;
  return n;
}

std::string Pad(std::string s, size_t width) {
  if (Width(s) < width) s.append(width - Width(s), ' ');
  return s;
}

// A cell of a Markdown table: pipes escaped, never empty.
std::string Cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

std::string TypeText(const delivery::SettingSpec& s) {
  std::string t(delivery::SettingTypeName(s.type));
  if (s.type == delivery::SettingType::kEnum) {
    std::string v;
    for (const auto& a : s.allowed)
      v += (v.empty() ? "" : " \\| ") + a;
    t += ": " + v;
  }
  if (s.type == delivery::SettingType::kStringList && !s.allowed.empty()) {
    std::string v;
    for (const auto& a : s.allowed)
      v += (v.empty() ? "" : " \\| ") + a;
    t += " of " + v;
  }
  auto bound = [&](int64_t b) {
    return std::to_string(b) + (s.type == delivery::SettingType::kDurationMs ? "ms" : "");
  };
  if (s.min && s.max) {
    t += ", " + bound(*s.min) + "–" + bound(*s.max);
  } else if (s.min) {
    t += ", ≥ " + bound(*s.min);
  } else if (s.max) {
    t += ", ≤ " + bound(*s.max);
  }
  return t;
}

std::string PlainTypeText(const delivery::SettingSpec& s) {
  std::string t = TypeText(s);
  std::string out;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '\\' && i + 1 < t.size() && t[i + 1] == '|') continue;
    out += t[i];
  }
  return out;
}

std::string GeneratedBlock(const BuiltinDestination& b) {
  const auto& t = b.type;
  std::string out = std::string(kGeneratedBegin) + "\n# `" + t.type + "` — " + t.display_name +
                    "\n\n" + t.description + "\n\n";
  out += "In config: `type: " + t.type + "`. In an event's integrations object: `\"" +
         t.display_name + "\"` (or the destination's configured name).\n\n";
  if (b.test_double) {
    out +=
        "**Test double**: offered only when the server and the CLI run with "
        "`SWITCHYARD_TEST_DESTINATIONS=1` "
        "([../delivery.md](../delivery.md#test-destinations)).\n\n";
  }
  const auto& sup = t.support;
  out += "| supports | |\n|---|---|\n| event types | " + Cell(sup.event_types) + " |\n| batch | " +
         Cell(sup.batch) + " |\n| idempotency | " + Cell(sup.idempotency) +
         " |\n| deletion API | " + Cell(sup.deletion) + " |\n\n";
  if (t.settings.empty()) {
    out += "No settings.\n";
  } else {
    out += "| setting | type | default | required | description |\n";
    out += "|---|---|---|---|---|\n";
    for (const auto& s : t.settings) {
      out += "| `" + s.name + "` | " + TypeText(s) + " | " +
             (s.default_value.empty() ? "" : "`" + Cell(s.default_value) + "`") + " | " +
             (s.required ? "yes" : "") + " | " + Cell(s.description) + " |\n";
    }
  }
  out += std::string(kGeneratedEnd) + "\n";
  return out;
}

}  // namespace

std::string DocPageName(const BuiltinDestination& type) {
  return type.type.type + ".md";
}

std::string DescribeTypes(const std::vector<const BuiltinDestination*>& types) {
  std::string out;
  for (const auto* b : types) {
    const auto& t = b->type;
    out += t.type + " (" + t.display_name + (b->test_double ? ", test double" : "") +
           "): " + t.description + "\n";
    if (t.settings.empty()) {
      out += "  (no settings)\n\n";
      continue;
    }
    size_t wn = 4, wt = 4, wd = 7;
    for (const auto& s : t.settings) {
      wn = std::max(wn, Width(s.name));
      wt = std::max(wt, Width(PlainTypeText(s)));
      wd = std::max(wd, Width(s.default_value));
    }
    out += "  " + Pad("name", wn) + "  " + Pad("type", wt) + "  " + Pad("default", wd) +
           "  required  description\n";
    for (const auto& s : t.settings) {
      out += "  " + Pad(s.name, wn) + "  " + Pad(PlainTypeText(s), wt) + "  " +
             Pad(s.default_value.empty() ? "-" : s.default_value, wd) + "  " +
             Pad(s.required ? "yes" : "no", 8) + "  " + s.description + "\n";
    }
    out += "\n";
  }
  return out;
}

std::string RenderDocPage(const BuiltinDestination& type, const std::string& existing) {
  const std::string block = GeneratedBlock(type);
  size_t begin = existing.find(kGeneratedBegin);
  size_t end = existing.find(kGeneratedEnd);
  if (begin == std::string::npos || end == std::string::npos || end < begin) {
    std::string page = block + "\n## Notes\n\n";
    page += existing.empty() ? "Mapping notes, limits and examples for this destination: written "
                               "by hand below the generated block.\n"
                             : existing;
    return page;
  }
  end += std::string_view(kGeneratedEnd).size();
  if (end < existing.size() && existing[end] == '\n') ++end;
  return existing.substr(0, begin) + block + existing.substr(end);
}

std::string RenderDocIndex(const std::vector<BuiltinDestination>& types) {
  std::string out =
      "<!-- Generated from the settings tables (make docs-destinations); do not edit -->\n"
      "# Destinations\n\n"
      "Every built-in destination type, one page each, generated from its settings table (the "
      "same table that validates the config and that `switchyard destinations` prints). How "
      "delivery works for all of them: [../delivery.md](../delivery.md).\n\n"
      "Deletion API: whether Switchyard forwards user deletions to the vendor (none does yet; "
      "the column names the vendor's API for that).\n\n"
      "| type | name in `integrations` | what it does | event types | batch | idempotency | "
      "deletion API |\n|---|---|---|---|---|---|---|\n";
  for (const auto& b : types) {
    const auto& sup = b.type.support;
    out += "| [`" + b.type.type + "`](" + DocPageName(b) + ") | " + b.type.display_name + " | " +
           Cell(b.type.description) + (b.test_double ? " (test double)" : "") + " | " +
           Cell(sup.event_types) + " | " + Cell(sup.batch) + " | " + Cell(sup.idempotency) + " | " +
           Cell(sup.deletion) + " |\n";
  }
  return out;
}

}  // namespace sy::destinations
