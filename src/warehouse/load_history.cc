#include "warehouse/load_history.h"

#include <algorithm>

namespace sy::warehouse {

void LoadHistory::Push(Load load) {
  loads_.push_front(std::move(load));
  while (loads_.size() > kKeepLoads)
    loads_.pop_back();
}

void LoadHistory::Committed(int64_t started_ms, int64_t finished_ms, std::string_view source,
                            uint64_t events, const LoadStats& stats) {
  Load load;
  load.started_ms = started_ms;
  load.finished_ms = finished_ms;
  load.source = std::string(source);
  load.events = events;
  load.tables = stats.rows.size();
  load.discards = stats.discards;
  load.duplicates = stats.duplicates;
  // The largest tables of the load, when it touched more than kTablesPerLoad.
  std::vector<std::pair<uint64_t, const std::string*>> by_rows;
  by_rows.reserve(stats.rows.size());
  for (const auto& [table, n] : stats.rows) {
    load.rows += n;
    by_rows.emplace_back(n, &table);
  }
  if (by_rows.size() > kTablesPerLoad) {
    std::partial_sort(by_rows.begin(), by_rows.begin() + kTablesPerLoad, by_rows.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    by_rows.resize(kTablesPerLoad);
  }
  for (const auto& [n, table] : by_rows)
    load.rows_per_table.emplace(*table, n);
  std::lock_guard lock(mu_);
  auto& per_source = totals_.rows_per_table[load.source];
  for (const auto& [table, n] : stats.rows) {
    auto it = per_source.find(table);
    if (it == per_source.end()) {
      const bool full = totals_.tables >= kMaxTables;
      it = per_source.try_emplace(full ? std::string(kOtherTables) : table, 0).first;
      if (!full) ++totals_.tables;
    }
    it->second += n;
  }
  totals_.discards += stats.discards;
  ++totals_.loads_ok;
  Push(std::move(load));
}

void LoadHistory::Failed(int64_t started_ms, int64_t finished_ms, std::string_view source,
                         uint64_t events, std::string error) {
  Load load;
  load.started_ms = started_ms;
  load.finished_ms = finished_ms;
  load.source = std::string(source);
  load.events = events;
  load.error = std::move(error);
  std::lock_guard lock(mu_);
  ++totals_.loads_failed;
  Push(std::move(load));
}

void LoadHistory::Refused(uint64_t discards) {
  std::lock_guard lock(mu_);
  ++totals_.refused;
  totals_.discards += discards;
}

std::vector<LoadHistory::Load> LoadHistory::Recent() const {
  std::lock_guard lock(mu_);
  return {loads_.begin(), loads_.end()};
}

LoadHistory::Totals LoadHistory::totals() const {
  std::lock_guard lock(mu_);
  return totals_;
}

std::shared_ptr<LoadHistory> LoadHistoryBook::For(std::string_view destination) {
  std::lock_guard lock(mu_);
  auto it = by_name_.find(destination);
  if (it != by_name_.end()) return it->second;
  auto h = std::make_shared<LoadHistory>();
  by_name_.emplace(std::string(destination), h);
  return h;
}

std::shared_ptr<LoadHistory> LoadHistoryBook::Find(std::string_view destination) const {
  std::lock_guard lock(mu_);
  auto it = by_name_.find(destination);
  return it == by_name_.end() ? nullptr : it->second;
}

}  // namespace sy::warehouse
