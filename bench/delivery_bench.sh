#!/usr/bin/env bash
# Delivery benchmark: ingest → event log (fsync: always) → webhook destination → a local sink,
# all on this machine, in one run. wrk drives /v1/batch with bench/batch.lua (100 events of
# ~900 bytes, unique messageIds); the webhook sends JSON arrays of 100 events (batch: true) to
# bench/delivery_sink (C++, epoll), which counts the events it acknowledges and, for each, the
# time from the event's receivedAt (stamped by ingest) to its arrival.
#
# Scenarios, each on a fresh server and data_dir:
#   baseline  ingest only (no destination): what ingest alone sustains on these cores now;
#   webhook   the same load with one webhook destination;
#   with-503  the same plus a second webhook whose receiver answers 503 to everything;
#   latency   ~half the webhook rate (paced wrk), p99 receivedAt → arrival at the sink;
#   drain     delivery alone: a log pre-filled with the webhook run's volume, then the
#             destination is added (SIGHUP) and drains it with no ingest running.
# "delivered/s" counts events the sink acknowledged during wrk's run; "end to end" is all
# ingested events over the time until the last one was acknowledged (load + catch-up).
#
#   MODE=new-destinations  instead of the above: three of issue 15's destinations at once —
#             bigquery, kinesis and intercom — against one local vendor sink
#             (delivery_sink --vendors 1, which answers as those vendors do); each one's
#             delivered/s from Switchyard's metrics (intercom sends one event per request).
#
# Usage: bench/delivery_bench.sh [BUILD_DIR]   (default build/release)
#        DURATION=10s to change the length of each run; CONNS (16) for wrk's connections.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
BIN=$BUILD/switchyard
SINK_BIN=$BUILD/bench/delivery_sink
DURATION=${DURATION:-10s}
SECS=${DURATION%s}
CONNS=${CONNS:-16}
[ -x "$BIN" ] && [ -x "$SINK_BIN" ] || { echo "build first: make build ($BIN, $SINK_BIN)" >&2; exit 1; }
command -v wrk >/dev/null || scripts/install-deps.sh bench

