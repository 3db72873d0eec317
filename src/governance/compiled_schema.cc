#include "governance/compiled_schema.h"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <deque>
#include <optional>
#include <unordered_map>

namespace sy::governance {
namespace json = boost::json;

namespace {

// How deep the program may nest (schema levels, through $refs): a chain of definitions each
// referring to the next would otherwise recurse as deep as the schema file is long.
constexpr size_t kMaxProgramDepth = 128;

enum TypeBit : uint8_t {
  kTypeArray = 1,
  kTypeBoolean = 2,
  kTypeInteger = 4,
  kTypeNull = 8,
  kTypeNumber = 16,
  kTypeObject = 32,
  kTypeString = 64,
  kTypeAny = 128,
};

// A value of `enum` or `const`: what valijson's strict equality compares (numbers as doubles).
struct Scalar {
  enum Kind { kNull, kBool, kNumber, kString } kind = kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
};

enum class Additional { kAny, kNone, kSchema };

}  // namespace

struct CompiledSchema::Node {
  bool always_invalid = false;  // the schema `false`
  // In valijson's constraint order (schema_parser.hpp populateSchema).
  bool has_all_of = false, has_any_of = false, has_one_of = false;
  std::vector<const Node*> all_of, any_of, one_of;
  std::optional<Scalar> const_value;
  bool has_enum = false;
  std::vector<Scalar> enum_values;
  const Node* items = nullptr;
  std::optional<double> exclusive_maximum, maximum, exclusive_minimum, minimum;
  std::optional<uint64_t> max_items, max_length, min_items, min_length;
  // `properties`/`additionalProperties`: one PropertiesConstraint in valijson. Names sorted as
  // its std::map sorts them.
  bool has_properties = false;
  std::vector<std::string> property_names;
  std::vector<const Node*> property_nodes;
  Additional additional = Additional::kAny;
  const Node* additional_schema = nullptr;
  std::vector<std::string> required;  // sorted, unique (valijson's std::set)
  // The names an object's members are looked up in: property names and required names, sorted;
  // key_property[i] is the index in property_names, or -1.
  std::vector<std::string> keys;
  std::vector<int32_t> key_property;
  // Per key: its size and first 8 bytes, so a member key is told apart without a call; and an
  // open-addressing table of key indexes (-1 empty) over KeyHash, at most half full.
  std::vector<std::pair<uint32_t, uint64_t>> key_probes;
  std::vector<int32_t> key_table;
  uint32_t key_shift = 0;
  std::vector<uint32_t> required_keys;  // required[i] is keys[required_keys[i]]
  bool has_type = false;
  uint8_t types = 0;  // `"type": []` leaves it 0, which valijson reads as permitting nothing
  bool LooksIntoObjects() const { return has_properties || !required.empty(); }
};

CompiledSchema::~CompiledSchema() = default;

namespace {

// A key's first 8 bytes (zero-padded) as one integer.
uint64_t HeadOf(std::string_view key) {
  uint64_t head = 0;
  std::memcpy(&head, key.data(), std::min<size_t>(8, key.size()));
  return head;
}

// The slot of a key in a table of 2^(64 - shift) slots (Fibonacci hashing of its head and size).
size_t KeySlot(uint64_t head, size_t size, uint32_t shift) {
  return static_cast<size_t>(((head ^ (size * 0x9E3779B97F4A7C15ULL)) * 0x9E3779B97F4A7C15ULL) >>
                             shift);
}

class Compiler {
 public:
  Compiler(const json::value& root, std::vector<std::unique_ptr<CompiledSchema::Node>>* nodes)
      : root_(root), nodes_(nodes) {}

