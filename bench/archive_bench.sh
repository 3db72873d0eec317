#!/usr/bin/env bash
# Archive benchmark, two stages in one run (figures in docs/benchmarks.md, "Archive and replay"):
#  1. archive write: build/<preset>/bench/archive_bench fills a log with EVENTS events and
#     archives them (local store, 64 MiB files), against zlib -1 + write + fdatasync of the same
#     bytes (see archive_bench.cc);
#  2. replay: `switchyard replay` of that archive into a webhook destination pointing at nginx
#     (answers 200 to every POST), against wrk POSTing the same batches to the same nginx.
# Usage: bench/archive_bench.sh [BUILD_DIR]   env: EVENTS (default 1000000), BATCH (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
BIN=$BUILD/switchyard
EVENTS=${EVENTS:-1000000}
BATCH=${BATCH:-1000}
command -v wrk >/dev/null && command -v nginx >/dev/null && [ -x /usr/bin/time ] ||
  scripts/install-deps.sh bench

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/sy-archive-bench.XXXXXX")
NG_PID=""
cleanup() {
  [ -n "$NG_PID" ] && kill "$NG_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "## archive write ($EVENTS events)"
"$BUILD/bench/archive_bench" "$WORK" "$EVENTS" 2> >(grep -v ' info ' >&2)

NG_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  client_max_body_size 16m;
  client_body_buffer_size 16m;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$NG_PORT;
    location / { default_type application/json; return 200 '{"ok":true}'; }
  }
}
NGX
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NG_PID=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$NG_PORT/" && break; sleep 0.1; done

# The baseline batch: BATCH events of the archive as one JSON array (as the webhook sends them).
first=$(find "$WORK/data/archive" -name '*.ndjson.gz' | sort | head -1)
{ zcat "$first" || true; } | head -n "$BATCH" | python3 -c 'import sys; print("[" + ",".join(l.strip() for l in sys.stdin) + "]")' > "$WORK/batch.json"
echo "## replay into a webhook sink (nginx), batches of $BATCH"
wrk_out=$(SY_BATCH_FILE="$WORK/batch.json" wrk -t1 -c4 -d5s -s bench/archive_post.lua "http://127.0.0.1:$NG_PORT/hook")
rps=$(echo "$wrk_out" | awk '/Requests\/sec/ {print $2}')
raw=$(echo "$rps * $BATCH" | bc)
echo "baseline: wrk POSTing the same $BATCH-event batches to nginx: $rps req/s = $raw events/s"

cat > "$WORK/switchyard.yaml" <<YAML
version: 1
data_dir: $WORK/data
log_level: warn
sources:
  - name: web
    write_key: wk_web
  - name: backend
    write_key: wk_backend
archive:
  store: local
  path: $WORK/data/archive
destinations:
  - name: sink
    type: webhook
    enabled: false
    allow_private_network: true
    batch: {max_events: $BATCH, max_bytes: 16MB, max_wait: 50ms}
    settings: {url: "http://127.0.0.1:$NG_PORT/hook", batch: true, max_events: $BATCH}
YAML
echo "load average before the replay: $(cut -d' ' -f1-3 /proc/loadavg)"
# CPU time of the replay process (all its threads): on a shared machine the steadier figure.
summary=$(/usr/bin/time -f "%U %S" -o "$WORK/replay.time" \
  "$BIN" replay --config "$WORK/switchyard.yaml" --destination sink </dev/null)
echo "replay: $summary"
eps=$(echo "$summary" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events_per_s"])')
read -r cpu_user cpu_sys < "$WORK/replay.time"
cpu_us=$(echo "scale=2; ($cpu_user + $cpu_sys) * 1000000 / $EVENTS" | bc)
echo "replay: $eps events/s; replay / raw sink rate: $(echo "scale=2; $eps / $raw" | bc)"
echo "replay CPU: ${cpu_user} s user + ${cpu_sys} s sys = $cpu_us µs per event (all threads)"
