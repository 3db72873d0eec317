// destination_docs: keeps docs/destinations/ in step with the settings tables.
//   destination_docs --check <dir>   exit 1 naming every page that is missing or stale
//   destination_docs --write <dir>   rewrite the generated parts (hand-written parts stay)
// Run by ctest (destination_docs_current) and by `make docs-destinations`.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "destinations/describe.h"

namespace {

std::string Read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::string(argv[1]) != "--check" && std::string(argv[1]) != "--write")) {
    std::fprintf(stderr, "usage: %s --check|--write <docs/destinations>\n", argv[0]);
    return 2;
  }
  const bool write = std::string(argv[1]) == "--write";
  const std::filesystem::path dir = argv[2];
  const auto& all = sy::destinations::AllBuiltinDestinations();
  std::vector<std::pair<std::filesystem::path, std::string>> want;
  want.emplace_back(dir / "README.md", sy::destinations::RenderDocIndex(all));
  for (const auto& b : all) {
    auto path = dir / sy::destinations::DocPageName(b);
    std::string existing = std::filesystem::exists(path) ? Read(path) : "";
    want.emplace_back(path, sy::destinations::RenderDocPage(b, existing));
  }
  int stale = 0;
  for (const auto& [path, text] : want) {
    bool exists = std::filesystem::exists(path);
    if (exists && Read(path) == text) continue;
    if (write) {
      std::filesystem::create_directories(dir);
      std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
      std::printf("wrote %s\n", path.c_str());
    } else {
      std::fprintf(stderr, "%s: %s\n", path.c_str(),
                   exists ? "stale (the settings table changed)" : "missing");
      ++stale;
    }
  }
  if (stale) {
    std::fprintf(stderr, "docs/destinations is not current: run `make docs-destinations`\n");
    return 1;
  }
  return 0;
}