  // The node of `schema`; nullptr with why_ set when it is not compiled.
  const CompiledSchema::Node* Build(const json::value& schema, size_t depth) {
    if (!why_.empty()) return nullptr;
    if (depth > kMaxProgramDepth)
      return Fail("nesting deeper than " + std::to_string(kMaxProgramDepth));
    if (schema.is_bool()) {
      auto node = New();
      node->always_invalid = !schema.get_bool();
      return node;
    }
    if (!schema.is_object()) return Fail("a schema that is not an object");
    const json::object& o = schema.get_object();
    if (const json::value* ref = o.if_contains("$ref")) {
      // valijson resolves a $ref and ignores the keywords beside it.
      if (depth == 0) return Fail("$ref at the root");
      return Ref(*ref, depth);
    }
    for (const auto& m : o) {
      const std::string_view k = m.key();
      // What valijson's parser implements beyond that (schema_parser.hpp); any other member
      // is an annotation valijson ignores, and so does the program.
      static constexpr std::string_view kNotCompiled[] = {
          "id",         "contains", "dependencies", "divisibleBy",       "additionalItems",
          "if",         "then",     "else",         "maxProperties",     "minProperties",
          "multipleOf", "not",      "pattern",      "patternProperties", "propertyNames",
          "uniqueItems"};
      if (std::find(std::begin(kNotCompiled), std::end(kNotCompiled), k) != std::end(kNotCompiled))
        return Fail(std::string(k));
    }
    auto node = New();
    auto schemas = [&](const char* key, bool* has, std::vector<const CompiledSchema::Node*>* out) {
      const json::value* v = o.if_contains(key);
      if (v == nullptr) return true;
      if (!v->is_array()) return Fail(std::string(key) + " that is not an array"), false;
      *has = true;
      for (const auto& e : v->get_array()) {
        const CompiledSchema::Node* child = Build(e, depth + 1);
        if (child == nullptr) return false;
        out->push_back(child);
      }
      return true;
    };
    if (!schemas("allOf", &node->has_all_of, &node->all_of)) return nullptr;
    if (!schemas("anyOf", &node->has_any_of, &node->any_of)) return nullptr;
    if (!schemas("oneOf", &node->has_one_of, &node->one_of)) return nullptr;
    if (const json::value* v = o.if_contains("const")) {
      Scalar s;
      if (!ToScalar(*v, &s)) return Fail("const of an object, an array or a large integer");
      node->const_value = std::move(s);
    }
    if (const json::value* v = o.if_contains("enum")) {
      if (!v->is_array()) return Fail("enum that is not an array");
      node->has_enum = true;
      for (const auto& e : v->get_array()) {
        Scalar s;
        if (!ToScalar(e, &s)) return Fail("enum of objects, arrays or large integers");
        node->enum_values.push_back(std::move(s));
      }
    }
    if (const json::value* v = o.if_contains("format")) {
      // valijson checks only date, time and date-time (refused before compiling); others pass.
      if (!v->is_string()) return Fail("format that is not a string");
    }
    if (const json::value* v = o.if_contains("items")) {
      if (v->is_array()) return Fail("items as an array of schemas");
      node->items = Build(*v, depth + 1);
      if (node->items == nullptr) return nullptr;
    }
    auto number = [&](const char* key, std::optional<double>* out) {
      const json::value* v = o.if_contains(key);
      if (v == nullptr) return true;
      if (v->is_int64()) {
        *out = static_cast<double>(v->get_int64());
      } else if (v->is_double()) {
        *out = v->get_double();
      } else {
        return Fail(std::string(key) + " that is not a number below 2^63"), false;
      }
      return true;
    };
    auto count = [&](const char* key, std::optional<uint64_t>* out) {
      const json::value* v = o.if_contains(key);
      if (v == nullptr) return true;
      if (!v->is_int64() || v->get_int64() < 0)
        return Fail(std::string(key) + " that is not a non-negative integer"), false;
      *out = static_cast<uint64_t>(v->get_int64());
      return true;
    };
    if (!number("exclusiveMaximum", &node->exclusive_maximum) ||
        !number("maximum", &node->maximum) || !count("maxItems", &node->max_items) ||
        !count("maxLength", &node->max_length) ||
        !number("exclusiveMinimum", &node->exclusive_minimum) ||
        !number("minimum", &node->minimum) || !count("minItems", &node->min_items) ||
        !count("minLength", &node->min_length))
      return nullptr;
    const json::value* props = o.if_contains("properties");
    const json::value* additional = o.if_contains("additionalProperties");
    if (props != nullptr || additional != nullptr) {
      node->has_properties = true;
      if (props != nullptr) {
        if (!props->is_object()) return Fail("properties that is not an object");
        std::vector<std::pair<std::string, const json::value*>> sorted;
        for (const auto& m : props->get_object())
          sorted.emplace_back(std::string(m.key()), &m.value());
        std::sort(sorted.begin(), sorted.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
        for (size_t i = 0; i < sorted.size(); ++i) {
          if (i > 0 && sorted[i].first == sorted[i - 1].first)
            return Fail("a property named twice");
          if (sorted[i].first.find('\0') != std::string::npos)
            return Fail("a property name holding U+0000");
          const CompiledSchema::Node* child = Build(*sorted[i].second, depth + 1);
          if (child == nullptr) return nullptr;
          node->property_names.push_back(sorted[i].first);
          node->property_nodes.push_back(child);
        }
      }
      if (additional != nullptr) {
        if (additional->is_bool()) {
          node->additional = additional->get_bool() ? Additional::kAny : Additional::kNone;
        } else {
          node->additional = Additional::kSchema;
          node->additional_schema = Build(*additional, depth + 1);
          if (node->additional_schema == nullptr) return nullptr;
        }
      }
    }
    if (const json::value* v = o.if_contains("required")) {
      if (!v->is_array()) return Fail("required that is not an array");
      for (const auto& e : v->get_array()) {
        if (!e.is_string()) return Fail("required holding a non-string");
        std::string name(e.get_string());
        if (name.find('\0') != std::string::npos) return Fail("a required name holding U+0000");
        node->required.push_back(std::move(name));
      }
      std::sort(node->required.begin(), node->required.end());
      node->required.erase(std::unique(node->required.begin(), node->required.end()),
                           node->required.end());
    }
    if (node->LooksIntoObjects()) {
      node->keys = node->property_names;
      node->keys.insert(node->keys.end(), node->required.begin(), node->required.end());
      std::sort(node->keys.begin(), node->keys.end());
      node->keys.erase(std::unique(node->keys.begin(), node->keys.end()), node->keys.end());
      for (const auto& k : node->keys) {
        node->key_probes.emplace_back(static_cast<uint32_t>(k.size()), HeadOf(k));
        auto it = std::lower_bound(node->property_names.begin(), node->property_names.end(), k);
        node->key_property.push_back(it != node->property_names.end() && *it == k
                                         ? static_cast<int32_t>(it - node->property_names.begin())
                                         : -1);
      }
      size_t slots = 4;
      uint32_t bits = 2;
      while (slots < 2 * node->keys.size()) {
        slots *= 2;
        ++bits;
      }
      node->key_shift = 64 - bits;
      node->key_table.assign(slots, -1);
      for (size_t i = 0; i < node->keys.size(); ++i) {
        size_t slot = KeySlot(node->key_probes[i].second, node->keys[i].size(), node->key_shift);
        while (node->key_table[slot] >= 0)
          slot = (slot + 1) & (slots - 1);
        node->key_table[slot] = static_cast<int32_t>(i);
      }
      for (const auto& r : node->required)
        node->required_keys.push_back(static_cast<uint32_t>(
            std::lower_bound(node->keys.begin(), node->keys.end(), r) - node->keys.begin()));
    }
    if (const json::value* v = o.if_contains("type")) {
      auto bit = [](std::string_view t) -> uint8_t {
        if (t == "array") return kTypeArray;
        if (t == "boolean") return kTypeBoolean;
        if (t == "integer") return kTypeInteger;
        if (t == "null") return kTypeNull;
        if (t == "number") return kTypeNumber;
        if (t == "object") return kTypeObject;
        if (t == "string") return kTypeString;
        if (t == "any") return kTypeAny;
        return 0;
      };
      if (v->is_string()) {
        node->types = bit(v->get_string());
      } else if (v->is_array()) {
        for (const auto& e : v->get_array()) {
          if (!e.is_string() || bit(e.get_string()) == 0) return Fail("type holding a schema");
          node->types |= bit(e.get_string());
        }
      } else {
        return Fail("type that is neither a name nor a list of names");
      }
      if (v->is_string() && node->types == 0) return Fail("an unknown type name");
      node->has_type = true;
    }
    return node;
  }

  std::string why() const { return why_; }

 private:
  CompiledSchema::Node* New() {
    nodes_->push_back(std::make_unique<CompiledSchema::Node>());
    return nodes_->back().get();
  }
  std::nullptr_t Fail(std::string why) {
    if (why_.empty()) why_ = std::move(why);
    return nullptr;
  }
  bool ToScalar(const json::value& v, Scalar* s) {
    switch (v.kind()) {
      case json::kind::null:
        s->kind = Scalar::kNull;
        return true;
      case json::kind::bool_:
        s->kind = Scalar::kBool;
        s->boolean = v.get_bool();
        return true;
      case json::kind::int64:
        s->kind = Scalar::kNumber;
        s->number = static_cast<double>(v.get_int64());
        return true;
      case json::kind::double_:
        s->kind = Scalar::kNumber;
        s->number = v.get_double();
        return true;
      case json::kind::string:
        s->kind = Scalar::kString;
        s->string = std::string(v.get_string());
        return s->string.find('\0') == std::string::npos;
      default:
        return false;
    }
  }
  // "#/definitions/NAME" or "#/$defs/NAME" (tracking_plans.cc refuses every other $ref and
  // every cycle before this runs); each definition is compiled once.
  const CompiledSchema::Node* Ref(const json::value& ref, size_t depth) {
    if (!ref.is_string()) return Fail("$ref that is not a string");
    const std::string_view r = ref.get_string();
    for (std::string_view section : {"definitions", "$defs"}) {
      const std::string prefix = "#/" + std::string(section) + "/";
      if (!r.starts_with(prefix)) continue;
      const std::string name(r.substr(prefix.size()));
      if (name.find('/') != std::string::npos || name.find('~') != std::string::npos ||
          name.find('%') != std::string::npos)
        return Fail("$ref with an escaped or nested pointer");
      const json::object* root = root_.if_object();
      const json::value* defs = root != nullptr ? root->if_contains(section) : nullptr;
      const json::value* target =
          defs != nullptr && defs->is_object() ? defs->get_object().if_contains(name) : nullptr;
      if (target == nullptr) return Fail("$ref to a missing definition");
      const std::string key(r);
      if (auto it = refs_.find(key); it != refs_.end()) return it->second;
      const CompiledSchema::Node* node = Build(*target, depth + 1);
      if (node != nullptr) refs_[key] = node;
      return node;
    }
    return Fail("$ref outside the document's definitions");
  }

  const json::value& root_;
  std::vector<std::unique_ptr<CompiledSchema::Node>>* nodes_;
  std::unordered_map<std::string, const CompiledSchema::Node*> refs_;
  std::string why_;
};

// ---- Reading raw values --------------------------------------------------------------------

enum class NumberKind { kInt64, kUint64, kDouble };

// The kind Boost.JSON gives a number's text (an integer within int64, within uint64, else a
// double) and its value as a double (exact for int64 as valijson converts it).
NumberKind ReadNumber(std::string_view raw, double* value) {
  const bool integral = raw.find_first_of(".eE") == std::string_view::npos;
  if (integral) {
    int64_t i = 0;
    auto r = std::from_chars(raw.data(), raw.data() + raw.size(), i);
    if (r.ec == std::errc() && r.ptr == raw.data() + raw.size()) {
      *value = static_cast<double>(i);
      return NumberKind::kInt64;
    }
    if (raw.front() != '-') {
      uint64_t u = 0;
      r = std::from_chars(raw.data(), raw.data() + raw.size(), u);
      if (r.ec == std::errc() && r.ptr == raw.data() + raw.size()) {
        *value = static_cast<double>(u);
        return NumberKind::kUint64;
      }
    }
  }
  double d = 0;
  std::from_chars(raw.data(), raw.data() + raw.size(), d);
  *value = d;
  return NumberKind::kDouble;
}

// Code points of a decoded string up to its first NUL, as valijson's u8_strlen counts them.
uint64_t CodePoints(std::string_view s) {
  uint64_t n = 0;
  for (char c : s)
    n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// Scratch memory of one level of a check, reused across events on this thread.
struct Scratch {
  std::vector<event::RawMember> members;
  std::string key_storage;
  std::vector<std::string_view> keys;
  std::vector<int32_t> seen;  // by Node::keys index: the member holding it, or -1
  std::vector<uint8_t> shadowed;
  std::vector<std::string_view> elements;
  std::string string;
};

// The state of one check. Its scratch memory and path stack belong to the thread and keep their
// capacity across events (no allocation per event on the valid path).
struct ThreadMemory {
  std::deque<Scratch> pool;  // by level: references stay valid as it grows
  std::vector<std::string> path;
};

// The kind of a raw value from its first byte (event::KindOf, inlined on this hot path).
event::RawKind KindOf(std::string_view v) {
  switch (v.empty() ? 'n' : v.front()) {
    case '{':
      return event::RawKind::kObject;
    case '[':
      return event::RawKind::kArray;
    case '"':
      return event::RawKind::kString;
    case 't':
      return event::RawKind::kTrue;
    case 'f':
      return event::RawKind::kFalse;
    case 'n':
      return event::RawKind::kNull;
    default:
      return event::RawKind::kNumber;
  }
}

class Run {
 public:
  Run(std::vector<SchemaError>* errors, ThreadMemory* memory)
      : errors_(errors), memory_(memory), path_(memory->path) {
    path_.clear();
  }
  bool undecided = false;

  bool Validate(const CompiledSchema::Node& n, std::string_view value,
                const std::span<const event::RawMember>* members, size_t level) {
    if (n.always_invalid) return false;
    const event::RawKind kind = KindOf(value);
    Scratch* scratch = nullptr;
    auto scratch_at_level = [&]() -> Scratch& {
      if (scratch == nullptr) scratch = &ScratchAt(level);
      return *scratch;
    };
    bool valid = true;
    if (n.has_all_of) {
      for (size_t i = 0; i < n.all_of.size(); ++i) {
        if (!Validate(*n.all_of[i], value, members, level + 1)) {
          Push("Failed to validate against child schema #" + std::to_string(i) + ".");
          valid = false;
          break;
        }
      }
      if (undecided) return false;
    }
    if (n.has_any_of) {
      std::vector<SchemaError> child;
      std::vector<SchemaError>* saved = errors_;
      errors_ = &child;
      bool any = false;
      for (size_t i = 0; i < n.any_of.size() && !any; ++i) {
        if (Validate(*n.any_of[i], value, members, level + 1)) {
          any = true;
        } else {
          Push("Failed to validate against child schema #" + std::to_string(i) + ".");
        }
      }
      errors_ = saved;
      if (undecided) return false;
      if (!any) {
        Append(&child);
        Push("Failed to validate against any schemas allowed by anyOf constraint.");
        valid = false;
      }
    }
    if (n.const_value && !Equal(*n.const_value, kind, value, scratch_at_level())) {
      if (undecided) return false;
      Push("Failed to match expected value set by 'const' constraint.");
      valid = false;
    }
    if (n.has_enum) {
      bool any = false;
      for (const auto& e : n.enum_values) {
        if (Equal(e, kind, value, scratch_at_level())) {
          any = true;
          break;
        }
        if (undecided) return false;
      }
      if (!any) {
        Push("Failed to match against any enum values.");
        valid = false;
      }
    }
    bool split_array = false;
    auto elements = [&]() -> const std::vector<std::string_view>& {
      if (!split_array) event::SplitArray(value, &scratch_at_level().elements);
      split_array = true;
      return scratch->elements;
    };
    if (n.items != nullptr && kind == event::RawKind::kArray) {
      const auto& items = elements();
      for (size_t i = 0; i < items.size(); ++i) {
        path_.push_back(std::to_string(i));
        const bool ok = Validate(*n.items, items[i], nullptr, level + 1);
        path_.pop_back();
        if (undecided) return false;
        if (!ok) {
          Push("Failed to validate item #" + std::to_string(i) + " in array.");
          valid = false;
        }
      }
    }
    const bool numeric = kind == event::RawKind::kNumber;
    double number = 0;
    if (numeric && (n.exclusive_maximum || n.maximum || n.exclusive_minimum || n.minimum)) {
      if (ReadNumber(value, &number) == NumberKind::kUint64) return Undecided();
    }
    if (numeric && n.exclusive_maximum && number >= *n.exclusive_maximum) {
      Push("Expected number less than " + std::to_string(*n.exclusive_maximum));
      valid = false;
    }
    if (numeric && n.maximum && number > *n.maximum) {
      Push("Expected number less than or equal to " + std::to_string(*n.maximum));
      valid = false;
    }
    if (n.max_items && kind == event::RawKind::kArray && elements().size() > *n.max_items) {
      Push("Array should contain no more than " + std::to_string(*n.max_items) + " elements.");
      valid = false;
    }
    std::string_view text;
    const bool is_string = kind == event::RawKind::kString;
    if (is_string && (n.max_length || n.min_length)) {
      if (!StringOf(value, scratch_at_level(), &text)) return Undecided();
    }
    if (is_string && n.max_length && CodePoints(text) > *n.max_length) {
      Push("String should be no more than " + std::to_string(*n.max_length) +
           " characters in length.");
      valid = false;
    }
    if (numeric && n.exclusive_minimum && number <= *n.exclusive_minimum) {
      Push("Expected number greater than " + std::to_string(*n.exclusive_minimum));
      valid = false;
    }
    if (numeric && n.minimum && number < *n.minimum) {
      Push("Expected number greater than or equal to " + std::to_string(*n.minimum));
      valid = false;
    }
    if (n.min_items && kind == event::RawKind::kArray && elements().size() < *n.min_items) {
      Push("Array should contain no fewer than " + std::to_string(*n.min_items) + " elements.");
      valid = false;
    }
    if (is_string && n.min_length && CodePoints(text) < *n.min_length) {
      Push("String should be no fewer than " + std::to_string(*n.min_length) +
           " characters in length.");
      valid = false;
    }
    if (n.has_one_of) {
      std::vector<SchemaError> child;
      std::vector<SchemaError>* saved = errors_;
      errors_ = &child;
      size_t passed = 0;
      for (size_t i = 0; i < n.one_of.size(); ++i) {
        if (Validate(*n.one_of[i], value, members, level + 1)) {
          ++passed;
        } else {
          Push("Failed to validate against child schema #" + std::to_string(i) + ".");
        }
        if (undecided) break;
      }
      errors_ = saved;
      if (undecided) return false;
      if (passed == 0) {
        Append(&child);
        Push("Failed to validate against any child schemas allowed by oneOf constraint.");
        valid = false;
      } else if (passed > 1) {
        Push("Failed to validate against exactly one child schema.");
        valid = false;
      }
    }
    if (n.LooksIntoObjects() && kind == event::RawKind::kObject) {
      if (!ObjectChecks(n, value, members, level, scratch_at_level())) valid = false;
      if (undecided) return false;
    }
    if (n.has_type && !TypeMatches(n.types, kind, value)) {
      if (undecided) return false;
      Push("Value type not permitted by 'type' constraint.");
      valid = false;
    }
    return valid;
  }

 private:
  Scratch& ScratchAt(size_t level) {
    while (memory_->pool.size() <= level)
      memory_->pool.emplace_back();
    return memory_->pool[level];
  }
  bool Undecided() {
    undecided = true;
    return false;
  }
  void Push(std::string message) {
    std::string path;
    for (const auto& p : path_) {
      if (!path.empty()) path += '.';
      path += p;
    }
    errors_->push_back(SchemaError{std::move(path), std::move(message)});
  }
  void Append(std::vector<SchemaError>* more) {
    for (auto& e : *more)
      errors_->push_back(std::move(e));
  }

  // The decoded content of a string value; false when it holds U+0000 (valijson's C strings
  // would end there).
  bool StringOf(std::string_view raw, Scratch& s, std::string_view* out) {
    if (event::PlainString(raw, out)) return true;
    s.string.clear();
    event::UnescapeJsonString(raw.substr(1, raw.size() - 2), &s.string);
    if (s.string.find('\0') != std::string::npos) return false;
    *out = s.string;
    return true;
  }

  // valijson's strict equality of a schema scalar and a value (sets `undecided` where valijson
  // would throw or see a truncated string).
  bool Equal(const Scalar& e, event::RawKind kind, std::string_view raw, Scratch& s) {
    switch (e.kind) {
      case Scalar::kNull:
        return kind == event::RawKind::kNull;
      case Scalar::kBool:
        return (kind == event::RawKind::kTrue && e.boolean) ||
               (kind == event::RawKind::kFalse && !e.boolean);
      case Scalar::kNumber: {
        if (kind != event::RawKind::kNumber) return false;
        double d = 0;
        if (ReadNumber(raw, &d) == NumberKind::kUint64) return Undecided();
        return d == e.number;
      }
      case Scalar::kString: {
        if (kind != event::RawKind::kString) return false;
        std::string_view text;
        if (!StringOf(raw, s, &text)) return Undecided();
        return text == e.string;
      }
    }
    return false;
  }

  bool TypeMatches(uint8_t types, event::RawKind kind, std::string_view raw) {
    if (types & kTypeAny) return true;
    switch (kind) {
      case event::RawKind::kObject:
        return types & kTypeObject;
      case event::RawKind::kArray:
        return types & kTypeArray;
      case event::RawKind::kString:
        return types & kTypeString;
      case event::RawKind::kTrue:
      case event::RawKind::kFalse:
        return types & kTypeBoolean;
      case event::RawKind::kNull:
        return types & kTypeNull;
      case event::RawKind::kNumber: {
        if (!(types & (kTypeNumber | kTypeInteger))) return false;
        double d = 0;
        const NumberKind number = ReadNumber(raw, &d);
        // valijson's Boost.JSON adapter counts a uint64 as neither integer nor number.
        if (number == NumberKind::kUint64) return Undecided();
        return (types & kTypeNumber) || number == NumberKind::kInt64;
      }
    }
    return false;
  }

  // Index of `key` in the node's sorted keys, or -1.
  static int32_t Find(const CompiledSchema::Node& n, std::string_view key) {
    const uint64_t head = HeadOf(key);
    const size_t mask = n.key_table.size() - 1;
    for (size_t slot = KeySlot(head, key.size(), n.key_shift);; slot = (slot + 1) & mask) {
      const int32_t i = n.key_table[slot];
      if (i < 0) return -1;
      const auto& [size, probe] = n.key_probes[static_cast<size_t>(i)];
      if (size == key.size() && probe == head &&
          (size <= 8 ||
           std::memcmp(n.keys[static_cast<size_t>(i)].data() + 8, key.data() + 8, size - 8) == 0))
        return i;
    }
  }

  // valijson's PropertiesConstraint, then its RequiredConstraint, on an object value.
  bool ObjectChecks(const CompiledSchema::Node& n, std::string_view value,
                    const std::span<const event::RawMember>* given, size_t level, Scratch& s) {
    std::span<const event::RawMember> members;
    if (given != nullptr) {
      members = *given;
    } else {
      event::SplitObject(value, &s.members);
      members = s.members;
    }
    event::DecodedKeys(members, &s.key_storage, &s.keys);
    if (s.key_storage.find('\0') != std::string::npos) return Undecided();
    s.seen.assign(n.keys.size(), -1);
    for (size_t i = 0; i < members.size(); ++i) {
      const int32_t k = Find(n, s.keys[i]);
      if (k < 0) continue;
      // A duplicate of a checked key: valijson sees the last value at the first's position.
      if (s.seen[static_cast<size_t>(k)] >= 0) return Undecided();
      s.seen[static_cast<size_t>(k)] = static_cast<int32_t>(i);
    }
    bool valid = true;
    if (n.has_properties) {
      for (size_t k = 0; k < n.keys.size(); ++k) {
        const int32_t p = n.key_property[k];
        const int32_t m = s.seen[k];
        if (p < 0 || m < 0) continue;
        path_.push_back(n.keys[k]);
        const auto* child = n.property_nodes[static_cast<size_t>(p)];
        const bool ok = Validate(*child, members[static_cast<size_t>(m)].value, nullptr, level + 1);
        path_.pop_back();
        if (undecided) return false;
        if (!ok) {
          Push("Failed to validate against schema associated with property name '" + n.keys[k] +
               "'.");
          valid = false;
        }
      }
      auto unmatched = [&](size_t i) {
        const int32_t k = Find(n, s.keys[i]);
        return k < 0 || n.key_property[static_cast<size_t>(k)] < 0;
      };
      if (n.additional == Additional::kNone) {
        for (size_t i = 0; i < members.size(); ++i) {
          if (!unmatched(i)) continue;
          Push(
              "Object contains a property that could not be validated using 'properties' or "
              "'additionalProperties' constraints: '" +
              std::string(s.keys[i]) + "'.");
          valid = false;
          break;
        }
      } else if (n.additional == Additional::kSchema) {
        if (event::MarkShadowedKeys(s.keys, &s.shadowed)) return Undecided();
        for (size_t i = 0; i < members.size(); ++i) {
          if (!unmatched(i)) continue;
          path_.push_back(std::string(s.keys[i]));
          const bool ok = Validate(*n.additional_schema, members[i].value, nullptr, level + 1);
          path_.pop_back();
          if (undecided) return false;
          if (!ok) {
            Push("Failed to validate against additional properties schema");
            valid = false;
          }
        }
      }
    }
    for (size_t i = 0; i < n.required.size(); ++i) {
      if (s.seen[n.required_keys[i]] < 0) {
        Push("Missing required property '" + n.required[i] + "'.");
        valid = false;
      }
    }
    return valid;
  }

  std::vector<SchemaError>* errors_;
  ThreadMemory* memory_;
  std::vector<std::string>& path_;
};

}  // namespace

std::unique_ptr<CompiledSchema> CompiledSchema::Compile(const json::value& schema,
                                                        std::string* not_compiled) {
  std::unique_ptr<CompiledSchema> out(new CompiledSchema());
  Compiler compiler(schema, &out->nodes_);
  const Node* root = compiler.Build(schema, 0);
  if (root == nullptr) {
    *not_compiled = compiler.why();
    return nullptr;
  }
  (void)root;  // nodes_[0]: Build creates a node before its children
  return out;
}

CheckOutcome CompiledSchema::Check(std::string_view event,
                                   std::span<const event::RawMember> members,
                                   std::vector<SchemaError>* errors) const {
  thread_local ThreadMemory memory;
  Run run(errors, &memory);
  const bool valid = run.Validate(*nodes_[0], event, &members, 0);
  if (run.undecided) return CheckOutcome::kUndecided;
  return valid ? CheckOutcome::kValid : CheckOutcome::kInvalid;
}

}  // namespace sy::governance
