// Test helpers for destinations, shared by every destination's tests and the conformance suite
// (tests only; header-only, needs GoogleTest): raw settings as config would hand them over, a
// factory that builds an instance through the type's settings table, sample stored events, the
// text form of encoded requests that golden files hold, and the golden comparison itself.
//
// Golden files: `<dir>/<name>.golden` hold RenderRequests(…) of an encoder's output. Run a test
// with SY_UPDATE_GOLDEN=1 to rewrite them (then review the diff like code):
//   SY_UPDATE_GOLDEN=1 ctest --test-dir build/release -R '^(webhook|segment|slack)_test'
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "delivery/destination.h"

namespace sy::delivery::testing {

inline config::RawSetting Scalar(std::string key, std::string value, int line = 1) {
  config::RawSetting r;
  r.key = std::move(key);
  r.line = line;
  r.scalar = std::move(value);
  return r;
}

inline config::RawSetting List(std::string key, std::vector<std::string> items, int line = 1) {
  config::RawSetting r;
  r.key = std::move(key);
  r.line = line;
  r.kind = config::RawSetting::Kind::kList;
  r.list = std::move(items);
  return r;
}

inline config::RawSetting Map(std::string key,
                              std::vector<std::pair<std::string, std::string>> entries,
                              int line = 1) {
  config::RawSetting r;
  r.key = std::move(key);
  r.line = line;
  r.kind = config::RawSetting::Kind::kMap;
  r.map = std::move(entries);
  return r;
}

// Builds an instance of `type` from raw settings, through its table and factory; errors read
// "f.yaml:<line>: settings.<key>: <problem>".
inline Result<std::unique_ptr<Destination>> Create(const DestinationType& type,
                                                   const std::vector<config::RawSetting>& raw) {
  return type.create(raw, {"f.yaml", "settings", 1});
}

// Create, for settings the test expects to be valid: a failure fails the test (and returns null).
inline std::unique_ptr<Destination> MustCreate(const DestinationType& type,
                                               const std::vector<config::RawSetting>& raw) {
  auto made = Create(type, raw);
  EXPECT_TRUE(made.ok()) << type.type << ": " << made.status().ToString();
  return made.ok() ? std::move(*made) : nullptr;
}

// A routed event as the stream hands it to a destination.
inline RoutedEvent Event(uint64_t offset, std::string payload, std::string message_id = "",
                         int64_t received_at_ms = 1'700'000'000'000, std::string source = "web") {
  if (message_id.empty()) message_id = "m-" + std::to_string(offset);
  return {Offset(offset), std::move(source), std::move(message_id), TimestampMs(received_at_ms),
          std::move(payload)};
}

// The text form golden files hold: per request "METHOD URL", one "Header: value" a line,
// "events: i j …" (indexes into the batch), the body, a blank line; then one
// "unmappable: i reason" line per event the encoder could not map and one "skipped: i reason"
// line per event it skipped.
inline std::string RenderRequests(const EncodedBatch& b) {
  std::string out;
  for (const auto& r : b.requests) {
    out += r.method + " " + r.url + "\n";
    for (const auto& [k, v] : r.headers)
      out += k + ": " + v + "\n";
    out += "events:";
    for (size_t i : r.events)
      out += " " + std::to_string(i);
    out += "\n" + r.body + "\n\n";
  }
  for (const auto& [i, reason] : b.unmappable)
    out += "unmappable: " + std::to_string(i) + " " + reason + "\n";
  for (const auto& [i, reason] : b.skipped)
    out += "skipped: " + std::to_string(i) + " " + reason + "\n";
  return out;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Compares `got` with the golden file at `path`; with SY_UPDATE_GOLDEN=1 rewrites it instead.
inline void ExpectGolden(const std::string& got, const std::string& path) {
  if (const char* u = std::getenv("SY_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << got;
    return;
  }
  EXPECT_EQ(got, ReadFile(path)) << "golden " << path << " differs (SY_UPDATE_GOLDEN=1 rewrites)";
}

}  // namespace sy::delivery::testing
