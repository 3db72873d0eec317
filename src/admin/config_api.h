// src/admin/config_api.h
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace sy::admin {

// Who makes a change (for the audit log and error messages).
struct Actor {
  std::string name;  // user name or "token:<name>"
  std::string role;  // admin | editor | viewer
};

// The answer to one admin API call about configuration. Bodies are JSON (ExportYaml: YAML).
// Errors: {"error":{"code":"<snake_case>","message":"<human text>","field":"<key path or
// omitted>"}} with 400 (bad JSON, unknown key, invalid setting — `field` names the key, e.g.
// "settings.api_key"), 404 (no such source/destination), 409 (name exists / still referenced),
// 412 (If-Match version does not match the current one).
struct ApiResult {
  int http_status = 200;
  std::string body;  // response body
  std::string content_type = "application/json";
  std::string etag;          // current version of the object/config ("" if none)
  std::string audit_before;  // for mutations that changed something: JSON of the object before
  std::string audit_after;   //   and after ("" for create-before / delete-after); secrets masked
};

// Implemented by the application (src/app/config_controller.*, engineer `overlay`); the admin
// HTTP routes (engineer `admin`) call it. Thread-safe: calls may come from any admin I/O thread;
// mutations are serialised, durable (written to data_dir through base/Env) and applied to the
// running server before the call returns. Secrets (settings the table marks secret, write keys)
// are never returned: shown as {"set": true|false}; write keys are returned once by create and
// rotate only.
class ConfigApi {
 public:
  virtual ~ConfigApi() = default;
  virtual ApiResult ListSources() = 0;
  virtual ApiResult GetSource(std::string_view name) = 0;
  virtual ApiResult CreateSource(const Actor& actor, std::string_view body) = 0;
  virtual ApiResult PatchSource(const Actor& actor, std::string_view name, std::string_view body,
                                std::string_view if_match) = 0;
  virtual ApiResult DeleteSource(const Actor& actor, std::string_view name) = 0;
  virtual ApiResult RotateSourceKey(const Actor& actor, std::string_view name) = 0;
  virtual ApiResult ListDestinations() = 0;
  virtual ApiResult GetDestination(std::string_view name) = 0;
  virtual ApiResult CreateDestination(const Actor& actor, std::string_view body) = 0;
  virtual ApiResult PatchDestination(const Actor& actor, std::string_view name,
                                     std::string_view body, std::string_view if_match) = 0;
  virtual ApiResult DeleteDestination(const Actor& actor, std::string_view name) = 0;
  virtual ApiResult
  ListDestinationTypes() = 0;          // the catalogue: every type with its settings table
  virtual ApiResult ExportYaml() = 0;  // effective config (file + overlay) as YAML

  // Added by `overlay`: RotateSourceKey with the old key's grace period chosen by the caller
  // (milliseconds; 0 = the old key stops at once). RotateSourceKey keeps it for the default
  // period (24 h, docs/configuration.md). Not pure, so implementations without it still build.
  virtual ApiResult RotateSourceKeyWithGrace(const Actor& actor, std::string_view name,
                                             int64_t grace_ms) {
    (void)grace_ms;
    return RotateSourceKey(actor, name);
  }

  // Added by `functions2`: user functions (docs/functions.md, docs/admin-api.md). PutFunction
  // compiles first (400 `compile_error` with file, line and message; nothing stored) and then
  // stores and applies like the other changes; TestFunction runs the stored function (or the
  // `source` given in the body) on the body's `event`. Not pure, so other implementations build.
  virtual ApiResult ListFunctions() { return Unavailable(); }
  virtual ApiResult GetFunction(std::string_view name) {
    (void)name;
    return Unavailable();
  }
  virtual ApiResult PutFunction(const Actor& actor, std::string_view name, std::string_view body,
                                std::string_view if_match) {
    (void)actor, (void)name, (void)body, (void)if_match;
    return Unavailable();
  }
  // Drops what the API saved for the function: the file's version applies again, or, for one
  // made through the API, the function is gone (409 while a source or destination lists it).
  virtual ApiResult DeleteFunction(const Actor& actor, std::string_view name) {
    (void)actor, (void)name;
    return Unavailable();
  }
  virtual ApiResult TestFunction(const Actor& actor, std::string_view name, std::string_view body) {
    (void)actor, (void)name, (void)body;
    return Unavailable();
  }

 private:
  static ApiResult Unavailable() {
    ApiResult r;
    r.http_status = 501;
    r.body = R"({"error":{"code":"not_implemented","message":"functions are not available here"}})";
    return r;
  }
};

}  // namespace sy::admin
