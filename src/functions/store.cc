#include "functions/store.h"

#include <boost/json.hpp>

namespace sy::functions {

Result<std::shared_ptr<KeyValueStore>> KeyValueStore::Open(Env* env, std::string path, Clock* clock,
                                                           StoreLimits limits, bool persist) {
  std::shared_ptr<KeyValueStore> s(new KeyValueStore(env, std::move(path), clock, limits));
  s->persist_ = persist;
  if (s->path_.empty() || !env->FileExists(s->path_)) return s;
  SY_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(env, s->path_));
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(text, ec);
  if (ec || !doc.is_object()) return DataLoss(s->path_ + ": not a store file");
  const int64_t now = clock->Now().value();
  for (const auto& [key, v] : doc.as_object()) {
    const auto* o = v.if_object();
    const auto* value = o ? o->if_contains("v") : nullptr;
    const auto* expires = o ? o->if_contains("e") : nullptr;
    if (!value || !value->is_string()) return DataLoss(s->path_ + ": bad entry");
    Entry e;
    e.value = std::string(value->as_string());
    e.expires_ms = expires && expires->is_int64() ? expires->as_int64() : 0;
    if (e.expires_ms != 0 && e.expires_ms <= now) continue;
    s->bytes_ += key.size() + e.value.size();
    s->entries_.emplace(std::string(key), std::move(e));
  }
  return s;
}

void KeyValueStore::EraseLocked(std::map<std::string, Entry>::iterator it) {
  bytes_ -= it->first.size() + it->second.value.size();
  entries_.erase(it);
  dirty_ = true;
}

std::optional<std::string> KeyValueStore::Get(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  if (it->second.expires_ms != 0 && it->second.expires_ms <= clock_->Now().value()) {
    EraseLocked(it);
    return std::nullopt;
  }
  return it->second.value;
}

Status KeyValueStore::Set(const std::string& key, std::string value, int64_t ttl_ms) {
  if (value.size() > limits_.max_value_bytes) {
    return ResourceExhausted("value of " + std::to_string(value.size()) + " bytes (at most " +
                             std::to_string(limits_.max_value_bytes) + ")");
  }
  std::lock_guard lock(mu_);
  const int64_t now = clock_->Now().value();
  auto it = entries_.find(key);
  size_t bytes = bytes_ + key.size() + value.size();
  if (it != entries_.end()) bytes -= it->first.size() + it->second.value.size();
  if (bytes > limits_.max_bytes || (it == entries_.end() && entries_.size() >= limits_.max_keys)) {
    // Expired keys make room first.
    for (auto e = entries_.begin(); e != entries_.end();) {
      auto next = std::next(e);
      if (e->second.expires_ms != 0 && e->second.expires_ms <= now && e != it) EraseLocked(e);
      e = next;
    }
    bytes = bytes_ + key.size() + value.size();
    if (it != entries_.end()) bytes -= it->first.size() + it->second.value.size();
    if (bytes > limits_.max_bytes ||
        (it == entries_.end() && entries_.size() >= limits_.max_keys)) {
      return ResourceExhausted("the store is full (" + std::to_string(limits_.max_keys) +
                               " keys, " + std::to_string(limits_.max_bytes) + " bytes at most)");
    }
  }
  if (it != entries_.end()) EraseLocked(it);
  bytes_ += key.size() + value.size();
  entries_[key] = Entry{std::move(value), ttl_ms > 0 ? now + ttl_ms : 0};
  dirty_ = true;
  return Status::Ok();
}

void KeyValueStore::Delete(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) EraseLocked(it);
}

size_t KeyValueStore::size() {
  std::lock_guard lock(mu_);
  return entries_.size();
}

Status KeyValueStore::Flush() {
  std::lock_guard flush_lock(flush_mu_);
  std::string text;
  {
    std::lock_guard lock(mu_);
    if (!dirty_ || path_.empty() || !persist_) return Status::Ok();
    boost::json::object doc;
    for (const auto& [key, e] : entries_) {
      boost::json::object o;
      o["v"] = e.value;
      if (e.expires_ms) o["e"] = e.expires_ms;
      doc[key] = std::move(o);
    }
    text = boost::json::serialize(doc);
    dirty_ = false;
  }
  Status s = WriteFileAtomically(env_, path_, text);
  if (!s.ok()) {
    std::lock_guard lock(mu_);
    dirty_ = true;
  }
  return s;
}

}  // namespace sy::functions
