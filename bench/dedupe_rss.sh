#!/usr/bin/env bash
# RSS curve under unique messageIds at full batch rate: one Switchyard, wrk with bench/batch.lua
# (100 events of ~900 B per /v1/batch, every messageId new), and every INTERVAL seconds a sample
# of the server's RSS, the events accepted so far, what the dedupe index accounts in memory, the
# keys it spilled to run files and how many claims read a run. Issue 18 "Memory bound": the curve
# must go flat.
#
# Usage: bench/dedupe_rss.sh [BUILD_DIR]      (default build/release)
#   DURATION=10m   length of the run (default 2m; the recorded figure is 10m on a quiet machine)
#   INTERVAL=5     seconds between samples
#   CONNS=16       wrk connections
#   MAX_MEMORY=    ingest.dedupe.max_memory (default: the server's, 128MB)
#   BIN=path       another switchyard binary (e.g. one built from an older commit, to compare;
#                  MAX_MEMORY must then stay empty if that binary does not know the key)
# Prints one line per sample and a summary; CSV=path also writes the samples as CSV.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
BIN=${BIN:-$BUILD/switchyard}
DURATION=${DURATION:-2m}
INTERVAL=${INTERVAL:-5}
CONNS=${CONNS:-16}
MAX_MEMORY=${MAX_MEMORY:-}
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
command -v wrk >/dev/null || scripts/install-deps.sh bench

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/sy-dedupe-rss.XXXXXX")   # same disk as a real data_dir
SY_PID=""; WRK_PID=""
cleanup() {
  [ -n "$WRK_PID" ] && kill "$WRK_PID" 2>/dev/null
  [ -n "$SY_PID" ] && kill "$SY_PID" 2>/dev/null && wait "$SY_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
{
  cat <<YAML
version: 1
listen: 127.0.0.1:$PORT
data_dir: $WORK/data
log_level: warn
sources:
  - name: bench
    write_key: wk_bench
metrics:
  token: bench-metrics-token-0123
log:
  fsync: always
  retention_size: 2GB          # the run writes tens of GB of events; the window is what matters
YAML
  if [ -n "$MAX_MEMORY" ]; then printf 'ingest:\n  dedupe:\n    max_memory: %s\n' "$MAX_MEMORY"; fi
} > "$WORK/switchyard.yaml"
"$BIN" serve --config "$WORK/switchyard.yaml" &
SY_PID=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done

seconds() {  # 90s, 2m, 1h → seconds
  local v=$1
  case "$v" in *h) echo $((${v%h} * 3600)) ;; *m) echo $((${v%m} * 60)) ;; *s) echo "${v%s}" ;; *) echo "$v" ;; esac
}
metric() {  # value of one unlabelled metric (or sum over its labels), 0 when absent
  awk -v n="$1" '$1 == n || index($1, n "{") == 1 {s += $2} END {printf "%.0f", s}' <<<"$2"
}
sample() {
  local m rss
  m=$(curl -s -H "Authorization: Bearer bench-metrics-token-0123" "http://127.0.0.1:$PORT/metrics" || true)
  rss=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$SY_PID/status")
  printf '%6s %12s %9s %14s %12s %11s\n' "$1" "$(metric switchyard_ingest_events_accepted_total "$m")" \
    "$rss" "$(awk -v b="$(metric switchyard_dedupe_memory_bytes "$m")" 'BEGIN {printf "%.1f", b/1048576}')" \
    "$(metric switchyard_dedupe_spilled_keys "$m")" "$(metric switchyard_dedupe_run_reads "$m")"
}

TOTAL=$(seconds "$DURATION")
echo "== $(nproc) cores, wrk -t2 -c$CONNS, $DURATION, sample every ${INTERVAL}s, max_memory ${MAX_MEMORY:-default}, load average $(cut -d' ' -f1-3 /proc/loadavg) =="
printf '%6s %12s %9s %14s %12s %11s\n' "t_s" "events" "rss_mb" "dedupe_mem_mb" "spilled" "run_reads"
wrk -t2 -c"$CONNS" -d"$DURATION" -s bench/batch.lua "http://127.0.0.1:$PORT/v1/batch" > "$WORK/wrk.out" &
WRK_PID=$!
START=$(date +%s)
OUT="$WORK/samples.txt"
sample 0 | tee "$OUT"
while kill -0 "$WRK_PID" 2>/dev/null; do
  sleep "$INTERVAL"
  NOW=$(( $(date +%s) - START ))
  [ "$NOW" -gt $((TOTAL + INTERVAL)) ] && break
  sample "$NOW" | tee -a "$OUT"
done
wait "$WRK_PID" || true
WRK_PID=""
[ -n "${CSV:-}" ] && awk 'BEGIN {print "t_s,events,rss_mb,dedupe_mem_mb,spilled,run_reads"} {print $1","$2","$3","$4","$5","$6}' "$OUT" > "$CSV"
grep -E "Requests/sec|Non-2xx" "$WORK/wrk.out" || true
# Flat means: the second half of the run adds (almost) nothing, whatever the events it adds.
awk 'NR == 1 {next} {t[n] = $1; e[n] = $2; r[n] = $3; n++}
     END {
       if (n < 4) { print "too few samples"; exit }
       h = int(n / 2)
       printf "events: %d; RSS %.1f MB at t=%ds (%d events), %.1f MB at the end: %+.1f MB over the second half (%.2f B per event added)\n",
         e[n-1], r[h], t[h], e[h], r[n-1], r[n-1] - r[h], (e[n-1] > e[h]) ? (r[n-1] - r[h]) * 1048576 / (e[n-1] - e[h]) : 0
       max = 0; for (i = 0; i < n; i++) if (r[i] > max) max = r[i]
       printf "peak RSS %.1f MB\n", max
     }' "$OUT"
