#!/usr/bin/env bash
# `make bench`: every benchmark, each printing its ratio against a baseline measured in the same
# run. Figures and commands are recorded in docs/benchmarks.md.
# Usage: bench/run-all.sh [BUILD_DIR]   (default build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
echo "### machine: $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "### event log append (bench/log_bench.sh)"
bench/log_bench.sh build/bench-data 3
echo "### ingest (bench/ingest_bench.sh)"
bench/ingest_bench.sh "$BUILD"
echo "### delivery: ingest → webhook (bench/delivery_bench.sh)"
bench/delivery_bench.sh "$BUILD"
echo "### archive write and replay (bench/archive_bench.sh)"
bench/archive_bench.sh "$BUILD"
echo "### ingest handler CPU cost ($BUILD/bench/ingest_handler_bench)"
"$BUILD/bench/ingest_handler_bench"
if [ -x bench/web_bench.sh ]; then
  echo "### browser endpoints (bench/web_bench.sh)"
  bench/web_bench.sh "$BUILD"
fi
echo "### warehouse: log → SQLite / PostgreSQL, ingest → queryable (bench/warehouse_bench.sh)"
bench/warehouse_bench.sh "$BUILD"
