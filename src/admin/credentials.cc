#include "admin/credentials.h"

#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <optional>

#include "base/constant_time.h"
#include "base/data_dir.h"
#include "base/file_lock.h"
#include "base/time_format.h"

namespace sy::admin {

namespace json = boost::json;

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kEditor:
      return "editor";
    case Role::kAdmin:
      return "admin";
  }
  return "viewer";
}

std::optional<Role> ParseRole(std::string_view name) {
  if (name == "viewer") return Role::kViewer;
  if (name == "editor") return Role::kEditor;
  if (name == "admin") return Role::kAdmin;
  return std::nullopt;
}

bool CanViewPayloads(Role role) {
  return role == Role::kAdmin || role == Role::kEditor;
}

Status InitCrypto() {
  // sodium_init is thread-safe and idempotent: 0 first time, 1 afterwards, -1 on failure.
  if (sodium_init() < 0) return Internal("libsodium failed to initialise");
  return Status::Ok();
}

std::string RandomHex(size_t n) {
  std::string bytes(n, '\0');
  randombytes_buf(bytes.data(), n);
  std::string hex(2 * n + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(bytes.data()), n);
  sodium_memzero(bytes.data(), n);
  hex.resize(2 * n);
  return hex;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  char hex[2 * crypto_hash_sha256_BYTES + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return std::string(hex, 2 * crypto_hash_sha256_BYTES);
}

PasswordCost PasswordCost::Minimum() {
  return {crypto_pwhash_argon2id_OPSLIMIT_MIN, crypto_pwhash_argon2id_MEMLIMIT_MIN};
}

Result<std::string> HashPassword(std::string_view password, const PasswordCost& cost) {
  char out[crypto_pwhash_argon2id_STRBYTES];
  if (crypto_pwhash_argon2id_str(out, password.data(), password.size(), cost.ops,
                                 cost.memory_bytes) != 0) {
    return ResourceExhausted("cannot hash the password (out of memory for Argon2id)");
  }
  return std::string(out);
}

bool VerifyPassword(std::string_view password, const std::string& hash) {
  // The _str_verify of the argon2id API refuses hashes of other algorithms.
  return crypto_pwhash_argon2id_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

bool ValidAccountName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == '@';
  });
}

namespace {

Status CheckPasswordShape(std::string_view password) {
  if (password.size() < kMinPasswordBytes || password.size() > kMaxPasswordBytes) {
    return InvalidArgument("password: use " + std::to_string(kMinPasswordBytes) + " to " +
                           std::to_string(kMaxPasswordBytes) + " bytes");
  }
  return Status::Ok();
}

std::string FileIdentity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "absent";
  return std::to_string(st.st_ino) + "/" + std::to_string(st.st_size) + "/" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

const json::string* GetString(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? &it->value().as_string() : nullptr;
}

}  // namespace

CredentialStore::CredentialStore(CredentialStoreOptions options)
    : options_(std::move(options)),
      path_(options_.data_dir.AdminCredentials()),
      lock_path_(options_.data_dir.AdminLock()) {}

Result<std::unique_ptr<CredentialStore>> CredentialStore::Open(CredentialStoreOptions options) {
  SY_RETURN_IF_ERROR(InitCrypto());
  if (options.env == nullptr) options.env = Env::Default();
  if (options.clock == nullptr) options.clock = SystemClock::Get();
  if (!options.env->FileExists(options.data_dir.Admin())) {
    SY_RETURN_IF_ERROR(options.env->CreateDirIfMissing(options.data_dir.Admin()));
    SY_RETURN_IF_ERROR(options.env->SyncDir(options.data_dir.root()));
  }
  std::unique_ptr<CredentialStore> store(new CredentialStore(std::move(options)));
  std::lock_guard lock(store->mu_);
  SY_RETURN_IF_ERROR(store->Refresh());
  return store;
}

