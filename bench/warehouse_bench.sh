#!/usr/bin/env bash
# Warehouse benchmarks: load throughput from the log into SQLite and PostgreSQL (each against a
# baseline measured in the same run), then ingest → queryable latency at sync_interval 1s.
# Starts its own PostgreSQL 15 (tests/e2e/pg.py) on a free port and stops it at the end.
# Usage: bench/warehouse_bench.sh [BUILD_DIR] [EVENTS]   (defaults: build/release, 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
EVENTS=${2:-200000}
PY=$(command -v python3)
pgdir=$(mktemp -d /tmp/sy-wh-bench-pg.XXXXXX)
trap '"$PY" tests/e2e/pg.py stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$pgdir"' EXIT
dsn=$("$PY" tests/e2e/pg.py start "$pgdir")
SY_PG_DIR="$pgdir" "$BUILD/bench/warehouse_bench" "$(mktemp -d /tmp/sy-wh-bench.XXXXXX)" "$EVENTS" "$dsn" 2>&1 |
  grep -vE '^(NOTICE|DETAIL|drop cascades)|\[log\]'
"$PY" bench/warehouse_latency.py "$BUILD/switchyard" 20
