#!/usr/bin/env bash
# Ingest benchmark: Switchyard (fsync before acknowledge) next to an nginx that answers the same
# requests with a fixed 200, both driven by the same wrk load in one run on this machine.
# Prints ratios; see docs/benchmarks.md for recorded figures.
#
# Usage: bench/ingest_bench.sh [BUILD_DIR]   (default build/release)
#        DURATION=10s to change the length of each run.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
BIN=$BUILD/switchyard
DURATION=${DURATION:-10s}
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
command -v wrk >/dev/null && command -v nginx >/dev/null || scripts/install-deps.sh bench

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/sy-bench.XXXXXX")   # same disk as a real data_dir
SY_PID=""; NG_PID=""
cleanup() {
  [ -n "$SY_PID" ] && kill "$SY_PID" 2>/dev/null && wait "$SY_PID" 2>/dev/null
  [ -n "$NG_PID" ] && kill "$NG_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NG_PORT=$(free_port); SY_PORT=$(free_port)

# nginx: fixed 200 with Segment's body, no logging, one worker per core (as Switchyard uses).
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<NGX
worker_processes auto;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  client_max_body_size 1m;
  client_body_buffer_size 1m;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$NG_PORT reuseport;
    location / { default_type application/json; return 200 '{"success":true}'; }
  }
}
NGX
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NG_PID=$!

# Each Switchyard scenario gets a fresh server and data_dir, so its peak RSS (VmHWM) is the
# peak under that load alone, and no scenario inherits another's dedupe index.
start_switchyard() {
  stop_switchyard
  # Let the previous scenario's writeback and file deletion (discard) finish first: they would
  # otherwise stall this scenario's fsyncs and show up as its tail latency.
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
YAML
  "$BIN" serve --config "$WORK/switchyard.yaml" &
  SY_PID=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$SY_PORT/readyz" >/dev/null && return
    sleep 0.1
  done
  echo "switchyard did not become ready" >&2
  exit 1
}
stop_switchyard() {
  if [ -n "$SY_PID" ]; then
    kill "$SY_PID" 2>/dev/null && wait "$SY_PID" 2>/dev/null || true
    SY_PID=""
  fi
}
peak_rss_mb() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$SY_PID/status"; }
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$NG_PORT/" >/dev/null && break; sleep 0.1; done

# CPU time (clock ticks, user + system) of every thread of the given processes.
cpu_ticks() {
  local p t s=0
  for p in "$@"; do
    for t in /proc/"$p"/task/*/stat; do
      s=$((s + $(awk '{print $14 + $15}' "$t" 2>/dev/null || echo 0)))
    done
  done
  echo "$s"
}
server_pids() {  # the process serving the URL's port: Switchyard, or nginx's workers
  if [[ "$1" == *":$SY_PORT/"* ]]; then echo "$SY_PID"; else pgrep -P "$NG_PID" | tr '\n' ' '; fi
}

# run NAME URL SCRIPT CONNECTIONS → prints requests/s, p99 and the server's CPU time per
# request (less sensitive than requests/s to other load on the machine); sets RPS and P99_MS
run() {
  local out non2xx pids before after n cpu_us
  pids=$(server_pids "$2")
  # shellcheck disable=SC2086
  before=$(cpu_ticks $pids)
  out=$(wrk -t2 -c"$4" -d"$DURATION" --latency -s "bench/$3" "$2")
  # shellcheck disable=SC2086
  after=$(cpu_ticks $pids)
  RPS=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  P99_MS=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; print v}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  cpu_us=$(echo "($after - $before) * 1000000 / $(getconf CLK_TCK) / $n" | bc -l)
  printf '%-40s %12s req/s   p99 %8s ms   server CPU %7.1f us/req%s\n' "$1" "$RPS" "$P99_MS" \
    "$cpu_us" "${non2xx:+   NON-2XX: $non2xx}"
}

echo "== $(nproc) cores, wrk -t2, $DURATION per run, Switchyard fsync: always, load average $(cut -d' ' -f1-3 /proc/loadavg) =="
run "nginx  /v1/track  64 conns" "http://127.0.0.1:$NG_PORT/v1/track" track.lua 64;   NG_TRACK=$RPS
start_switchyard
run "switchyard /v1/track 64 conns" "http://127.0.0.1:$SY_PORT/v1/track" track.lua 64; SY_TRACK=$RPS
RSS_TRACK64=$(peak_rss_mb)
# Latency first: the batch scenarios leave gigabytes of writeback and deletion behind.
run "nginx  /v1/track  16 conns" "http://127.0.0.1:$NG_PORT/v1/track" track.lua 16; NG_P99=$P99_MS
start_switchyard
run "switchyard /v1/track 16 conns" "http://127.0.0.1:$SY_PORT/v1/track" track.lua 16; SY_P99=$P99_MS
RSS_MB=$(peak_rss_mb)
run "nginx  /v1/batch 100x900B 16 conns" "http://127.0.0.1:$NG_PORT/v1/batch" batch.lua 16; NG_BATCH=$RPS
start_switchyard
run "switchyard /v1/batch 100x900B 16 conns" "http://127.0.0.1:$SY_PORT/v1/batch" batch.lua 16; SY_BATCH=$RPS
RSS_BATCH=$(peak_rss_mb)
run "nginx  /v1/batch 100x900B 64 conns" "http://127.0.0.1:$NG_PORT/v1/batch" batch.lua 64; NG_BATCH64=$RPS
start_switchyard
run "switchyard /v1/batch 100x900B 64 conns" "http://127.0.0.1:$SY_PORT/v1/batch" batch.lua 64; SY_BATCH64=$RPS
stop_switchyard

echo
printf 'single-event /v1/track @64: switchyard/nginx = %.2f  (target >= 0.50)\n' "$(echo "$SY_TRACK / $NG_TRACK" | bc -l)"
printf '/v1/batch 100 x ~900 B @16: %.0f events/s  (target >= 300000; nginx answers %.0f events/s)\n' \
  "$(echo "$SY_BATCH * 100" | bc -l)" "$(echo "$NG_BATCH * 100" | bc -l)"
printf '/v1/batch 100 x ~900 B @64: %.0f events/s  (target >= 300000; nginx answers %.0f events/s)\n' \
  "$(echo "$SY_BATCH64 * 100" | bc -l)" "$(echo "$NG_BATCH64 * 100" | bc -l)"
printf 'p99 latency /v1/track @16: %s ms  (target <= 5; nginx %s ms)\n' "$SY_P99" "$NG_P99"
printf 'peak RSS of switchyard under the 16-connection load: %s MB  (target <= 200)\n' "$RSS_MB"
printf 'peak RSS in the other runs: %s MB (/v1/track @64), %s MB (/v1/batch @16)\n' "$RSS_TRACK64" "$RSS_BATCH"
