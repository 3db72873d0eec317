// Users and API tokens of the admin API, kept durably in one file under data_dir
// (DataDir::AdminCredentials, written whole through base/Env's WriteFileAtomically), and the
// secrets' primitives: Argon2id password hashes (libsodium's crypto_pwhash_str), random tokens
// and session ids, SHA-256.
//
// Who calls it: the admin API (src/admin/admin_api.h) on its worker thread, and the CLI
// (`switchyard users …`, `switchyard tokens …`), possibly while a server runs on the same
// data_dir. Every change takes an flock on DataDir::AdminLock, re-reads the file, changes it and
// rewrites it, so a CLI change and an API change never lose each other. Readers re-read the file
// when it changed on disk (checked with stat on every call: the rename of each write gives the
// file a new inode), so a user removed with the CLI cannot log in nor use a session a moment
// later, without a restart or a signal.
//
// Secrets: only hashes are stored. A password is kept as an Argon2id string (salt and cost
// inside); a token (`sy_` + 64 hex digits, 256 random bits) as its SHA-256, compared in constant
// time. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/data_dir.h"
#include "base/env.h"
#include "base/status.h"

namespace sy::admin {

// viewer: reads everything but users, tokens and the audit log; editor: also changes sources
// and destinations; admin: also manages users and tokens and reads the audit log.
enum class Role { kViewer, kEditor, kAdmin };
std::string_view RoleName(Role role);
std::optional<Role> ParseRole(std::string_view name);
// Permission to see event payloads in the live view (issue 13): admin and editor.
bool CanViewPayloads(Role role);

// libsodium must be initialised once per process before anything below; idempotent, thread-safe.
Status InitCrypto();
// `n` random bytes from the OS (libsodium's randombytes), as lowercase hex.
std::string RandomHex(size_t n);
// SHA-256 of `data` as lowercase hex.
std::string Sha256Hex(std::string_view data);

// The Argon2id cost of new password hashes. Verification reads the cost from the stored hash,
// so a change applies to passwords set after it. The defaults are libsodium's "interactive"
// limits (2 passes over 64 MiB, ~0.1-0.5 s on the reference 2-core machine); tests use the
// minimum so they stay fast.
struct PasswordCost {
  uint64_t ops = 2;
  size_t memory_bytes = 64ULL << 20;
  static PasswordCost Minimum();
};
Result<std::string> HashPassword(std::string_view password, const PasswordCost& cost);
bool VerifyPassword(std::string_view password, const std::string& hash);

// Names of users and tokens: 1-64 of letters, digits, '_', '-', '.', '@'.
bool ValidAccountName(std::string_view name);
// Passwords: 8 to 1024 bytes (the upper bound keeps hashing cheap to refuse).
inline constexpr size_t kMinPasswordBytes = 8;
inline constexpr size_t kMaxPasswordBytes = 1024;

struct User {
  std::string name;
  Role role = Role::kViewer;
  std::string password_hash;  // Argon2id string
  // Changes whenever the user is created or their password changes: a session remembers the
  // epoch it was opened under, so removing a user or changing a password ends their sessions.
  std::string epoch;
  TimestampMs created{0};
};

struct ApiToken {
  std::string name;
  Role role = Role::kViewer;
  std::string sha256;  // of the token text
  TimestampMs created{0};
};

struct CredentialStoreOptions {
  DataDir data_dir{""};  // its Admin() directory is created 0700 when missing
  Env* env = nullptr;
  Clock* clock = nullptr;
  PasswordCost cost;
};

class CredentialStore {
 public:
  static Result<std::unique_ptr<CredentialStore>> Open(CredentialStoreOptions options);

  // Mutations: durable (the file is rewritten and synced) before they return OK.
  // kInvalidArgument (bad name, role or password), kAlreadyExists, kNotFound, and
  // kFailedPrecondition for removing or demoting the last admin user.
  Status AddUser(std::string_view name, Role role, std::string_view password);
  Status RemoveUser(std::string_view name);
  // Changes the role and/or the password (a new password ends the user's sessions).
  Status UpdateUser(std::string_view name, std::optional<Role> role,
                    std::optional<std::string_view> password);
  // Returns the token text, to be shown once; only its hash is stored.
  Result<std::string> CreateToken(std::string_view name, Role role);
  Status RevokeToken(std::string_view name);

  Result<std::vector<User>> Users();
  Result<std::vector<ApiToken>> Tokens();

  // The user when `password` is theirs; kUnauthenticated otherwise (an unknown user costs the
  // same hash verification as a known one, so timing does not tell which names exist).
  Result<User> CheckPassword(std::string_view name, std::string_view password);
  // The user named, if it still exists with the same epoch (sessions ask on every request).
  std::optional<User> FindUser(std::string_view name, std::string_view epoch);
  // The token whose text is `presented`, compared as digests in constant time.
  std::optional<ApiToken> FindToken(std::string_view presented);

 private:
  struct Snapshot {
    std::vector<User> users;
    std::vector<ApiToken> tokens;
  };
  explicit CredentialStore(CredentialStoreOptions options);
  // Re-reads the file when its inode, size or mtime changed since the last read.
  Status Refresh();
  Result<Snapshot> ReadFile();
  Status WriteFile(const Snapshot& s);
  // Runs `change` on a fresh copy of the file under the cross-process lock, then writes it.
  template <typename F>
  Status Mutate(F change);

  const CredentialStoreOptions options_;
  const std::string path_;
  const std::string lock_path_;
  std::once_flag dummy_once_;
  std::string dummy_hash_;  // verified against when the user is unknown; set once
  std::mutex mu_;
  Snapshot cache_;       // guarded by mu_
  std::string file_id_;  // inode/size/mtime of the file cache_ was read from; guarded by mu_
};

}  // namespace sy::admin
