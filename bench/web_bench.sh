#!/usr/bin/env bash
# Browser endpoints benchmark: Switchyard's GET /v1/projects/{wk}/settings and
# GET /analytics.js/v1/{wk}/analytics.min.js next to nginx serving the same bytes as static files
# (gzip_static, etag, open_file_cache), both driven by the same wrk load in one run. Each request
# carries Accept-Encoding: gzip as browsers do; the revalidation runs add If-None-Match with the
# server's own ETag (304). Prints ratios; see docs/benchmarks.md ("Browser endpoints").
#
# Usage: bench/web_bench.sh [BUILD_DIR]   (default build/release)
#        DURATION=10s CONNS=64 to change the length and load of each run.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
BIN=$BUILD/switchyard
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
command -v wrk >/dev/null && command -v nginx >/dev/null || scripts/install-deps.sh bench

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/sy-web-bench.XXXXXX")
SY_PID=""; NG_PID=""
cleanup() {
  [ -n "$SY_PID" ] && kill "$SY_PID" 2>/dev/null && wait "$SY_PID" 2>/dev/null
  [ -n "$NG_PID" ] && kill "$NG_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NG_PORT=$(free_port); SY_PORT=$(free_port)
WK=wk_bench
SETTINGS=/v1/projects/$WK/settings
SCRIPT=/analytics.js/v1/$WK/analytics.min.js

cat > "$WORK/switchyard.yaml" <<YAML
version: 1
listen: 127.0.0.1:$SY_PORT
data_dir: $WORK/data
log_level: warn
sources:
  - name: bench
    write_key: $WK
web:
  cache_max_age: 60s
YAML
"$BIN" serve --config "$WORK/switchyard.yaml" &
SY_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$SY_PORT/readyz" >/dev/null && break; sleep 0.1; done

# nginx serves the very bytes Switchyard serves, from files (identity and .gz), one worker per
# core (as Switchyard runs one I/O thread per core), no logging.
for p in "$SETTINGS" "$SCRIPT"; do
  mkdir -p "$WORK/www$(dirname "$p")"
  curl -sf "http://127.0.0.1:$SY_PORT$p" -o "$WORK/www$p"
  curl -sf -H 'Accept-Encoding: gzip' "http://127.0.0.1:$SY_PORT$p" -o "$WORK/www$p.gz"
done
chmod -R a+rX "$WORK"   # nginx workers may run as another user
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<NGX
worker_processes auto;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  open_file_cache max=100 inactive=60s;
  open_file_cache_valid 60s;
  types { application/json settings; application/javascript js; }
  server {
    listen 127.0.0.1:$NG_PORT reuseport;
    root $WORK/www;
    gzip_static on;
    etag on;
    add_header Cache-Control "public, max-age=60";
    add_header Access-Control-Allow-Origin "*";
    add_header Vary "Accept-Encoding";
  }
}
NGX
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NG_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$NG_PORT$SETTINGS" >/dev/null && break; sleep 0.1; done

etag() { curl -sf -o /dev/null -D - -H 'Accept-Encoding: gzip' "$1" | awk -F': ' 'tolower($1)=="etag" {gsub("\r",""); print $2}'; }

# run NAME URL [IF_NONE_MATCH] → prints requests/s and the status seen; sets RPS
run() {
  local out codes
  if [ -n "${3:-}" ]; then
    out=$(wrk -t2 -c"$CONNS" -d"$DURATION" -H 'Accept-Encoding: gzip' -H "If-None-Match: $3" "$2")
    codes=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept-Encoding: gzip' -H "If-None-Match: $3" "$2")
  else
    out=$(wrk -t2 -c"$CONNS" -d"$DURATION" -H 'Accept-Encoding: gzip' "$2")
    codes=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept-Encoding: gzip' "$2")
  fi
  RPS=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  printf '%-44s %12s req/s   (status %s)\n' "$1" "$RPS" "$codes"
}

echo "== $(nproc) cores, wrk -t2 -c$CONNS, $DURATION per run; $(uptime | sed 's/.*load/load/') =="
declare -A R
for ep in settings script; do
  p=$SETTINGS; [ $ep = script ] && p=$SCRIPT
  run "nginx      $ep (gzip)" "http://127.0.0.1:$NG_PORT$p"; R[ng_$ep]=$RPS
  run "switchyard $ep (gzip)" "http://127.0.0.1:$SY_PORT$p"; R[sy_$ep]=$RPS
  run "nginx      $ep If-None-Match (304)" "http://127.0.0.1:$NG_PORT$p" "$(etag "http://127.0.0.1:$NG_PORT$p")"
  R[ng_${ep}_304]=$RPS
  run "switchyard $ep If-None-Match (304)" "http://127.0.0.1:$SY_PORT$p" "$(etag "http://127.0.0.1:$SY_PORT$p")"
  R[sy_${ep}_304]=$RPS
done
echo "load after: $(uptime | sed 's/.*load/load/')"
echo
for k in settings settings_304 script script_304; do
  printf '%-16s switchyard/nginx = %.2f  (target >= 0.70)\n' "$k" "$(echo "${R[sy_$k]} / ${R[ng_$k]}" | bc -l)"
done
printf 'script size: %s bytes, %s gzipped; settings: %s bytes, %s gzipped\n' \
  "$(stat -c%s "$WORK/www$SCRIPT")" "$(stat -c%s "$WORK/www$SCRIPT.gz")" \
  "$(stat -c%s "$WORK/www$SETTINGS")" "$(stat -c%s "$WORK/www$SETTINGS.gz")"
