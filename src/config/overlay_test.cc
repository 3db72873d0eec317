#include "config/overlay.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "base/fault_injection_env.h"

namespace sy::config {
namespace {

namespace json = boost::json;

constexpr const char* kFile = R"(version: 1
data_dir: ./data
sources:
  - name: web
    write_key: wk_web
  - name: app
    write_key: wk_app
destinations:
  - name: hook
    type: webhook
    sources: [web]
    settings:
      url: http://127.0.0.1:9/a
      batch: true
  - name: old
    type: webhook
    settings:
      url: http://127.0.0.1:9/old
)";

OverlayEntry Entry(OverlayEntry::Op op, uint64_t version, std::string_view fields_json = "{}") {
  OverlayEntry e;
  e.op = op;
  e.version = version;
  e.fields = json::parse(fields_json).as_object();
  return e;
}

const DestinationConfig* FindDest(const Config& c, const std::string& name) {
  for (const auto& d : c.destinations)
    if (d.name == name) return &d;
  return nullptr;
}

const SourceConfig* FindSource(const Config& c, const std::string& name) {
  for (const auto& s : c.sources)
    if (s.name == name) return &s;
  return nullptr;
}

std::string Setting(const DestinationConfig& d, const std::string& key) {
  for (const auto& s : d.settings)
    if (s.key == key) return s.scalar;
  return "<absent>";
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sy_overlay_XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Overlay, NoEntriesIsTheFile) {
  MergedConfig m = MergeOverlay(kFile, "f.yaml", Overlay{});
  ASSERT_EQ(m.parsed.errors, "");
  EXPECT_EQ(m.parsed.config.sources.size(), 2u);
  EXPECT_EQ(m.parsed.config.destinations.size(), 2u);
  EXPECT_TRUE(m.notes.empty());
  EXPECT_EQ(m.origins["destinations/hook"]["settings.url"], "file");
  EXPECT_EQ(m.origins["sources/web"]["write_key"], "file");
}

// A patch replaces fields one by one and settings key by key; what it does not name stays the
// file's, and the provenance says which is which.
TEST(Overlay, PatchMergesFieldByFieldWithProvenance) {
  Overlay o;
  o.version = 2;
  o.destinations["hook"] = Entry(OverlayEntry::Op::kPatch, 2,
                                 R"({"enabled":false,"settings":{"url":"http://127.0.0.1:9/b"}})");
  MergedConfig m = MergeOverlay(kFile, "f.yaml", o);
  ASSERT_EQ(m.parsed.errors, "");
  const DestinationConfig* d = FindDest(m.parsed.config, "hook");
  ASSERT_NE(d, nullptr);
  EXPECT_FALSE(d->enabled);
  EXPECT_EQ(Setting(*d, "url"), "http://127.0.0.1:9/b");
  EXPECT_EQ(Setting(*d, "batch"), "true");
  EXPECT_EQ(d->sources, std::vector<std::string>{"web"});
  auto& origin = m.origins["destinations/hook"];
  EXPECT_EQ(origin["enabled"], "console");
  EXPECT_EQ(origin["settings.url"], "console");
  EXPECT_EQ(origin["settings.batch"], "file");
  EXPECT_EQ(origin["type"], "file");
  EXPECT_EQ(origin["sources"], "file");
}

// null removes the file's key (the default applies), for a field and for a setting.
TEST(Overlay, NullInAPatchRemovesTheFilesKey) {
  Overlay o;
  o.destinations["hook"] =
      Entry(OverlayEntry::Op::kPatch, 1, R"({"sources":null,"settings":{"batch":null}})");
  MergedConfig m = MergeOverlay(kFile, "f.yaml", o);
  ASSERT_EQ(m.parsed.errors, "");
  const DestinationConfig* d = FindDest(m.parsed.config, "hook");
  ASSERT_NE(d, nullptr);
  EXPECT_TRUE(d->sources.empty());
  EXPECT_EQ(Setting(*d, "batch"), "<absent>");
  EXPECT_EQ(Setting(*d, "url"), "http://127.0.0.1:9/a");
}

TEST(Overlay, CreateAddsAndTombstoneDeletes) {
  Overlay o;
  o.version = 3;
  o.sources["mobile"] = Entry(OverlayEntry::Op::kCreate, 1,
                              R"({"write_key_sha256":")" + Sha256Hex("wk_mobile") + R"("})");
  o.destinations["new"] =
      Entry(OverlayEntry::Op::kCreate, 2,
            R"({"type":"webhook","sources":["mobile"],"settings":{"url":"http://127.0.0.1:9/n"}})");
  o.destinations["old"] = Entry(OverlayEntry::Op::kDelete, 3);
  MergedConfig m = MergeOverlay(kFile, "f.yaml", o);
  ASSERT_EQ(m.parsed.errors, "");
  ASSERT_NE(FindSource(m.parsed.config, "mobile"), nullptr);
  EXPECT_EQ(FindSource(m.parsed.config, "mobile")->write_key_sha256, Sha256Hex("wk_mobile"));
  ASSERT_NE(FindDest(m.parsed.config, "new"), nullptr);
  EXPECT_EQ(FindDest(m.parsed.config, "old"), nullptr);
  EXPECT_EQ(m.origins["destinations/new"]["settings.url"], "console");
  EXPECT_EQ(m.origins["destinations/new"]["type"], "console");
  EXPECT_EQ(m.origins["sources/mobile"]["write_key"], "console");
  EXPECT_TRUE(m.notes.empty());
}

// The file changed under the overlay: a patch or tombstone of an object the file no longer has
// is an orphan (not applied, noted); an object made through the API wins over a file object of
// the same name (noted).
TEST(Overlay, FileChangesUnderTheOverlayAreNoted) {
  Overlay o;
  o.destinations["gone"] = Entry(OverlayEntry::Op::kPatch, 1, R"({"enabled":false})");
  o.destinations["gone2"] = Entry(OverlayEntry::Op::kDelete, 2);
  o.destinations["hook"] = Entry(OverlayEntry::Op::kCreate, 3,
                                 R"({"type":"webhook","settings":{"url":"http://127.0.0.1:9/c"}})");
  MergedConfig m = MergeOverlay(kFile, "f.yaml", o);
  ASSERT_EQ(m.parsed.errors, "");
  EXPECT_EQ(FindDest(m.parsed.config, "gone"), nullptr);
  const DestinationConfig* d = FindDest(m.parsed.config, "hook");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(Setting(*d, "url"), "http://127.0.0.1:9/c");
  EXPECT_EQ(Setting(*d, "batch"), "<absent>");  // nothing of the file's object
  EXPECT_TRUE(d->sources.empty());
  ASSERT_EQ(m.notes.size(), 3u);
  std::string all = m.notes[0] + m.notes[1] + m.notes[2];
  EXPECT_NE(all.find("destinations/gone: changes a destination the file no longer has"),
            std::string::npos);
  EXPECT_NE(all.find("destinations/gone2: deletes a destination the file no longer has"),
            std::string::npos);
  EXPECT_NE(all.find("destinations/hook: created through the admin API"), std::string::npos);
}

// A rotated key from the overlay replaces the file's clear-text key (the two spellings would
// otherwise be refused together), and the rotated-out key's grace is read.
TEST(Overlay, WriteKeyFromTheOverlayReplacesTheFilesSpelling) {
  Overlay o;
  o.sources["web"] = Entry(OverlayEntry::Op::kPatch, 1,
                           R"({"write_key_sha256":")" + Sha256Hex("wk_new") +
                               R"(","previous_write_key":{"sha256":")" + Sha256Hex("wk_web") +
                               R"(","expires":"2030-01-01T00:00:00Z"}})");
  MergedConfig m = MergeOverlay(kFile, "f.yaml", o);
  ASSERT_EQ(m.parsed.errors, "");
  const SourceConfig* s = FindSource(m.parsed.config, "web");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->write_key_sha256, Sha256Hex("wk_new"));
  EXPECT_EQ(s->previous_write_key_sha256, Sha256Hex("wk_web"));
  EXPECT_EQ(s->previous_write_key_expires_ms, 1893456000000);
  EXPECT_EQ(m.origins["sources/web"]["write_key"], "console");
}

// The merged result is checked by the same reader as a file: an entry that breaks it is named.
TEST(Overlay, InvalidEntriesAreReportedByTheConfigReader) {
  Overlay o;
  o.destinations["hook"] =
      Entry(OverlayEntry::Op::kPatch, 1, R"({"sources":["nope"],"colour":"red"})");
  MergedConfig m = MergeOverlay(kFile, "f.yaml", o);
  EXPECT_NE(m.parsed.errors.find("destinations[0].sources: no source named 'nope'"),
            std::string::npos)
      << m.parsed.errors;
  EXPECT_NE(m.parsed.errors.find("destinations[0].colour: unknown key"), std::string::npos)
      << m.parsed.errors;
}

// `config export`: the merged YAML reads back as the same config, and merging the overlay over
// the export again changes nothing (export is a fixed point).
TEST(Overlay, MergedYamlRoundTrips) {
  Overlay o;
  o.version = 4;
  o.sources["web"] = Entry(OverlayEntry::Op::kPatch, 1,
                           R"({"enabled":false,"rate_limit":{"events_per_second":5}})");
  o.sources["mobile"] = Entry(OverlayEntry::Op::kCreate, 2,
                              R"({"write_key_sha256":")" + Sha256Hex("wk_mobile") + R"("})");
  o.destinations["hook"] = Entry(
      OverlayEntry::Op::kPatch, 3,
      R"({"retry_window":"1h","settings":{"headers":{"X-A":"b"},"url":"http://127.0.0.1:9/z"}})");
  o.destinations["old"] = Entry(OverlayEntry::Op::kDelete, 4);
  MergedConfig m = MergeOverlay(kFile, "f.yaml", o);
  ASSERT_EQ(m.parsed.errors, "");
  PartialConfig back = ParseConfigString(m.yaml, "export.yaml");
  ASSERT_EQ(back.errors, "") << m.yaml;
  ASSERT_EQ(back.config.sources.size(), 3u);
  EXPECT_FALSE(FindSource(back.config, "web")->enabled);
  EXPECT_EQ(FindSource(back.config, "web")->rate_limit_events_per_second, 5);
  EXPECT_EQ(FindSource(back.config, "web")->write_key_sha256, Sha256Hex("wk_web"));
  EXPECT_EQ(FindSource(back.config, "mobile")->write_key_sha256, Sha256Hex("wk_mobile"));
  ASSERT_EQ(back.config.destinations.size(), 1u);
  EXPECT_EQ(back.config.destinations[0].retry_window_ms, 3600'000);
  EXPECT_EQ(Setting(back.config.destinations[0], "url"), "http://127.0.0.1:9/z");
  MergedConfig again = MergeOverlay(m.yaml, "export.yaml", o);
  ASSERT_EQ(again.parsed.errors, "");
  EXPECT_EQ(again.yaml, m.yaml);
}

TEST(OverlayStore, RoundTripsThroughTheEnvAsA0600File) {
  TempDir dir;
  FileOverlayStore store(Env::Default(), dir.path() + "/data/config-overlay.json");
  auto empty = store.Load();
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->version, 0u);
  Overlay o;
  o.version = 7;
  o.sources["web"] = Entry(OverlayEntry::Op::kPatch, 7, R"({"enabled":false})");
  o.destinations["x"] = Entry(OverlayEntry::Op::kDelete, 5);
  o.destinations["y"] = Entry(OverlayEntry::Op::kCreate, 6,
                              R"({"type":"webhook","settings":{"url":"u","secret":"s3cret"}})");
  ASSERT_TRUE(store.Store(o, "sources/web").ok());
  auto back = store.Load();
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(SerializeOverlay(*back), SerializeOverlay(o));
  EXPECT_EQ(back->destinations["x"].op, OverlayEntry::Op::kDelete);
  EXPECT_EQ(back->destinations["y"].version, 6u);
  struct stat st {};
  ASSERT_EQ(::stat(store.Describe().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// A store that fails (fsync, rename) reports it and leaves the previous overlay in place.
TEST(OverlayStore, AFailedStoreKeepsThePreviousOverlay) {
  TempDir dir;
  FaultInjectionEnv env;
  FileOverlayStore store(&env, dir.path() + "/config-overlay.json");
  Overlay o;
  o.version = 1;
  o.sources["web"] = Entry(OverlayEntry::Op::kPatch, 1, R"({"enabled":false})");
  ASSERT_TRUE(store.Store(o, "sources/web").ok());
  Overlay next = o;
  next.version = 2;
  next.sources["web"] = Entry(OverlayEntry::Op::kPatch, 2, R"({"enabled":true})");
  env.FailSyncs(1);
  EXPECT_FALSE(store.Store(next, "sources/web").ok());
  env.FailRenames(1);
  EXPECT_FALSE(store.Store(next, "sources/web").ok());
  auto back = store.Load();
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->version, 1u);
}

TEST(OverlayStore, ADamagedFileIsAnErrorNotAnEmptyOverlay) {
  TempDir dir;
  const std::string path = dir.path() + "/config-overlay.json";
  std::ofstream(path) << R"({"format":"switchyard-config-overlay","format_version":1,"vers)";
  FileOverlayStore store(Env::Default(), path);
  auto r = store.Load();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find(path), std::string::npos);
  std::ofstream(path, std::ios::trunc) << R"({"format":"something-else"})";
  EXPECT_FALSE(store.Load().ok());
}

}  // namespace
}  // namespace sy::config
