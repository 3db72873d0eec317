#include "config/overlay.h"

#include <yaml-cpp/yaml.h>

#include "config/config_yaml.h"

namespace sy::config {
namespace json = boost::json;

namespace {

constexpr std::string_view kFormat = "switchyard-config-overlay";
constexpr int64_t kFormatVersion = 1;

json::object EntriesToJson(const std::map<std::string, OverlayEntry>& entries) {
  json::object out;
  for (const auto& [name, e] : entries) {
    json::object o{{"op", OverlayOpName(e.op)}, {"version", e.version}};
    if (e.op != OverlayEntry::Op::kDelete) o["fields"] = e.fields;
    out[name] = std::move(o);
  }
  return out;
}

Status EntriesFromJson(const json::value* v, const std::string& where,
                       std::map<std::string, OverlayEntry>* out) {
  if (!v) return Status::Ok();
  if (!v->is_object()) return DataLoss(where + ": expected an object");
  for (const auto& [name, ev] : v->as_object()) {
    std::string at = where + "." + std::string(name);
    const json::object* eo = ev.if_object();
    if (!eo) return DataLoss(at + ": expected an object");
    OverlayEntry e;
    const json::value* op = eo->if_contains("op");
    std::string_view ops = op && op->is_string() ? std::string_view(op->as_string()) : "";
    if (ops == "patch")
      e.op = OverlayEntry::Op::kPatch;
    else if (ops == "create")
      e.op = OverlayEntry::Op::kCreate;
    else if (ops == "delete")
      e.op = OverlayEntry::Op::kDelete;
    else
      return DataLoss(at + ".op: expected patch, create or delete");
    const json::value* ver = eo->if_contains("version");
    if (!ver || !ver->is_number()) return DataLoss(at + ".version: expected a number");
    std::error_code ec;
    e.version = ver->to_number<uint64_t>(ec);
    if (ec) return DataLoss(at + ".version: expected a positive integer");
    if (e.op != OverlayEntry::Op::kDelete) {
      const json::value* f = eo->if_contains("fields");
      if (!f || !f->is_object()) return DataLoss(at + ".fields: expected an object");
      e.fields = f->as_object();
    }
    (*out)[std::string(name)] = std::move(e);
  }
  return Status::Ok();
}

// A JSON value as a YAML node with the same structure; scalars keep their text (the config
// reader converts text by the key's type, as for a file).
YAML::Node ToYaml(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return YAML::Node(YAML::NodeType::Null);
    case json::kind::bool_:
      return YAML::Node(std::string(v.as_bool() ? "true" : "false"));
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return YAML::Node(json::serialize(v));
    case json::kind::string:
      return YAML::Node(std::string(v.as_string()));
    case json::kind::array: {
      YAML::Node seq(YAML::NodeType::Sequence);
      for (const auto& item : v.as_array())
        seq.push_back(ToYaml(item));
      return seq;
    }
    case json::kind::object: {
      YAML::Node map(YAML::NodeType::Map);
      for (const auto& [k, item] : v.as_object())
        map[std::string(k)] = ToYaml(item);
      return map;
    }
  }
  return YAML::Node();
}

// The provenance name of a key: both spellings of the write key are "write_key".
std::string FieldName(const std::string& key) {
  return key == "write_key_sha256" ? "write_key" : key;
}

// Writes `fields` into the map `item` (a file object), recording console provenance.
void ApplyPatch(YAML::Node item, const json::object& fields,
                std::map<std::string, std::string>* origin) {
  for (const auto& [k, v] : fields) {
    std::string key(k);
    if (key == "settings" && v.is_object()) {
      const YAML::Node& citem = item;
      YAML::Node settings(YAML::NodeType::Map);
      if (citem["settings"] && citem["settings"].IsMap()) {
        for (const auto& kv : citem["settings"])
          settings[kv.first.as<std::string>()] = kv.second;
      }
      for (const auto& [sk, sv] : v.as_object()) {
        std::string skey(sk);
        if (sv.is_null())
          settings.remove(skey);
        else
          settings[skey] = ToYaml(sv);
        (*origin)["settings." + skey] = "console";
      }
      item["settings"] = settings;
      continue;
    }
    // The two spellings of a write key exclude each other: the overlay's replaces the file's.
    if (key == "write_key_sha256") item.remove("write_key");
    if (key == "write_key") item.remove("write_key_sha256");
    if (v.is_null())
      item.remove(key);
    else
      item[key] = ToYaml(v);
    (*origin)[FieldName(key)] = "console";
  }
}

// Every given field of a merged object not already recorded: from the file.
void RecordFileFields(const YAML::Node& item, std::map<std::string, std::string>* origin) {
  for (const auto& kv : item) {
    std::string key = kv.first.as<std::string>();
    if (key == "name") continue;
    if (key == "settings" && kv.second.IsMap()) {
      for (const auto& s : kv.second)
        origin->emplace("settings." + s.first.as<std::string>(), "file");
      continue;
    }
    origin->emplace(FieldName(key), "file");
  }
}

std::string ItemName(const YAML::Node& item) {
  if (!item.IsMap()) return "";
  YAML::Node n = item["name"];
  return n && n.IsScalar() ? n.Scalar() : "";
}

// Merges one collection ("sources" or "destinations") of the file's tree with its entries.
void MergeCollection(YAML::Node root, const std::string& kind, const std::string& singular,
                     const std::map<std::string, OverlayEntry>& entries, MergedConfig* out) {
  const YAML::Node& croot = root;
  YAML::Node file_items = croot[kind];
  if (entries.empty()) {
    if (file_items && file_items.IsSequence()) {
      for (const auto& item : file_items) {
        std::string name = ItemName(item);
        if (!name.empty()) RecordFileFields(item, &out->origins[kind + "/" + name]);
      }
    }
    return;
  }
  if (file_items && !file_items.IsSequence()) return;  // the reader reports it
  YAML::Node merged(YAML::NodeType::Sequence);
  std::map<std::string, bool> seen;
  auto make_created = [&](const std::string& name, const OverlayEntry& e) {
    YAML::Node item(YAML::NodeType::Map);
    item["name"] = name;
    auto& origin = out->origins[kind + "/" + name];
    ApplyPatch(item, e.fields, &origin);
    return item;
  };
  if (file_items) {
    for (const auto& it_value : file_items) {
      YAML::Node item = it_value;  // a handle on the file's node (push_back wants a Node)
      std::string name = ItemName(item);
      auto it = name.empty() ? entries.end() : entries.find(name);
      if (it == entries.end()) {
        if (!name.empty()) RecordFileFields(item, &out->origins[kind + "/" + name]);
        merged.push_back(item);
        continue;
      }
      seen[name] = true;
      const OverlayEntry& e = it->second;
      switch (e.op) {
        case OverlayEntry::Op::kDelete:
          break;
        case OverlayEntry::Op::kCreate:
          out->notes.push_back("overlay: " + kind + "/" + name + ": created through the admin " +
                               "API; the file's " + singular +
                               " of the same name is ignored (delete it from the file, or delete "
                               "the " +
                               singular + " through the API to use the file's)");
          merged.push_back(make_created(name, e));
          break;
        case OverlayEntry::Op::kPatch: {
          auto& origin = out->origins[kind + "/" + name];
          ApplyPatch(item, e.fields, &origin);
          RecordFileFields(item, &origin);
          merged.push_back(item);
          break;
        }
      }
    }
  }
  for (const auto& [name, e] : entries) {
    if (seen.contains(name)) continue;
    switch (e.op) {
      case OverlayEntry::Op::kCreate:
        merged.push_back(make_created(name, e));
        break;
      case OverlayEntry::Op::kPatch:
        out->notes.push_back("overlay: " + kind + "/" + name + ": changes a " + singular +
                             " the file no longer has; not applied (DELETE it through the "
                             "admin API to drop the entry, or add the " +
                             singular + " back to the file)");
        break;
      case OverlayEntry::Op::kDelete:
        out->notes.push_back("overlay: " + kind + "/" + name + ": deletes a " + singular +
                             " the file no longer has; nothing to do (DELETE it through the "
                             "admin API to drop the entry)");
        break;
    }
  }
  root[kind] = merged;
}

}  // namespace

