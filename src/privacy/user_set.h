// The people a privacy request names: a set of userIds and a set of anonymousIds (issue 17,
// docs/privacy.md). It is the one shape every copy's deleter takes (warehouse, archive, dead
// letters, destinations) and the shape of the suppression set that ingest and delivery consult,
// so every copy agrees on which events are "the user's".
//
// Matching rule: an event belongs to the set when its userId is one of `user_ids` or its
// anonymousId is one of `anonymous_ids`. The two namespaces are separate (an anonymousId "42"
// does not match a request for userId "42"), comparison is exact and byte-wise (no case folding
// or trimming: ids are opaque), and an empty or absent id never matches. A caller that finds a
// non-string id in an event (a client sending `"userId": 42`) compares its JSON text ("42").
//
// Header-only and dependency-free, so the modules that hold copies may include it without
// depending on the rest of `privacy` (tests/layering/check_layering.py: `privacy_ids`).
//
// Thread safety: const methods may be called from any number of threads at once; building (Add*)
// needs exclusive access. Lookups are one hash probe per id and never allocate.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace sy::privacy {

class UserSet {
 public:
  UserSet() = default;
  UserSet(std::vector<std::string> user_ids, std::vector<std::string> anonymous_ids) {
    for (auto& id : user_ids)
      AddUserId(std::move(id));
    for (auto& id : anonymous_ids)
      AddAnonymousId(std::move(id));
  }

  // Adding an empty id does nothing (an empty id matches no event). Adding twice is harmless.
  void AddUserId(std::string id) {
    if (!id.empty()) user_ids_.insert(std::move(id));
  }
  void AddAnonymousId(std::string id) {
    if (!id.empty()) anonymous_ids_.insert(std::move(id));
  }
  // Every id of `other` is added to this set.
  void Merge(const UserSet& other) {
    user_ids_.insert(other.user_ids_.begin(), other.user_ids_.end());
    anonymous_ids_.insert(other.anonymous_ids_.begin(), other.anonymous_ids_.end());
  }

  // True when the event with these ids belongs to the set (see the matching rule above). Either
  // id may be empty (absent in the event). No allocation: heterogeneous lookup.
  bool Contains(std::string_view user_id, std::string_view anonymous_id) const {
    return ContainsUserId(user_id) || ContainsAnonymousId(anonymous_id);
  }
  bool ContainsUserId(std::string_view user_id) const {
    return !user_id.empty() && !user_ids_.empty() && user_ids_.find(user_id) != user_ids_.end();
  }
  bool ContainsAnonymousId(std::string_view anonymous_id) const {
    return !anonymous_id.empty() && !anonymous_ids_.empty() &&
           anonymous_ids_.find(anonymous_id) != anonymous_ids_.end();
  }

  bool empty() const { return user_ids_.empty() && anonymous_ids_.empty(); }
  size_t size() const { return user_ids_.size() + anonymous_ids_.size(); }

  // The ids in byte order (deterministic: SQL parameter lists, request bodies, reports).
  std::vector<std::string> SortedUserIds() const { return Sorted(user_ids_); }
  std::vector<std::string> SortedAnonymousIds() const { return Sorted(anonymous_ids_); }

  bool operator==(const UserSet& other) const {
    return user_ids_ == other.user_ids_ && anonymous_ids_ == other.anonymous_ids_;
  }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using IdSet = std::unordered_set<std::string, Hash, std::equal_to<>>;

  static std::vector<std::string> Sorted(const IdSet& ids) {
    std::vector<std::string> out(ids.begin(), ids.end());
    std::sort(out.begin(), out.end());
    return out;
  }

  IdSet user_ids_;
  IdSet anonymous_ids_;
};

}  // namespace sy::privacy
