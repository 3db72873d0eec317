// Fuzz target: archive file bytes → the archive reader. An archive file comes back from object
// storage, where anything may have changed it, so the reader treats it as untrusted. The first
// input byte picks whether the rest is used as it is or first compressed into gzip members (so
// both the decompressor's error paths and the line splitter see inputs); every file is then read
// by both readers, the whole-file one (`archive ls`, tests) and the member-at-a-time one
// (replay). Invariants:
//  - neither reader crashes; both succeed or both fail;
//  - when they succeed they yield the same lines, and the lines rejoined with newlines are the
//    decompressed bytes (nothing dropped, nothing invented);
//  - ReceivedAtOf never crashes on a line.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "archive/archive_reader.h"
#include "archive/gzip.h"
#include "archive/object_store.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

// One object, in memory: the reader's only dependency is Get.
class OneObjectStore final : public sy::archive::ObjectStore {
 public:
  explicit OneObjectStore(std::string bytes) : bytes_(std::move(bytes)) {}
  sy::Status Put(const std::string&, std::string_view) override {
    return sy::FailedPrecondition("read-only");
  }
  sy::Result<std::string> Get(const std::string&) override { return bytes_; }
  sy::Result<std::vector<sy::archive::ObjectInfo>> List(const std::string&) override {
    return std::vector<sy::archive::ObjectInfo>{};
  }
  std::string Describe() const override { return "memory"; }

 private:
  std::string bytes_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t sel = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string file;
  if (sel & 1) {
    // Split into up to four members at input-chosen points, as the writer does per ~1 MiB.
    size_t members = 1 + ((sel >> 1) & 3), start = 0;
    for (size_t m = 1; m <= members; ++m) {
      size_t end = m == members ? rest.size() : rest.size() * m / members;
      sy::archive::AppendGzipMember(rest.substr(start, end - start), 1, &file);
      start = end;
    }
    if (sel & 8 && !file.empty()) file.pop_back();  // a truncated last member
  } else {
    file.assign(rest);
  }

  OneObjectStore store(file);
  std::string text;
  std::vector<std::string_view> whole_lines;
  sy::Status whole = sy::archive::ReadArchiveFile(&store, "k", &text, &whole_lines);
  std::vector<std::string> streamed_lines;
  sy::Status streamed = sy::archive::ForEachArchiveLine(
      &store, "k", [&](std::string_view line) { streamed_lines.emplace_back(line); });
  Check(whole.ok() == streamed.ok(), "both readers agree on success");
  if (!whole.ok()) return 0;

  Check(whole_lines.size() == streamed_lines.size(), "both readers yield the same line count");
  std::string rejoined;
  for (size_t i = 0; i < whole_lines.size(); ++i) {
    Check(whole_lines[i] == streamed_lines[i], "both readers yield the same lines");
    (void)sy::archive::ReceivedAtOf(whole_lines[i]);
    rejoined.append(whole_lines[i]);
    rejoined.push_back('\n');
  }
  auto plain = sy::archive::Gunzip(file);
  Check(plain.ok(), "a file the readers accept decompresses");
  // The decompressed bytes are the lines, each ended by a newline (a missing final newline is
  // tolerated); empty lines may be skipped by the readers, so compare without them.
  std::string expected;
  size_t pos = 0;
  while (pos < plain->size()) {
    size_t nl = plain->find('\n', pos);
    if (nl == std::string::npos) nl = plain->size();
    if (nl > pos) expected.append(*plain, pos, nl - pos).push_back('\n');
    pos = nl + 1;
  }
  Check(rejoined == expected, "lines are the decompressed bytes, nothing dropped or invented");
  return 0;
}
