// KeyTable: an open-addressing hash table from 128-bit keys to a small value, for the dedupe
// index. Keys are already uniform hashes, so slots are taken from the key's low bits with
// linear probing; erasure shifts later entries back (no tombstones). 32 bytes per slot at a load
// of at most 1/2 — about a third of std::unordered_map's footprint, and no allocation per key.
//
// Not thread-safe: the owner serializes access.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>
#include <vector>

#include "base/hash.h"

namespace sy::ingest {

template <typename Value>
class KeyTable {
 public:
  struct Slot {
    Hash128 key;  // {0,0} marks an empty slot; a real {0,0} key is stored as {0,1}
    Value value;
  };

  KeyTable() : slots_(16) { PublishLayout(); }
  KeyTable(const KeyTable&) = delete;
  KeyTable& operator=(const KeyTable&) = delete;

  // Asks the CPU to start fetching `key`'s home slot. Callable without the owner's lock: it
  // reads only the atomics below, and prefetching a stale address (the table grew meanwhile) is
  // harmless. Callers prefetch a request's keys before claiming them one by one, so the cache
  // misses of a large table overlap instead of being paid in turn.
  void Prefetch(const Hash128& key) const {
    const char* base = prefetch_base_.load(std::memory_order_relaxed);
    const size_t mask = prefetch_mask_.load(std::memory_order_relaxed);
    __builtin_prefetch(base + (static_cast<size_t>(Normalize(key).lo) & mask) * sizeof(Slot));
  }

  size_t size() const { return size_; }
  // Memory held by the slots (the table grows by doubling and never shrinks).
  size_t capacity_bytes() const { return slots_.size() * sizeof(Slot); }

  Value* Find(Hash128 key) {
    key = Normalize(key);
    for (size_t i = Home(key);; i = Next(i)) {
      Slot& s = slots_[i];
      if (IsEmpty(s)) return nullptr;
      if (s.key == key) return &s.value;
    }
  }

  // Inserts `value` under `key` unless present. Returns the stored value and whether it is new.
  std::pair<Value*, bool> TryEmplace(Hash128 key, const Value& value) {
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    key = Normalize(key);
    for (size_t i = Home(key);; i = Next(i)) {
      Slot& s = slots_[i];
      if (IsEmpty(s)) {
        s.key = key;
        s.value = value;
        ++size_;
        return {&s.value, true};
      }
      if (s.key == key) return {&s.value, false};
    }
  }

  bool Erase(Hash128 key) {
    key = Normalize(key);
    size_t i = Home(key);
    for (;; i = Next(i)) {
      if (IsEmpty(slots_[i])) return false;
      if (slots_[i].key == key) break;
    }
    // Backward-shift deletion: move later members of the probe run into the hole.
    size_t hole = i;
    for (size_t j = Next(i);; j = Next(j)) {
      Slot& s = slots_[j];
      if (IsEmpty(s)) break;
      size_t home = Home(s.key);
      // `s` may move to the hole if its home is not cyclically in (hole, j].
      bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
      if (!stays) {
        slots_[hole] = s;
        hole = j;
      }
    }
    slots_[hole].key = Hash128{};
    --size_;
    return true;
  }

 private:
  static Hash128 Normalize(Hash128 k) { return (k.lo == 0 && k.hi == 0) ? Hash128{0, 1} : k; }
  static bool IsEmpty(const Slot& s) { return s.key.lo == 0 && s.key.hi == 0; }
  size_t Home(const Hash128& k) const { return static_cast<size_t>(k.lo) & (slots_.size() - 1); }
  size_t Next(size_t i) const { return (i + 1) & (slots_.size() - 1); }

  void Grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    size_ = 0;
    for (const Slot& s : old) {
      if (IsEmpty(s)) continue;
      for (size_t i = Home(s.key);; i = Next(i)) {
        if (IsEmpty(slots_[i])) {
          slots_[i] = s;
          ++size_;
          break;
        }
      }
    }
    PublishLayout();
  }

  void PublishLayout() {
    prefetch_base_.store(reinterpret_cast<const char*>(slots_.data()), std::memory_order_relaxed);
    prefetch_mask_.store(slots_.size() - 1, std::memory_order_relaxed);
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
  std::atomic<const char*> prefetch_base_{nullptr};
  std::atomic<size_t> prefetch_mask_{0};
};

}  // namespace sy::ingest
