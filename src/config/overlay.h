// The config overlay: changes made through the admin API, stored apart from the YAML file and
// layered over it (docs/configuration.md, "Changes made through the admin API"). The file is
// where a deployment starts; the overlay holds, per source and per destination, one entry that
// creates the object, patches the file's object field by field, or deletes it (a tombstone).
//
//   effective config = MergeOverlay(file, overlay)
//
// The merge works on the YAML tree: each entry's fields are written into the file's tree (the
// same keys and value spellings as the file), and the result is read by the same reader as a
// file (ParseConfigNode), so a change is checked exactly as `check-config` checks a file.
//
// Where the overlay lives is behind OverlayStore: one file in data_dir today
// (FileOverlayStore, docs/formats/overlay.md); on the Kafka backend a compacted topic keyed by
// entry ("sources/<name>", "destinations/<name>") can hold the same entries for every node.
//
// Thread safety: Overlay and MergedConfig are plain values; MergeOverlay is reentrant. A store
// is used by one caller at a time (the config controller serialises changes).
#pragma once

#include <boost/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "config/config.h"

namespace sy::config {

struct OverlayEntry {
  enum class Op {
    // Fields written over the file's object of the same name, key by key (`settings` merged key
    // by key). A JSON null removes the key (the default applies). With no such object in the
    // file the entry is an orphan: not applied, reported (MergedConfig::notes).
    kPatch,
    // An object made through the API: `fields` are all of it. It owns its name: a file object of
    // the same name is ignored (reported), whatever the file says.
    kCreate,
    // A tombstone: the file's object of that name is left out. An orphan when the file has none.
    kDelete,
  };
  Op op = Op::kPatch;
  uint64_t version = 0;        // Overlay::version when this entry last changed (>= 1)
  boost::json::object fields;  // kPatch, kCreate: the object's YAML keys, without `name`
};

struct Overlay {
  // Increases by one with every stored change, never reused; 0: nothing was ever stored.
  uint64_t version = 0;
  std::map<std::string, OverlayEntry> sources;       // by source name
  std::map<std::string, OverlayEntry> destinations;  // by destination name
  // User functions (PUT /api/v1/functions/{name}): always kCreate entries holding the whole
  // function (`source` inline, `settings`, `limits`), which replace a file function of the same
  // name. Stored as "functions" (absent in overlays written before it: none).
  std::map<std::string, OverlayEntry> functions;  // by function name
};

std::string_view OverlayOpName(OverlayEntry::Op op);  // "patch", "create", "delete"

// The stored form (JSON, docs/formats/overlay.md) and back. Parse errors name `where`.
std::string SerializeOverlay(const Overlay& overlay);
Result<Overlay> ParseOverlay(std::string_view text, const std::string& where);

class OverlayStore {
 public:
  virtual ~OverlayStore() = default;
  // The stored overlay; an empty one (version 0) when nothing was ever stored. An unreadable or
  // damaged store is an error (the server refuses to start rather than drop console changes).
  virtual Result<Overlay> Load() = 0;
  // Stores `overlay`, the whole overlay after one change to the entry `changed_key`
  // ("sources/<name>", "destinations/<name>" or "functions/<name>"; a keyed store writes that entry
  // and the version only, a file store writes everything). On OK the change survives a crash and a
  // power loss; on error it must be treated as not stored (the caller keeps and applies the old
  // overlay).
  virtual Status Store(const Overlay& overlay, const std::string& changed_key) = 0;
  // Where the overlay lives, for messages ("data/config-overlay.json").
  virtual std::string Describe() const = 0;
};

// One JSON file replaced atomically through the Env (temp file, fdatasync, rename, directory
// fsync: WriteFileAtomically), mode 0600 like every data_dir file: it holds secrets as given.
class FileOverlayStore final : public OverlayStore {
 public:
  FileOverlayStore(Env* env, std::string path) : env_(env), path_(std::move(path)) {}
  Result<Overlay> Load() override;
  Status Store(const Overlay& overlay, const std::string& changed_key) override;
  std::string Describe() const override { return path_; }

 private:
  Env* env_;
  std::string path_;
};

struct MergedConfig {
  // file ⊕ overlay read by the config reader: `parsed.errors` holds the file's and the merged
  // entries' errors ("<file>:<line>: sources[i].<key>: …"; line 0 for values from the overlay).
  PartialConfig parsed;
  // The merged document as YAML (`switchyard config export`): secrets included, comments and
  // the file's layout not kept. Empty when the file is not YAML.
  std::string yaml;
  // Where each given field of each object came from: "sources/<name>" or "destinations/<name>"
  // → field ("enabled", "write_key", "settings.url", …) → "file" | "console". Fields given
  // nowhere (defaults) are absent.
  std::map<std::string, std::map<std::string, std::string>> origins;
  // Entries not applied as written (orphans, shadowed file objects), one sentence each.
  std::vector<std::string> notes;
};

// Merges `overlay` into the YAML text of the config file. Never fails: errors are in
// `parsed.errors`.
MergedConfig MergeOverlay(const std::string& file_yaml, const std::string& file_name,
                          const Overlay& overlay);

}  // namespace sy::config
