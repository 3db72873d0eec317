#!/usr/bin/env bash
# Ingest A/B: two Switchyard binaries (e.g. main and an older commit's build) under the same wrk
# load, alternating round by round in one invocation, so a slow or noisy machine disturbs both
# alike. Prints each round and the median of each side, and B's ratio to A (the baseline).
#
# Usage: bench/ingest_ab.sh BASELINE_BIN CANDIDATE_BIN   (ROUNDS=5 DURATION=8s by default)
# Scenarios: /v1/batch 100 x ~900 B at 16 connections and /v1/track at 64, fsync: always.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1; B=$2
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-8s}
for bin in "$A" "$B"; do [ -x "$bin" ] || { echo "not executable: $bin" >&2; exit 1; }; done
command -v wrk >/dev/null || scripts/install-deps.sh bench

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/sy-ab.XXXXXX")
SY_PID=""
cleanup() {
  [ -n "$SY_PID" ] && kill "$SY_PID" 2>/dev/null && wait "$SY_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

start() {  # start BIN with a fresh data_dir
  rm -rf "$WORK/data"; sync; sleep 2
  cat > "$WORK/switchyard.yaml" <<YAML
version: 1
listen: 127.0.0.1:$PORT
data_dir: $WORK/data
log_level: warn
sources:
  - name: bench
    write_key: wk_bench
log:
  fsync: always
YAML
  "$1" serve --config "$WORK/switchyard.yaml" &
  SY_PID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return; sleep 0.1; done
  echo "switchyard did not become ready: $1" >&2; exit 1
}
stop() { kill "$SY_PID" 2>/dev/null && wait "$SY_PID" 2>/dev/null || true; SY_PID=""; }
cpu_ticks() {  # user + system clock ticks of every thread of SY_PID
  local t s=0
  for t in /proc/"$SY_PID"/task/*/stat; do s=$((s + $(awk '{print $14 + $15}' "$t" 2>/dev/null || echo 0))); done
  echo "$s"
}
# measure PATH SCRIPT CONNS → "requests/s cpu_us_per_request"
measure() {
  local before after out n rps
  before=$(cpu_ticks)
  out=$(wrk -t2 -c"$3" -d"$DURATION" -s "bench/$2" "http://127.0.0.1:$PORT$1")
  after=$(cpu_ticks)
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  if grep -q Non-2xx <<<"$out"; then echo "non-2xx answers: $out" >&2; exit 1; fi
  echo "$rps $(echo "($after - $before) * 1000000 / $(getconf CLK_TCK) / $n" | bc -l)"
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

echo "== A/B ingest, $(nproc) cores, $ROUNDS rounds x $DURATION, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   A (baseline): $A"
echo "   B:            $B"
declare -A RES
for r in $(seq "$ROUNDS"); do
  for side in A B; do
    bin=$A; [ "$side" = B ] && bin=$B
    start "$bin"; read -r brps bcpu < <(measure /v1/batch batch.lua 16); stop
    start "$bin"; read -r trps tcpu < <(measure /v1/track track.lua 64); stop
    RES[$side.brps]+="$brps "; RES[$side.bcpu]+="$bcpu "; RES[$side.trps]+="$trps "; RES[$side.tcpu]+="$tcpu "
    printf 'round %d %s  batch@16 %8.0f events/s %6.1f us CPU/req   track@64 %8.0f req/s %5.1f us CPU/req\n' \
      "$r" "$side" "$(echo "$brps * 100" | bc -l)" "$bcpu" "$trps" "$tcpu"
  done
done
echo
for k in brps bcpu trps tcpu; do
  a=$(tr ' ' '\n' <<<"${RES[A.$k]}" | grep . | median); b=$(tr ' ' '\n' <<<"${RES[B.$k]}" | grep . | median)
  case $k in brps) name="batch@16 requests/s";; bcpu) name="batch@16 CPU us/request";;
             trps) name="track@64 requests/s";; tcpu) name="track@64 CPU us/request";; esac
  printf 'median %-26s A %10.1f   B %10.1f   B/A %.3f\n' "$name" "$a" "$b" "$(echo "$b / $a" | bc -l)"
done
