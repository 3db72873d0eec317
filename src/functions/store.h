// ctx.store: a small key-value store per function (Jitsu's), with a TTL per key, bounded in
// keys and bytes, kept in memory and written to data_dir/functions/<name>.store.json through the
// Env (atomically, durably) by Flush() — the destination stream flushes after each batch it ran
// functions on, so an acknowledged write survives a restart once its batch was handled.
//
// Thread-safe: the streams of several destinations may run the same function.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "base/clock.h"
#include "base/env.h"
#include "base/status.h"

namespace sy::functions {

struct StoreLimits {
  size_t max_keys = 10'000;
  size_t max_bytes = 8 << 20;  // keys + values
  size_t max_value_bytes = 64 << 10;
};

class KeyValueStore {
 public:
  // `path` empty: memory only (`functions test`). Loads what is there (expired keys dropped).
  // `persist` false: loads `path` but never writes it (a replay beside a running server).
  static Result<std::shared_ptr<KeyValueStore>> Open(Env* env, std::string path, Clock* clock,
                                                     StoreLimits limits = {}, bool persist = true);

  // Values are JSON text. ttl_ms 0: no expiry.
  std::optional<std::string> Get(const std::string& key);
  // Fails (the function's call throws) past the limits; a key already there may be replaced.
  Status Set(const std::string& key, std::string value, int64_t ttl_ms);
  void Delete(const std::string& key);
  // Writes the store if it changed since the last Flush.
  Status Flush();
  size_t size();

 private:
  KeyValueStore(Env* env, std::string path, Clock* clock, StoreLimits limits)
      : env_(env), path_(std::move(path)), clock_(clock), limits_(limits) {}
  struct Entry {
    std::string value;
    int64_t expires_ms = 0;  // wall clock; 0 = never
  };
  void EraseLocked(std::map<std::string, Entry>::iterator it);

  Env* env_;
  std::string path_;
  Clock* clock_;
  StoreLimits limits_;
  std::mutex flush_mu_;  // one Flush at a time, so an older snapshot never lands last
  std::mutex mu_;
  std::map<std::string, Entry> entries_;
  size_t bytes_ = 0;
  bool dirty_ = false;
  bool persist_ = true;
};

}  // namespace sy::functions
