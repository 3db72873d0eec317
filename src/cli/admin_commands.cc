// `switchyard users …`, `switchyard tokens …` and `switchyard audit`: the admin API's accounts
// and audit log, from the command line (src/admin/credentials.h, src/admin/audit_log.h).
#include <termios.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include "admin/audit_log.h"
#include "admin/credentials.h"
#include "base/clock.h"
#include "base/data_dir.h"
#include "base/env.h"
#include "base/time_format.h"
#include "cli/commands.h"
#include "config/config.h"

namespace sy::cli {
namespace {

struct AdminFiles {
  std::unique_ptr<admin::CredentialStore> credentials;
  std::unique_ptr<admin::AuditLog> audit;
};

// Only data_dir matters here: the file is read (and must be valid) but nothing starts.
Result<AdminFiles> OpenAdminFiles(const std::string& config_path) {
  auto cfg = config::LoadConfigFile(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "invalid config:\n%s\n", cfg.status().message().c_str());
    return cfg.status();
  }
  admin::CredentialStoreOptions o;
  o.data_dir = DataDir(cfg->data_dir);
  auto store = admin::CredentialStore::Open(o);
  if (!store.ok()) {
    std::fprintf(stderr, "cannot open the admin accounts: %s\n", store.status().ToString().c_str());
    return store.status();
  }
  AdminFiles files;
  files.credentials = std::move(store).value();
  files.audit =
      std::make_unique<admin::AuditLog>(DataDir(cfg->data_dir), Env::Default(), SystemClock::Get());
  return files;
}

std::optional<admin::Role> RoleArg(const std::string& role) {
  auto r = admin::ParseRole(role);
  if (!r) std::fprintf(stderr, "--role: expected admin, editor or viewer\n");
  return r;
}

int Report(const Status& s, const char* what) {
  if (s.ok()) return 0;
  std::fprintf(stderr, "%s: %s\n", what, s.message().c_str());
  return s.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

// The change is made; a failed audit append is reported (exit 1) but does not undo it.
int RecordAudit(AdminFiles& f, const std::string& action, const std::string& target,
                const std::string& before, const std::string& after) {
  Status s = f.audit->Append({"cli", "", action, target, "", 0, before, after});
  if (s.ok()) return 0;
  std::fprintf(stderr, "the change was made but the audit log could not be written: %s\n",
               s.ToString().c_str());
  return 1;
}

std::string Account(const std::string& name, admin::Role role) {
  return boost::json::serialize(
      boost::json::object{{"name", name}, {"role", admin::RoleName(role)}});
}

// One line from stdin, without its line ending; echo off while reading from a terminal.
std::string ReadPassword() {
  const bool tty = ::isatty(STDIN_FILENO) != 0;
  termios old{};
  if (tty) {
    std::fprintf(stderr, "password: ");
    ::tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::fprintf(stderr, "\n");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace

int UsersAdd(const std::string& config_path, const std::string& name, const std::string& role) {
  auto r = RoleArg(role);
  if (!r) return 2;
  auto f = OpenAdminFiles(config_path);
  if (!f.ok()) return 2;
  std::string password = ReadPassword();
  if (int rc = Report(f->credentials->AddUser(name, *r, password), "users add"); rc != 0) return rc;
  std::printf("user %s added (role %s)\n", name.c_str(), role.c_str());
  return RecordAudit(*f, "user.add", name, "", Account(name, *r));
}

int UsersList(const std::string& config_path) {
  auto f = OpenAdminFiles(config_path);
  if (!f.ok()) return 2;
  auto users = f->credentials->Users();
  if (!users.ok()) return Report(users.status(), "users list");
  for (const auto& u : *users) {
    std::printf("%s\t%s\t%s\n", u.name.c_str(), std::string(admin::RoleName(u.role)).c_str(),
                FormatIso8601(u.created).c_str());
  }
  return 0;
}

int UsersRemove(const std::string& config_path, const std::string& name) {
  auto f = OpenAdminFiles(config_path);
  if (!f.ok()) return 2;
  auto users = f->credentials->Users();
  if (!users.ok()) return Report(users.status(), "users remove");
  std::string before;
  for (const auto& u : *users)
    if (u.name == name) before = Account(u.name, u.role);
  if (int rc = Report(f->credentials->RemoveUser(name), "users remove"); rc != 0) return rc;
  std::printf("user %s removed (their sessions end)\n", name.c_str());
  return RecordAudit(*f, "user.remove", name, before, "");
}

int TokensCreate(const std::string& config_path, const std::string& name, const std::string& role) {
  auto r = RoleArg(role);
  if (!r) return 2;
  auto f = OpenAdminFiles(config_path);
  if (!f.ok()) return 2;
  auto token = f->credentials->CreateToken(name, *r);
  if (!token.ok()) return Report(token.status(), "tokens create");
  std::printf("%s\n", token->c_str());
  std::fprintf(stderr, "token %s created (role %s); it is shown only now\n", name.c_str(),
               role.c_str());
  return RecordAudit(*f, "token.create", name, "", Account(name, *r));
}

int TokensList(const std::string& config_path) {
  auto f = OpenAdminFiles(config_path);
  if (!f.ok()) return 2;
  auto tokens = f->credentials->Tokens();
  if (!tokens.ok()) return Report(tokens.status(), "tokens list");
  for (const auto& t : *tokens) {
    std::printf("%s\t%s\t%s\n", t.name.c_str(), std::string(admin::RoleName(t.role)).c_str(),
                FormatIso8601(t.created).c_str());
  }
  return 0;
}

int TokensRevoke(const std::string& config_path, const std::string& name) {
  auto f = OpenAdminFiles(config_path);
  if (!f.ok()) return 2;
  auto tokens = f->credentials->Tokens();
  if (!tokens.ok()) return Report(tokens.status(), "tokens revoke");
  std::string before;
  for (const auto& t : *tokens)
    if (t.name == name) before = Account(t.name, t.role);
  if (int rc = Report(f->credentials->RevokeToken(name), "tokens revoke"); rc != 0) return rc;
  std::printf("token %s revoked\n", name.c_str());
  return RecordAudit(*f, "token.revoke", name, before, "");
}

int Audit(const std::string& config_path, int64_t limit) {
  if (limit < 1 || limit > 100'000) {
    std::fprintf(stderr, "--limit: expected 1 to 100000\n");
    return 2;
  }
  auto f = OpenAdminFiles(config_path);
  if (!f.ok()) return 2;
  auto page = f->audit->Page(static_cast<size_t>(limit), 0);
  if (!page.ok()) return Report(page.status(), "audit");
  auto entries = boost::json::parse(*page).at("entries").as_array();
  for (auto it = entries.rbegin(); it != entries.rend(); ++it)
    std::printf("%s\n", boost::json::serialize(*it).c_str());
  return 0;
}

}  // namespace sy::cli
