// The warehouse side of the admin API (GET /api/v1/warehouse, POST
// /api/v1/destinations/{name}/sync; docs/admin-api.md "Warehouse"). Implemented by the application
// (app/warehouse_admin.h), which runs what `switchyard warehouse sync` asks a running server to do,
// so the admin module includes no warehouse code.
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
  // GET /api/v1/warehouse[?destination=NAME]: per warehouse destination its last loads, rows per
  // table (the database's cheap estimates, and the rows loaded since the server started) and
  // discards: {"warehouses":[…]} (openapi.json, schema Warehouse). 404 when `destination` names
  // no warehouse destination. Must not wait behind a running load; reads each database through a
  // connection of its own, bounded in time (and cached briefly): call it off the I/O threads.
  virtual ApiResult Warehouses(std::string_view destination) = 0;
};

}  // namespace sy::admin
