// Loader: writes the rows of one batch into one source's tables of a warehouse, in one
// transaction — the schema changes the batch needs (PlanSchema), the rows whose id is not there
// yet (users: merged into the row of their user id), and the discards. Either all of it commits
// or none of it does, so the caller may commit its log cursor once Load returns OK, and a batch
// loaded twice (a crash before the cursor commit, a redelivery, a replay) adds no row twice.
//
// Threads: a Loader is used from one thread at a time (the destination's stream thread).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "warehouse/schema.h"

namespace sy::warehouse {

struct LoadStats {
  std::map<std::string, uint64_t> rows;  // rows written per table (users: inserted or updated)
  uint64_t duplicates = 0;               // rows whose id was already loaded
  uint64_t discards = 0;                 // discard rows written
  uint64_t schema_changes = 0;           // tables created, columns added or widened
};

class Loader {
 public:
  virtual ~Loader() = default;

  // Loads `rows` (and `discards`) of `source` in one transaction. `rows` may be changed
  // (cells marked discarded, users rows merged). `load_time` is uuid_ts of the discards.
  virtual Result<LoadStats> Load(const std::string& source, std::vector<Row>& rows,
                                 std::vector<Discard>& discards, std::string_view load_time) = 0;
};

// Discards minus repeats of the same (row_id, table, column) within the batch.
std::vector<const Discard*> UniqueDiscards(const std::vector<Discard>& discards);

}  // namespace sy::warehouse