Result<CredentialStore::Snapshot> CredentialStore::ReadFile() {
  Snapshot s;
  if (!options_.env->FileExists(path_)) return s;
  SY_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(options_.env, path_));
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return DataLoss(path_ + ": not a JSON object");
  const json::object& root = v.as_object();
  auto read_role = [&](const json::object& o) -> std::optional<Role> {
    const json::string* r = GetString(o, "role");
    return r ? ParseRole(*r) : std::nullopt;
  };
  auto read_created = [](const json::object& o) {
    auto it = o.find("created_ms");
    return TimestampMs(it != o.end() && it->value().is_int64() ? it->value().as_int64() : 0);
  };
  if (auto it = root.find("users"); it != root.end() && it->value().is_array()) {
    for (const json::value& e : it->value().as_array()) {
      if (!e.is_object()) return DataLoss(path_ + ": a user entry is not an object");
      const json::object& o = e.as_object();
      const json::string *name = GetString(o, "name"), *hash = GetString(o, "password"),
                         *epoch = GetString(o, "epoch");
      std::optional<Role> role = read_role(o);
      if (!name || !hash || !epoch || !role) return DataLoss(path_ + ": a user entry is damaged");
      s.users.push_back(
          {std::string(*name), *role, std::string(*hash), std::string(*epoch), read_created(o)});
    }
  }
  if (auto it = root.find("tokens"); it != root.end() && it->value().is_array()) {
    for (const json::value& e : it->value().as_array()) {
      if (!e.is_object()) return DataLoss(path_ + ": a token entry is not an object");
      const json::object& o = e.as_object();
      const json::string *name = GetString(o, "name"), *sha = GetString(o, "sha256");
      std::optional<Role> role = read_role(o);
      if (!name || !sha || !role) return DataLoss(path_ + ": a token entry is damaged");
      s.tokens.push_back({std::string(*name), *role, std::string(*sha), read_created(o)});
    }
  }
  return s;
}

Status CredentialStore::WriteFile(const Snapshot& s) {
  json::object root;
  root["version"] = 1;
  json::array users, tokens;
  for (const User& u : s.users) {
    users.push_back(json::object{{"name", u.name},
                                 {"role", RoleName(u.role)},
                                 {"password", u.password_hash},
                                 {"epoch", u.epoch},
                                 {"created_ms", u.created.value()},
                                 {"created", FormatIso8601(u.created)}});
  }
  for (const ApiToken& t : s.tokens) {
    tokens.push_back(json::object{{"name", t.name},
                                  {"role", RoleName(t.role)},
                                  {"sha256", t.sha256},
                                  {"created_ms", t.created.value()},
                                  {"created", FormatIso8601(t.created)}});
  }
  root["users"] = std::move(users);
  root["tokens"] = std::move(tokens);
  return WriteFileAtomically(options_.env, path_, json::serialize(root) + "\n");
}

Status CredentialStore::Refresh() {
  std::string id = FileIdentity(path_);
  if (id == file_id_) return Status::Ok();
  SY_ASSIGN_OR_RETURN(Snapshot s, ReadFile());
  cache_ = std::move(s);
  file_id_ = std::move(id);
  return Status::Ok();
}

template <typename F>
Status CredentialStore::Mutate(F change) {
  SY_ASSIGN_OR_RETURN(FileLock file_lock, FileLock::Take(lock_path_));
  SY_ASSIGN_OR_RETURN(Snapshot s, ReadFile());
  SY_RETURN_IF_ERROR(change(s));
  SY_RETURN_IF_ERROR(WriteFile(s));
  std::lock_guard lock(mu_);
  cache_ = std::move(s);
  file_id_ = FileIdentity(path_);
  return Status::Ok();
}

namespace {

size_t AdminCount(const std::vector<User>& users) {
  return static_cast<size_t>(std::count_if(users.begin(), users.end(),
                                           [](const User& u) { return u.role == Role::kAdmin; }));
}

}  // namespace

Status CredentialStore::AddUser(std::string_view name, Role role, std::string_view password) {
  if (!ValidAccountName(name))
    return InvalidArgument("name: use 1-64 letters, digits, '_', '-', '.' or '@'");
  SY_RETURN_IF_ERROR(CheckPasswordShape(password));
  // Hashing takes a while and much memory: done before the lock, not under it.
  SY_ASSIGN_OR_RETURN(std::string hash, HashPassword(password, options_.cost));
  return Mutate([&](Snapshot& s) -> Status {
    for (const User& u : s.users)
      if (u.name == name) return {StatusCode::kAlreadyExists, "user '" + u.name + "' exists"};
    s.users.push_back({std::string(name), role, hash, RandomHex(16), options_.clock->Now()});
    return Status::Ok();
  });
}

Status CredentialStore::RemoveUser(std::string_view name) {
  return Mutate([&](Snapshot& s) -> Status {
    auto it =
        std::find_if(s.users.begin(), s.users.end(), [&](const User& u) { return u.name == name; });
    if (it == s.users.end()) return NotFound("no user '" + std::string(name) + "'");
    if (it->role == Role::kAdmin && AdminCount(s.users) == 1)
      return FailedPrecondition("'" + it->name + "' is the last admin user");
    s.users.erase(it);
    return Status::Ok();
  });
}

