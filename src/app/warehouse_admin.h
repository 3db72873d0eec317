// The admin door of a running server for `switchyard warehouse sync`: POST
// /admin/warehouse/sync[?destination=NAME] on the server's own listener, answered only to a
// loopback peer that presents the token the server wrote at start into <data_dir>/ADMIN_TOKEN
// (mode 0600: whoever may read the data_dir may ask). The CLI reads the token and the listen
// address from the same config file.
#pragma once

#include <string>

#include "admin/warehouse_api.h"
#include "base/status.h"

namespace sy::app {

class App;

// The admin API's warehouse routes (admin/warehouse_api.h): POST /api/v1/destinations/{name}/sync
// is App's SyncWarehouses for one destination, its report wrapped as
// {"destination","loaded","report"}; GET /api/v1/warehouse is App's WarehouseStatus.
class WarehouseSyncApi final : public admin::WarehouseApi {
 public:
  explicit WarehouseSyncApi(App* app) : app_(app) {}
  admin::ApiResult SyncWarehouse(const admin::Actor& actor, std::string_view destination) override;
  // App::WarehouseStatus.
  admin::ApiResult Warehouses(std::string_view destination) override;

 private:
  App* const app_;
};

inline constexpr const char* kAdminTokenHeader = "X-Switchyard-Admin-Token";
inline constexpr const char* kWarehouseSyncPath = "/admin/warehouse/sync";
// `switchyard violations release` on a running server (app/violations_admin.cc); JSON body
// {"plan", "event", "offsets", "force"}, answered with the release report.
inline constexpr const char* kViolationsReleasePath = "/admin/violations/release";

// Writes a fresh random token to <data_dir>/ADMIN_TOKEN (0600) and returns it.
Result<std::string> WriteAdminToken(const std::string& data_dir);
Result<std::string> ReadAdminToken(const std::string& data_dir);

}  // namespace sy::app
