// Fuzz target: on-disk bytes → the dead-letter store's reader and rewriter (docs/formats/dlq.md).
// The input becomes <destination>.dlq in a fresh directory. Invariants checked on every input:
//  - Scan never fails on content and never crashes;
//  - every readable letter survives a round trip through its JSON;
//  - a rewrite that delivers nothing keeps every readable letter and every unreadable record
//    byte for byte, and leaves no corrupt bytes (redrive never deletes what it did not deliver);
//  - an append after arbitrary bytes is read back as the last letter.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "delivery/dead_letter_store.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

// The scratch directory, removed when the process exits normally (libFuzzer's -max_total_time,
// the corpus replay); a crash leaves it for inspection.
struct ScratchDir {
  std::string path;
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

const std::string& Dir() {
  static const ScratchDir dir{[] {
    auto d = std::filesystem::temp_directory_path() / ("sy_dlq_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }()};
  return dir.path;
}

std::vector<std::string> Json(const std::vector<sy::delivery::DeadLetter>& letters) {
  std::vector<std::string> out;
  for (const auto& d : letters)
    out.push_back(sy::delivery::DeadLetterToJson(d));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sy::delivery::DeadLetter;
  using sy::delivery::DeadLetterStore;
  const std::string path = Dir() + "/hooks.dlq";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  DeadLetterStore store(Dir());
  auto scan = store.Scan("hooks");
  Check(scan.ok(), "Scan failed on a readable file");
  for (const auto& d : scan->letters) {
    auto back = sy::delivery::DeadLetterFromJson(sy::delivery::DeadLetterToJson(d));
    Check(back.ok(), "a listed letter's JSON does not parse back");
    Check(sy::delivery::DeadLetterToJson(*back) == sy::delivery::DeadLetterToJson(d),
          "a listed letter changes through its JSON");
  }

  const auto before = Json(scan->letters);
  Check(store.Rewrite("hooks", [](std::vector<DeadLetter> all) { return all; }).ok(),
        "Rewrite failed");
  auto after = store.Scan("hooks");
  Check(after.ok(), "Scan after Rewrite failed");
  if (!scan->letters.empty()) {
    Check(Json(after->letters) == before, "Rewrite lost or changed a letter it did not deliver");
    Check(after->unreadable == scan->unreadable, "Rewrite lost an unreadable record");
    Check(after->corrupt_bytes == 0, "Rewrite left corrupt bytes");
  }

  DeadLetter d;
  d.destination = "hooks";
  d.offset = sy::Offset(42);
  d.event = R"({"type":"track"})";
  Check(store.Append(d).ok(), "Append failed");
  auto last = store.List("hooks");
  Check(last.ok() && !last->empty() && last->back().offset == sy::Offset(42),
        "an append after arbitrary bytes is not the last letter");
  return 0;
}