Status CredentialStore::UpdateUser(std::string_view name, std::optional<Role> role,
                                   std::optional<std::string_view> password) {
  std::optional<std::string> hash;
  if (password) {
    SY_RETURN_IF_ERROR(CheckPasswordShape(*password));
    SY_ASSIGN_OR_RETURN(hash, HashPassword(*password, options_.cost));
  }
  return Mutate([&](Snapshot& s) -> Status {
    auto it =
        std::find_if(s.users.begin(), s.users.end(), [&](const User& u) { return u.name == name; });
    if (it == s.users.end()) return NotFound("no user '" + std::string(name) + "'");
    if (role && *role != Role::kAdmin && it->role == Role::kAdmin && AdminCount(s.users) == 1)
      return FailedPrecondition("'" + it->name + "' is the last admin user");
    if (role) it->role = *role;
    if (hash) {
      it->password_hash = *hash;
      it->epoch = RandomHex(16);  // ends the sessions opened with the old password
    }
    return Status::Ok();
  });
}

Result<std::string> CredentialStore::CreateToken(std::string_view name, Role role) {
  if (!ValidAccountName(name))
    return InvalidArgument("name: use 1-64 letters, digits, '_', '-', '.' or '@'");
  std::string token = "sy_" + RandomHex(32);
  SY_RETURN_IF_ERROR(Mutate([&](Snapshot& s) -> Status {
    for (const ApiToken& t : s.tokens)
      if (t.name == name) return {StatusCode::kAlreadyExists, "token '" + t.name + "' exists"};
    s.tokens.push_back({std::string(name), role, Sha256Hex(token), options_.clock->Now()});
    return Status::Ok();
  }));
  return token;
}

Status CredentialStore::RevokeToken(std::string_view name) {
  return Mutate([&](Snapshot& s) -> Status {
    auto it = std::find_if(s.tokens.begin(), s.tokens.end(),
                           [&](const ApiToken& t) { return t.name == name; });
    if (it == s.tokens.end()) return NotFound("no token '" + std::string(name) + "'");
    s.tokens.erase(it);
    return Status::Ok();
  });
}

Result<std::vector<User>> CredentialStore::Users() {
  std::lock_guard lock(mu_);
  SY_RETURN_IF_ERROR(Refresh());
  return cache_.users;
}

Result<std::vector<ApiToken>> CredentialStore::Tokens() {
  std::lock_guard lock(mu_);
  SY_RETURN_IF_ERROR(Refresh());
  return cache_.tokens;
}

Result<User> CredentialStore::CheckPassword(std::string_view name, std::string_view password) {
  std::optional<User> user;
  {
    std::lock_guard lock(mu_);
    SY_RETURN_IF_ERROR(Refresh());
    for (const User& u : cache_.users)
      if (u.name == name) user = u;
  }
  // Made on the first login, not at Open: the CLI never needs it.
  std::call_once(dummy_once_, [&] {
    auto h = HashPassword("not a password of anyone", options_.cost);
    if (h.ok()) dummy_hash_ = *h;
  });
  // Verified outside the lock: Argon2id takes a while and must not hold up other requests.
  const bool ok = VerifyPassword(password, user ? user->password_hash : dummy_hash_);
  if (!user || !ok) return Status(StatusCode::kUnauthenticated, "wrong user name or password");
  return *user;
}

std::optional<User> CredentialStore::FindUser(std::string_view name, std::string_view epoch) {
  std::lock_guard lock(mu_);
  if (!Refresh().ok()) return std::nullopt;  // an unreadable file authenticates nobody
  for (const User& u : cache_.users)
    if (u.name == name && ConstantTimeEquals(epoch, u.epoch)) return u;
  return std::nullopt;
}

std::optional<ApiToken> CredentialStore::FindToken(std::string_view presented) {
  const std::string digest = Sha256Hex(presented);
  std::lock_guard lock(mu_);
  if (!Refresh().ok()) return std::nullopt;
  std::optional<ApiToken> found;
  // Every stored digest is compared, in constant time each: neither which token nor how much
  // of one matched shows in the time taken.
  for (const ApiToken& t : cache_.tokens)
    if (ConstantTimeEquals(digest, t.sha256)) found = t;
  return found;
}

}  // namespace sy::admin