# Under build/ (same disk as a real data_dir; shared /var/tmp was swept by other runs here).
mkdir -p build
WORK=$(mktemp -d "$PWD/build/delivery-bench.XXXXXX")
SY_PID=""; SINK_PIDS=()
cleanup() {
  [ -n "$SY_PID" ] && kill "$SY_PID" 2>/dev/null && wait "$SY_PID" 2>/dev/null
  for p in "${SINK_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SY_PORT=$(free_port)

start_sink() {  # start_sink STATUS [VENDORS] → sets SINK_PID, SINK_PORT
  local out="$WORK/sink-$1-${2:-0}.out"
  "$SINK_BIN" --status "$1" --vendors "${2:-0}" >"$out" &
  SINK_PID=$!
  SINK_PIDS+=("$SINK_PID")  # killed at exit even if this run fails before using it
  for _ in $(seq 100); do
    SINK_PORT=$(awk '/^port/ {print $2}' "$out")
    [ -n "$SINK_PORT" ] && return
    sleep 0.05
  done
  echo "sink did not start" >&2; exit 1
}
start_sink 200; OK_PORT=$SINK_PORT
start_sink 503; BAD_PORT=$SINK_PORT

sink_stat() { curl -sf "http://127.0.0.1:$1/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }
sink_reset() { curl -sf "http://127.0.0.1:$1/reset" >/dev/null; }
metric() {  # metric NAME [LABEL_MATCH] → value summed over matching series
  curl -sf -H "Authorization: Bearer bench-metrics-token-0123" "http://127.0.0.1:$SY_PORT/metrics" |
    awk -v n="$1" -v l="${2:-}" '$1 ~ "^"n"([{]|$)" && index($1, l) {s += $2} END {printf "%.0f", s}'
}

webhook_yaml() {  # webhook_yaml NAME PORT
  cat <<YAML
  - name: $1
    type: webhook
    allow_private_network: true
    batch: {max_events: 100, max_wait: 5ms}
    settings: {url: "http://127.0.0.1:$2/hook", batch: true, max_events: 100}
YAML
}

# start_switchyard [DESTINATIONS_YAML] — fresh data_dir each time (see bench/ingest_bench.sh).
start_switchyard() {
  stop_switchyard
  rm -rf "$WORK/data"
  sync
  sleep 2
  write_config "${1:-}"
  "$BIN" serve --config "$WORK/switchyard.yaml" &
  SY_PID=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$SY_PORT/readyz" >/dev/null && return
    sleep 0.1
  done
  echo "switchyard did not become ready" >&2
  exit 1
}
write_config() {
  {
    cat <<YAML
version: 1
listen: 127.0.0.1:$SY_PORT
data_dir: $WORK/data
log_level: warn
metrics:
  token: bench-metrics-token-0123
sources:
  - name: bench
    write_key: wk_bench
log:
  fsync: always
YAML
    if [ -n "$1" ]; then echo "destinations:"; echo "$1"; fi
  } >"$WORK/switchyard.yaml"
}
stop_switchyard() {
  if [ -n "$SY_PID" ]; then
    kill "$SY_PID" 2>/dev/null && wait "$SY_PID" 2>/dev/null || true
    SY_PID=""
  fi
}

# load SCRIPT CONNS → sets INGESTED (events acknowledged by ingest), IN_RATE, T_START, T_END
load() {
  local out non2xx
  T_START=$(date +%s.%N)
  out=$(wrk -t2 -c"$2" -d"$DURATION" -s "bench/$1" "http://127.0.0.1:$SY_PORT/v1/batch")
  T_END=$(date +%s.%N)
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  [ -z "$non2xx" ] || echo "  (wrk saw $non2xx non-2xx answers)"
  INGESTED=$(metric switchyard_ingest_events_accepted_total)
  IN_RATE=$(echo "$INGESTED / ($T_END - $T_START)" | bc -l)
}

# wait_delivered DESTINATION → waits until the destination has nothing left; sets T_DONE
wait_delivered() {
  for _ in $(seq 1200); do
    if [ "$(metric switchyard_consumer_lag_events "\"dest.$1\"")" = 0 ] &&
      [ "$(metric switchyard_delivery_in_flight "\"$1\"")" = 0 ]; then
      T_DONE=$(date +%s.%N)
      return
    fi
    sleep 0.05
  done
  echo "destination $1 did not catch up within 60 s" >&2
  T_DONE=$(date +%s.%N)
}

# delivery_run NAME DESTINATIONS_YAML → prints a line; sets DELIVERED_RATE, E2E_RATE
delivery_run() {
  start_switchyard "$2"
  local before after got
  before=$(sink_stat "$OK_PORT" events)
  load batch.lua "$CONNS"
  after=$(sink_stat "$OK_PORT" events)
  wait_delivered hooks
  got=$(($(sink_stat "$OK_PORT" events) - before))
  DELIVERED_RATE=$(echo "($after - $before) / ($T_END - $T_START)" | bc -l)
  E2E_RATE=$(echo "$got / ($T_DONE - $T_START)" | bc -l)
  printf '%-10s ingest %8.0f ev/s   delivered during load %8.0f ev/s   end to end %8.0f ev/s (%d events, caught up %.1f s after load)%s\n' \
    "$1" "$IN_RATE" "$DELIVERED_RATE" "$E2E_RATE" "$got" "$(echo "$T_DONE - $T_END" | bc -l)" \
    "$([ "$got" -ge "$INGESTED" ] || echo "  MISSING $((INGESTED - got))")"
}

# Three new destinations at once (issue 15's figure): bigquery, kinesis, intercom.
new_destinations_yaml() {  # new_destinations_yaml PORT
  local sa
  sa=$(python3 -c 'import json,sys; sa=json.load(open("src/destinations/bigquery/testdata/service_account.json")); sa["token_uri"]=f"http://127.0.0.1:{sys.argv[1]}/token"; print(json.dumps(sa))' "$1")
  cat <<YAML
  - name: bq
    type: bigquery
    allow_private_network: true
    batch: {max_events: 500, max_wait: 5ms}
    settings: {project_id: bench, dataset_id: bench, endpoint: "http://127.0.0.1:$1", service_account_json: '$sa'}
  - name: kin
    type: kinesis
    allow_private_network: true
    batch: {max_events: 500, max_wait: 5ms}
    settings: {stream_name: bench, region: us-east-1, access_key_id: AKIDEXAMPLE, secret_access_key: bench, endpoint: "http://127.0.0.1:$1"}
  - name: ic
    type: intercom
    allow_private_network: true
    batch: {max_events: 100, max_wait: 5ms}
    settings: {access_token: bench, endpoint: "http://127.0.0.1:$1"}
YAML
}
if [ "${MODE:-}" = new-destinations ]; then
  echo "== $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), wrk -t2 -c$CONNS, $DURATION, fsync: always; bigquery + kinesis + intercom =="
  start_sink 200 1; VENDOR_PORT=$SINK_PORT
  start_switchyard "$(new_destinations_yaml "$VENDOR_PORT")"
  load batch.lua "$CONNS"
  for d in bq kin ic; do
    during=$(metric switchyard_delivery_delivered_total "\"$d\"")
    printf '%-4s delivered during load %8.0f ev/s\n' "$d" "$(echo "$during / ($T_END - $T_START)" | bc -l)"
  done
  for d in bq kin; do
    wait_delivered "$d"
    printf '%-4s end to end %8.0f ev/s (%s events, caught up %.1f s after load)\n' "$d" \
      "$(echo "$(metric switchyard_delivery_delivered_total "\"$d\"") / ($T_DONE - $T_START)" | bc -l)" \
      "$(metric switchyard_delivery_delivered_total "\"$d\"")" "$(echo "$T_DONE - $T_END" | bc -l)"
  done
  printf 'ingest %.0f ev/s with the three destinations; the vendor sink took %s events in %s requests\n' \
    "$IN_RATE" "$(sink_stat "$VENDOR_PORT" events)" "$(sink_stat "$VENDOR_PORT" requests)"
  stop_switchyard
  exit 0
fi

echo "== $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), wrk -t2 -c$CONNS, $DURATION per run, fsync: always =="

start_switchyard ""
load batch.lua "$CONNS"
BASE_RATE=$IN_RATE
printf '%-10s ingest %8.0f ev/s   (no destination)\n' baseline "$BASE_RATE"

delivery_run webhook "$(webhook_yaml hooks "$OK_PORT")"
ONE_RATE=$DELIVERED_RATE; ONE_E2E=$E2E_RATE

delivery_run with-503 "$(webhook_yaml hooks "$OK_PORT")
$(webhook_yaml failing "$BAD_PORT")"
TWO_RATE=$DELIVERED_RATE; TWO_E2E=$E2E_RATE
BAD_REQS=$(sink_stat "$BAD_PORT" requests)

# Latency at about half the webhook's sustained rate: 8 paced connections.
HALF=$(echo "$ONE_E2E / 2" | bc -l)
DELAY=$(echo "8 * 100 * 1000 / $HALF" | bc)
start_switchyard "$(webhook_yaml hooks "$OK_PORT")"
sink_reset "$OK_PORT"
DELAY_MS=$DELAY load delivery_paced.lua 8
wait_delivered hooks
P50=$(sink_stat "$OK_PORT" p50_ms); P99=$(sink_stat "$OK_PORT" p99_ms); PMAX=$(sink_stat "$OK_PORT" max_ms)
printf '%-10s ingest %8.0f ev/s (8 conns, %s ms pause)   receivedAt → sink p50 %s ms  p99 %s ms  max %s ms\n' \
  latency "$IN_RATE" "$DELAY" "$P50" "$P99" "$PMAX"
LAT_RATE=$IN_RATE

# Delivery alone: fill the log with no destination, then add it and time the drain.
start_switchyard ""
load batch.lua "$CONNS"
FILLED=$INGESTED
write_config "$(webhook_yaml hooks "$OK_PORT")"
before=$(sink_stat "$OK_PORT" events)
T_START=$(date +%s.%N)
kill -HUP "$SY_PID"
sleep 0.2
wait_delivered hooks
DRAINED=$(($(sink_stat "$OK_PORT" events) - before))
DRAIN_RATE=$(echo "$DRAINED / ($T_DONE - $T_START)" | bc -l)
printf '%-10s %d events from a pre-filled log in %.2f s: %8.0f ev/s (no ingest running)\n' \
  drain "$DRAINED" "$(echo "$T_DONE - $T_START" | bc -l)" "$DRAIN_RATE"
stop_switchyard

echo
printf 'end to end ingest → webhook: %.0f events/s (delivered during load %.0f/s; %.2f × ingest alone, %.0f/s)  (target >= 100000)\n' \
  "$ONE_E2E" "$ONE_RATE" "$(echo "$ONE_E2E / $BASE_RATE" | bc -l)" "$BASE_RATE"
printf 'beside a 503 destination: %.0f events/s end to end = %.2f × the single destination (target >= 0.90); the 503 sink saw %s requests\n' \
  "$TWO_E2E" "$(echo "$TWO_E2E / $ONE_E2E" | bc -l)" "$BAD_REQS"
printf 'p99 ingest → delivery at %.0f events/s (%.2f × the end-to-end rate): %s ms  (target <= 100)\n' \
  "$LAT_RATE" "$(echo "$LAT_RATE / $ONE_E2E" | bc -l)" "$P99"
printf 'delivery alone (pre-filled log): %.0f events/s = %.2f × ingest alone\n' \
  "$DRAIN_RATE" "$(echo "$DRAIN_RATE / $BASE_RATE" | bc -l)"
