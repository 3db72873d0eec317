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

// Groups of a node's checks, so a value skips at once what cannot apply to it.
enum CheckGroup : uint8_t {
  kFirstChecks = 1,   // allOf, anyOf, const, enum
  kNumberChecks = 2,  // exclusiveMaximum, maximum, exclusiveMinimum, minimum
  kStringChecks = 4,  // maxLength, minLength
  kArrayChecks = 8,   // items, maxItems, minItems
};

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
  uint8_t types = 0;   // `"type": []` leaves it 0, which valijson reads as permitting nothing
  uint8_t checks = 0;  // which groups of checks the node has (CheckGroup bits)
  bool LooksIntoObjects() const { return has_properties || !required.empty(); }
};

CompiledSchema::~CompiledSchema() = default;

namespace {

// A key's first 8 bytes (zero-padded) as one integer.
uint64_t HeadOf(std::string_view key) {
  uint64_t head = 0;
  if (key.size() >= 8) {
    std::memcpy(&head, key.data(), 8);
  } else {
    for (size_t i = 0; i < key.size(); ++i)
      head |= static_cast<uint64_t>(static_cast<unsigned char>(key[i])) << (8 * i);
  }
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
      // What valijson's parser implements and the program does not (schema_parser.hpp); any
      // member the program neither compiles nor lists here is one valijson ignores too.
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
    if (node->has_all_of || node->has_any_of || node->const_value || node->has_enum)
      node->checks |= kFirstChecks;
    if (node->exclusive_maximum || node->maximum || node->exclusive_minimum || node->minimum)
      node->checks |= kNumberChecks;
    if (node->max_length || node->min_length) node->checks |= kStringChecks;
    if (node->items != nullptr || node->max_items || node->min_items) node->checks |= kArrayChecks;
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
  // The usual case without a library call: at most 15 digits, an optional fraction, no
  // exponent. The digits as an integer m < 2^53 and 10^k (k <= 15) are exact doubles, so m / 10^k
  // is the correctly rounded value, as from_chars gives it.
  static constexpr double kPowers[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
  {
    size_t i = raw.empty() || raw[0] != '-' ? 0 : 1;
    const bool negative = i == 1;
    uint64_t m = 0;
    int digits = 0, fraction = -1;
    for (; i < raw.size() && digits <= 15; ++i) {
      const char c = raw[i];
      if (c >= '0' && c <= '9') {
        m = m * 10 + static_cast<uint64_t>(c - '0');
        ++digits;
        if (fraction >= 0) ++fraction;
      } else if (c == '.' && fraction < 0) {
        fraction = 0;
      } else {
        break;
      }
    }
    if (i == raw.size() && digits <= 15) {
      if (fraction < 0) {
        const int64_t v = negative ? -static_cast<int64_t>(m) : static_cast<int64_t>(m);
        *value = static_cast<double>(v);
        return NumberKind::kInt64;
      }
      const double d = static_cast<double>(m) / kPowers[fraction];
      *value = negative ? -d : d;
      return NumberKind::kDouble;
    }
  }
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
  std::string index;  // the text of the array index in the path
};

// The state of one check. Its scratch memory and path stack belong to the thread and keep their
// capacity across events (no allocation per event on the valid path).
struct ThreadMemory {
  std::deque<Scratch> pool;  // by level: references stay valid as it grows
  // The context: views of the schema's property names, of decoded keys and index texts in the
  // scratch of the level that pushed them (alive until it pops them).
  std::vector<std::string_view> path;
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

  // valijson's validateSchema: every constraint of `n`, in its order, errors appended.
  // Constraints apply to one kind of value each (valijson ignores the others), so after the
  // combinators and values come the checks of this value's kind, then oneOf, the object checks
  // and type: the same order, without looking at checks that cannot apply.
  bool Validate(const CompiledSchema::Node& n, std::string_view value,
                const std::span<const event::RawMember>* members, size_t level) {
    if (n.always_invalid) return false;
    const event::RawKind kind = KindOf(value);
    bool valid = true;
    if (n.checks & kFirstChecks) {
      if (!FirstChecks(n, kind, value, members, level)) valid = false;
      if (undecided) return false;
    }
    switch (kind) {
      case event::RawKind::kNumber:
        if ((n.checks & kNumberChecks) && !NumberChecks(n, value)) valid = false;
        break;
      case event::RawKind::kString:
        if ((n.checks & kStringChecks) && !StringChecks(n, value, level)) valid = false;
        break;
      case event::RawKind::kArray:
        if ((n.checks & kArrayChecks) && !ArrayChecks(n, value, level)) valid = false;
        break;
      default:
        break;
    }
    if (undecided) return false;
    if (n.has_one_of) {
      if (!OneOf(n, value, members, level)) valid = false;
      if (undecided) return false;
    }
    if (kind == event::RawKind::kObject && n.LooksIntoObjects()) {
      if (!ObjectChecks(n, value, members, level, ScratchAt(level))) valid = false;
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
  // allOf, anyOf, const, enum.
  bool FirstChecks(const CompiledSchema::Node& n, event::RawKind kind, std::string_view value,
                   const std::span<const event::RawMember>* members, size_t level) {
    bool valid = true;
    if (n.has_all_of) {
      for (size_t i = 0; i < n.all_of.size(); ++i) {
        if (!Validate(*n.all_of[i], value, members, level + 1)) {
          if (undecided) return false;
          Push("Failed to validate against child schema #" + std::to_string(i) + ".");
          valid = false;
          break;
        }
      }
    }
    if (n.has_any_of) {
      std::vector<SchemaError> child;
      std::vector<SchemaError>* saved = errors_;
      errors_ = &child;
      bool any = false;
      for (size_t i = 0; i < n.any_of.size() && !any && !undecided; ++i) {
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
    if (n.const_value && !Equal(*n.const_value, kind, value, ScratchAt(level))) {
      if (undecided) return false;
      Push("Failed to match expected value set by 'const' constraint.");
      valid = false;
    }
    if (n.has_enum) {
      bool any = false;
      for (const auto& e : n.enum_values) {
        if (Equal(e, kind, value, ScratchAt(level))) {
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
    return valid;
  }

  bool NumberChecks(const CompiledSchema::Node& n, std::string_view value) {
    double number = 0;
    if (ReadNumber(value, &number) == NumberKind::kUint64) return Undecided();
    bool valid = true;
    if (n.exclusive_maximum && number >= *n.exclusive_maximum) {
      Push("Expected number less than " + std::to_string(*n.exclusive_maximum));
      valid = false;
    }
    if (n.maximum && number > *n.maximum) {
      Push("Expected number less than or equal to " + std::to_string(*n.maximum));
      valid = false;
    }
    if (n.exclusive_minimum && number <= *n.exclusive_minimum) {
      Push("Expected number greater than " + std::to_string(*n.exclusive_minimum));
      valid = false;
    }
    if (n.minimum && number < *n.minimum) {
      Push("Expected number greater than or equal to " + std::to_string(*n.minimum));
      valid = false;
    }
    return valid;
  }

  bool StringChecks(const CompiledSchema::Node& n, std::string_view value, size_t level) {
    std::string_view text;
    if (!StringOf(value, ScratchAt(level), &text)) return Undecided();
    const uint64_t length = CodePoints(text);
    bool valid = true;
    if (n.max_length && length > *n.max_length) {
      Push("String should be no more than " + std::to_string(*n.max_length) +
           " characters in length.");
      valid = false;
    }
    if (n.min_length && length < *n.min_length) {
      Push("String should be no fewer than " + std::to_string(*n.min_length) +
           " characters in length.");
      valid = false;
    }
    return valid;
  }

  // items, maxItems, minItems.
  bool ArrayChecks(const CompiledSchema::Node& n, std::string_view value, size_t level) {
    Scratch& s = ScratchAt(level);
    event::SplitArray(value, &s.elements);
    bool valid = true;
    if (n.items != nullptr) {
      for (size_t i = 0; i < s.elements.size(); ++i) {
        s.index = std::to_string(i);
        path_.push_back(s.index);
        const bool ok = Validate(*n.items, s.elements[i], nullptr, level + 1);
        path_.pop_back();
        if (undecided) return false;
        if (!ok) {
          Push("Failed to validate item #" + std::to_string(i) + " in array.");
          valid = false;
        }
      }
    }
    if (n.max_items && s.elements.size() > *n.max_items) {
      Push("Array should contain no more than " + std::to_string(*n.max_items) + " elements.");
      valid = false;
    }
    if (n.min_items && s.elements.size() < *n.min_items) {
      Push("Array should contain no fewer than " + std::to_string(*n.min_items) + " elements.");
      valid = false;
    }
    return valid;
  }

  bool OneOf(const CompiledSchema::Node& n, std::string_view value,
             const std::span<const event::RawMember>* members, size_t level) {
    std::vector<SchemaError> child;
    std::vector<SchemaError>* saved = errors_;
    errors_ = &child;
    size_t passed = 0;
    for (size_t i = 0; i < n.one_of.size() && !undecided; ++i) {
      if (Validate(*n.one_of[i], value, members, level + 1)) {
        ++passed;
      } else {
        Push("Failed to validate against child schema #" + std::to_string(i) + ".");
      }
    }
    errors_ = saved;
    if (undecided) return false;
    if (passed == 0) {
      Append(&child);
      Push("Failed to validate against any child schemas allowed by oneOf constraint.");
      return false;
    }
    if (passed > 1) {
      Push("Failed to validate against exactly one child schema.");
      return false;
    }
    return true;
  }

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
    // Every key decoded when additionalProperties looks at the others; otherwise only escaped
    // keys are (a key without a backslash is its own decoding).
    const bool all_keys = n.additional != Additional::kAny;
    if (all_keys) {
      event::DecodedKeys(members, &s.key_storage, &s.keys);
      if (s.key_storage.find('\0') != std::string::npos) return Undecided();
    }
    s.seen.assign(n.keys.size(), -1);
    // Keys are decoded one by one only if the object's text holds a backslash at all.
    const bool escapes = !all_keys && std::memchr(value.data(), '\\', value.size()) != nullptr;
    for (size_t i = 0; i < members.size(); ++i) {
      std::string_view key = all_keys ? s.keys[i] : members[i].key;
      if (escapes && std::find(key.begin(), key.end(), '\\') != key.end()) {
        s.key_storage.clear();
        event::UnescapeJsonString(key, &s.key_storage);
        if (s.key_storage.find('\0') != std::string::npos) return Undecided();
        key = s.key_storage;
      }
      const int32_t k = Find(n, key);
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
          path_.push_back(s.keys[i]);
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
  std::vector<std::string_view>& path_;
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
