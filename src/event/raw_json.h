// Spans over JSON text that a validating parser (simdjson) has already accepted. These
// functions do not validate: on text that is not valid JSON their results are unspecified (but
// memory-safe). They let ingest copy the bytes of an event through untouched instead of
// rebuilding them from a DOM.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sy::event {

// One member of an object: the key's raw text between its quotes (escapes not decoded) and the
// value's raw text (a string value includes its quotes).
struct RawMember {
  std::string_view key;
  std::string_view value;
};

// Splits a JSON object's text into its members, in order. Returns false if `text` (ignoring
// surrounding whitespace) is not an object.
bool SplitObject(std::string_view text, std::vector<RawMember>* members);

// Splits a JSON array's text into its elements' raw texts. Returns false if not an array.
bool SplitArray(std::string_view text, std::vector<std::string_view>* elements);

// A batch body in one pass: the top-level members of `text`, and, when its "batch" member is an
// array, each element's span; elements that are objects also get their members split, stored
// in `item_members` (element i's members are item_members[first, first + count)).
struct RawItem {
  std::string_view text;
  uint32_t first_member = 0;
  uint32_t member_count = 0;
  bool is_object = false;
};
bool SplitBatchBody(std::string_view text, std::vector<RawMember>* top, bool* has_batch_array,
                    std::vector<RawItem>* items, std::vector<RawMember>* item_members);

// The same split, from the structural index of `text` that a validating parser built: the
// positions, in order, of every { } [ ] : , and of the first character of every scalar (what
// simdjson's stage 1 produces; `structurals` holds exactly n_structural_indexes entries). It
// walks positions instead of bytes: a value's end is found without scanning its strings. Gives
// the same result as SplitBatchBody on any text the parser accepted.
bool SplitBatchBodyIndexed(std::string_view text, std::span<const uint32_t> structurals,
                           std::vector<RawMember>* top, bool* has_batch_array,
                           std::vector<RawItem>* items, std::vector<RawMember>* item_members);

// The kind of a raw JSON value, from its first character.
enum class RawKind { kObject, kArray, kString, kNumber, kTrue, kFalse, kNull };
RawKind KindOf(std::string_view value);

// The content of a raw string value (between the quotes), if it has no escapes; false otherwise.
bool PlainString(std::string_view value, std::string_view* content);

// Appends the decoded content of a JSON string to `out`: `escaped` is the text between the
// quotes as sent (a RawMember's key, or a string value without its quotes). Escapes are decoded
// (\uXXXX surrogate pairs to UTF-8; a lone surrogate, which the validating parser refuses, to
// U+FFFD).
void UnescapeJsonString(std::string_view escaped, std::string* out);

// The decoded keys of `members`, in order: a key without escapes is a view of the text itself,
// an escaped key is decoded into `storage` (cleared first). The views stay valid until `storage`
// or the text changes.
void DecodedKeys(std::span<const RawMember> members, std::string* storage,
                 std::vector<std::string_view>* keys);

// Marks in `shadowed` (resized to keys.size()) each key that a later key equals: JSON objects
// with duplicate keys keep the last, as most parsers do. Returns true if any key is shadowed.
// Linear in the number and length of keys (a hash table for more than a few keys), so an
// object with tens of thousands of members costs microseconds, not seconds.
bool MarkShadowedKeys(std::span<const std::string_view> keys, std::vector<uint8_t>* shadowed);

}  // namespace sy::event
