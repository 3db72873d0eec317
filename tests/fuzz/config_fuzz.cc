// Fuzz target: config file bytes → the YAML loader and its validation. A config is written by
// an operator, but a mistake in it must end in an error naming the file, never a crash, a hang
// or a half-built Config. Invariants: LoadConfigString returns (OK or an error); an error's
// message names the file; a config that loads, loads again to the same result (no hidden
// state between loads).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "config/config.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;  // a config is small; YAML's own cost is not under test
  std::string yaml(reinterpret_cast<const char*>(data), size);
  auto first = sy::config::LoadConfigString(yaml, "fuzz.yaml");
  auto second = sy::config::LoadConfigString(yaml, "fuzz.yaml");
  Check(first.ok() == second.ok(), "loading is deterministic");
  if (!first.ok()) {
    Check(first.status().message().find("fuzz.yaml") != std::string::npos,
          "a config error names the file");
    Check(first.status().message() == second.status().message(), "the same error twice");
  }
  return 0;
}
