#!/usr/bin/env bash
# Ingest with the console open (issue 13): the same wrk load as bench/ingest_bench.sh against
# Switchyard without the console, then with an admin session streaming GET /api/v1/live?source=…
# at its cap (admin.live_rate records/s, the live view's sampling) while the overview and a
# destination's stats are polled as the console's pages poll them (every 10 s), side by side in
# one run on this machine. Each scenario gets a fresh server and data_dir. Prints the ratios
# (target: with the console >= 0.95 of without). docs/benchmarks.md records the figures.
#
# Usage: bench/console_open.sh [BUILD_DIR]   (default build/release)
#        DURATION=10s to change the length of each run.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
BIN=$BUILD/switchyard
DURATION=${DURATION:-10s}
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
command -v wrk >/dev/null || scripts/install-deps.sh bench

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/sy-bench-console.XXXXXX")
SY_PID=""; WATCH_PIDS=()
stop_console() {
  for p in "${WATCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  WATCH_PIDS=()
}
stop_switchyard() {
  if [ -n "$SY_PID" ]; then
    kill "$SY_PID" 2>/dev/null && wait "$SY_PID" 2>/dev/null || true
    SY_PID=""
  fi
}
cleanup() { stop_console; stop_switchyard; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SY_PORT=$(free_port); ADMIN_PORT=$(free_port)
TOKEN=""

start_switchyard() {
  stop_switchyard
  rm -rf "$WORK/data"
  sync
  sleep 2
  cat > "$WORK/switchyard.yaml" <<YAML
version: 1
listen: 127.0.0.1:$SY_PORT
data_dir: $WORK/data
log_level: warn
sources:
  - name: bench
    write_key: wk_bench
log:
  fsync: always
admin:
  listen: 127.0.0.1:$ADMIN_PORT
destinations:
  - name: hole
    type: blackhole
YAML
  TOKEN=$("$BIN" tokens create bench --role admin --config "$WORK/switchyard.yaml" | awk '{print $NF}')
  SWITCHYARD_TEST_DESTINATIONS=1 "$BIN" serve --config "$WORK/switchyard.yaml" &
  SY_PID=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$SY_PORT/readyz" >/dev/null && return
    sleep 0.1
  done
  echo "switchyard did not become ready" >&2
  exit 1
}

# The console's load: one live view of the source (an SSE stream, sampled by the server at
# admin.live_rate), and the overview and the destination's stats every 10 s.
start_console() {
  local auth="Authorization: Bearer $TOKEN"
  curl -sN -H "$auth" "http://127.0.0.1:$ADMIN_PORT/api/v1/live?source=bench" >"$WORK/live.txt" &
  WATCH_PIDS+=($!)
  (
    while true; do
      curl -sf -H "$auth" "http://127.0.0.1:$ADMIN_PORT/api/v1/overview" >/dev/null || true
      curl -sf -H "$auth" "http://127.0.0.1:$ADMIN_PORT/api/v1/destinations/hole/stats?window=1h" >/dev/null || true
      sleep 10
    done
  ) &
  WATCH_PIDS+=($!)
  sleep 0.5
}

# run NAME URL SCRIPT CONNECTIONS → requests/s in RPS
run() {
  local out non2xx
  out=$(wrk -t2 -c"$4" -d"$DURATION" -s "bench/$3" "$2")
  RPS=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  printf '%-48s %12s req/s%s\n' "$1" "$RPS" "${non2xx:+   NON-2XX: $non2xx}"
}

echo "== $(nproc) cores, wrk -t2, $DURATION per run, fsync: always, load average $(cut -d' ' -f1-3 /proc/loadavg) =="
start_switchyard
run "/v1/track 64 conns, no console" "http://127.0.0.1:$SY_PORT/v1/track" track.lua 64; A_TRACK=$RPS
start_switchyard; start_console
run "/v1/track 64 conns, console open" "http://127.0.0.1:$SY_PORT/v1/track" track.lua 64; B_TRACK=$RPS
LIVE_TRACK=$(grep -c '^event: record' "$WORK/live.txt" || true)
stop_console
start_switchyard
run "/v1/batch 100x900B 16 conns, no console" "http://127.0.0.1:$SY_PORT/v1/batch" batch.lua 16; A_BATCH=$RPS
start_switchyard; start_console
run "/v1/batch 100x900B 16 conns, console open" "http://127.0.0.1:$SY_PORT/v1/batch" batch.lua 16; B_BATCH=$RPS
LIVE_BATCH=$(grep -c '^event: record' "$WORK/live.txt" || true)
stop_console
stop_switchyard

echo
printf 'single-event /v1/track @64: console open / none = %.3f  (target >= 0.95; live view got %s records)\n' \
  "$(echo "$B_TRACK / $A_TRACK" | bc -l)" "$LIVE_TRACK"
printf '/v1/batch 100 x ~900 B @16: console open / none = %.3f  (target >= 0.95; live view got %s records)\n' \
  "$(echo "$B_BATCH / $A_BATCH" | bc -l)" "$LIVE_BATCH"