std::string_view OverlayOpName(OverlayEntry::Op op) {
  switch (op) {
    case OverlayEntry::Op::kPatch:
      return "patch";
    case OverlayEntry::Op::kCreate:
      return "create";
    case OverlayEntry::Op::kDelete:
      return "delete";
  }
  return "patch";
}

std::string SerializeOverlay(const Overlay& overlay) {
  json::object doc{
      {"format", kFormat},
      {"format_version", kFormatVersion},
      {"version", overlay.version},
      {"sources", EntriesToJson(overlay.sources)},
      {"destinations", EntriesToJson(overlay.destinations)},
  };
  if (!overlay.functions.empty()) doc["functions"] = EntriesToJson(overlay.functions);
  return json::serialize(doc) + "\n";
}

Result<Overlay> ParseOverlay(std::string_view text, const std::string& where) {
  std::error_code ec;
  json::value doc = json::parse(text, ec);
  if (ec) return DataLoss(where + ": not JSON: " + ec.message());
  const json::object* o = doc.if_object();
  if (!o) return DataLoss(where + ": expected a JSON object");
  const json::value* format = o->if_contains("format");
  if (!format || !format->is_string() || format->as_string() != kFormat)
    return DataLoss(where + ": not a config overlay (format is not \"" + std::string(kFormat) +
                    "\")");
  const json::value* fv = o->if_contains("format_version");
  if (!fv || !fv->is_int64() || fv->as_int64() != kFormatVersion)
    return DataLoss(where + ": format_version " + (fv ? json::serialize(*fv) : "missing") +
                    " is not one this build reads (1)");
  Overlay out;
  const json::value* ver = o->if_contains("version");
  if (!ver || !ver->is_number()) return DataLoss(where + ": version: expected a number");
  out.version = ver->to_number<uint64_t>(ec);
  if (ec) return DataLoss(where + ": version: expected a positive integer");
  SY_RETURN_IF_ERROR(EntriesFromJson(o->if_contains("sources"), where + ": sources", &out.sources));
  SY_RETURN_IF_ERROR(
      EntriesFromJson(o->if_contains("destinations"), where + ": destinations", &out.destinations));
  SY_RETURN_IF_ERROR(
      EntriesFromJson(o->if_contains("functions"), where + ": functions", &out.functions));
  return out;
}

