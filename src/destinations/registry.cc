#include "destinations/registry.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "web/browser_integrations.h"

namespace sy::destinations {

const std::vector<BuiltinDestination>& AllBuiltinDestinations() {
  static const std::vector<BuiltinDestination> kAll = GeneratedBuiltinDestinations();
  return kAll;
}

bool TestDestinationsEnabled() {
  const char* v = std::getenv("SWITCHYARD_TEST_DESTINATIONS");
  return v && std::string_view(v) == "1";
}

std::vector<const delivery::DestinationType*> OfferedDestinationTypes() {
  const bool tests = TestDestinationsEnabled();
  std::vector<const delivery::DestinationType*> out;
  for (const auto& b : AllBuiltinDestinations())
    if (tests || !b.test_double) out.push_back(&b.type);
  return out;
}

const delivery::DestinationType* FindDestinationType(std::string_view type) {
  for (const auto* t : OfferedDestinationTypes())
    if (t->type == type) return t;
  return nullptr;
}

namespace {

std::string Path(size_t i) {
  return "destinations[" + std::to_string(i) + "]";
}

// Why `type` is not offered: the known types, and the switch when it names a test double.
std::string UnknownTypeProblem(const std::string& type) {
  std::string known;
  for (const auto* t : OfferedDestinationTypes())
    known += (known.empty() ? "" : ", ") + t->type;
  std::string device;
  for (const auto& b : web::BrowserIntegrations())
    if (b.device_only) device += (device.empty() ? "" : ", ") + b.type;
  std::string problem = "unknown destination type '" + type + "' (known: " + known +
                        "; in the browser only, with mode: device: " + device + ")";
  for (const auto& b : AllBuiltinDestinations()) {
    if (b.type.type == type && b.test_double)
      problem +=
          "; '" + type + "' is a test double, offered only with SWITCHYARD_TEST_DESTINATIONS=1";
  }
  return problem;
}

}  // namespace

Result<std::unique_ptr<delivery::Destination>> CreateDestination(const config::DestinationConfig& d,
                                                                 const std::string& file) {
  if (!web::RunsInCloud(d))
    return InvalidArgument("destination '" + d.name +
                           "' is in device mode: the visitor's browser sends its events");
  const delivery::DestinationType* t = FindDestinationType(d.type);
  if (!t) return InvalidArgument(UnknownTypeProblem(d.type));
  return t->create(web::CloudSettings(d), {file, "settings", d.line});
}

Status ValidateDestinations(const config::Config& config) {
  std::string errors;
  for (size_t i = 0; i < config.destinations.size(); ++i) {
    const auto& d = config.destinations[i];
    if (d.type.empty()) continue;  // config reported the missing key
    // `mode` against the type; a device-only type's settings against its browser table (it has
    // no server type); a cloud type's browser-only keys (tag_url).
    std::string device = web::CheckDeviceMode(d, config.file, Path(i));
    errors += device;
    if (web::IsDeviceOnlyType(d.type)) continue;
    const delivery::DestinationType* t = FindDestinationType(d.type);
    if (!t) {
      errors += config.file + ":" + std::to_string(d.line) + ": " + Path(i) +
                ".type: " + UnknownTypeProblem(d.type) + "\n";
      continue;
    }
    if (!device.empty() && d.mode != config::DeliveryMode::kCloud) continue;
    auto made = t->create(web::CloudSettings(d), {config.file, Path(i) + ".settings", d.line});
    if (!made.ok()) errors += made.status().message();
  }
  if (!errors.empty()) return InvalidArgument(errors);
  return Status::Ok();
}

namespace {

// The line number of an error "<file>:<line>: …" (0 when it has none), for sorting a report.
int ErrorLine(const std::string& error, const std::string& file) {
  if (file.empty() || !error.starts_with(file + ":")) return 0;
  return std::atoi(error.c_str() + file.size() + 1);
}

}  // namespace

Result<config::Config> LoadConfig(const std::string& path) {
  config::PartialConfig parsed = config::ParseConfigFile(path);
  std::string all = parsed.errors;
  if (Status s = ValidateDestinations(parsed.config); !s.ok()) all += s.message();
  if (all.empty()) return std::move(parsed.config);
  std::vector<std::string> lines;
  std::istringstream in(all);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(std::move(line));
  std::stable_sort(lines.begin(), lines.end(), [&](const std::string& a, const std::string& b) {
    return ErrorLine(a, path) < ErrorLine(b, path);
  });
  std::string report;
  for (const auto& l : lines)
    report += l + "\n";
  return InvalidArgument(report);
}

}  // namespace sy::destinations
