// The warehouse side of the admin API (POST /api/v1/destinations/{name}/sync; docs/admin-api.md
// "Warehouse"). Implemented by the application (app/warehouse_admin.h), which runs what
// `switchyard warehouse sync` asks a running server to do, so the admin module includes no
// warehouse code.
#pragma once

#include <string_view>

#include "admin/config_api.h"

namespace sy::admin {

class WarehouseApi {
 public:
  virtual ~WarehouseApi() = default;
  // Loads now what the warehouse destination's cursor has not passed (its stream stops, the
  // load runs, the stream restarts): {"destination","loaded","report":{…}}. 404 when no enabled
  // warehouse destination has that name. Blocking: call it off the admin worker.
  virtual ApiResult SyncWarehouse(const Actor& actor, std::string_view destination) = 0;
};

}  // namespace sy::admin