Result<Overlay> FileOverlayStore::Load() {
  if (!env_->FileExists(path_)) return Overlay{};
  SY_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(env_, path_));
  return ParseOverlay(text, path_);
}

Status FileOverlayStore::Store(const Overlay& overlay, const std::string&) {
  SY_RETURN_IF_ERROR(env_->CreateDirIfMissing(DirName(path_)));
  return WriteFileAtomically(env_, path_, SerializeOverlay(overlay));
}

MergedConfig MergeOverlay(const std::string& file_yaml, const std::string& file_name,
                          const Overlay& overlay) {
  MergedConfig out;
  YAML::Node root;
  try {
    root = YAML::Load(file_yaml);
  } catch (const YAML::Exception& e) {
    out.parsed.config.file = file_name;
    out.parsed.errors = file_name + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg + "\n";
    return out;
  }
  if (root.IsMap()) {
    MergeCollection(root, "sources", "source", overlay.sources, &out);
    MergeCollection(root, "destinations", "destination", overlay.destinations, &out);
    MergeCollection(root, "functions", "function", overlay.functions, &out);
  }
  out.parsed = ParseConfigNode(root, file_name);
  try {
    YAML::Emitter emitter;
    emitter << root;
    out.yaml = std::string(emitter.c_str()) + "\n";
  } catch (const YAML::Exception&) {
    out.yaml.clear();
  }
  return out;
}

}  // namespace sy::config
