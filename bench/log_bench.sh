#!/usr/bin/env bash
# Event log append benchmark against the raw bandwidth of the same disk, measured in the same run.
#
# Usage: bench/log_bench.sh [DATA_PARENT_DIR] [SECONDS_PER_CASE]
# DATA_PARENT_DIR (default: build/bench-data) must be on the filesystem the log will use.
set -euo pipefail
cd "$(dirname "$0")/.."

parent="${1:-build/bench-data}"
seconds="${2:-3}"
mkdir -p "$parent"
work="$(mktemp -d -p "$parent" log-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT

cmake --preset release >/dev/null
cmake --build build/release --target log_bench -j2

echo "== raw disk: dd bs=1M count=512 oflag=dsync (one synced 1 MiB write at a time) =="
dd_out="$(dd if=/dev/zero of="$work/ddtest" bs=1M count=512 oflag=dsync 2>&1)"
echo "$dd_out" | tail -1
dd_bytes="$(echo "$dd_out" | tail -1 | awk '{print $1}')"
dd_secs="$(echo "$dd_out" | tail -1 | awk -F', ' '{print $3}' | awk '{print $1}')"
raw_mbs="$(awk -v b="$dd_bytes" -v s="$dd_secs" 'BEGIN {printf "%.1f", b / s / 1e6}')"
rm -f "$work/ddtest"
echo "raw MB/s: $raw_mbs"

if command -v fio >/dev/null; then
  echo "== raw disk: fio 4 KiB writes + fdatasync each (small-sync latency) =="
  fio --name=fsync-lat --directory="$work" --rw=write --bs=4k --size=64m --fdatasync=1 \
      --ioengine=sync --output-format=terse --terse-version=3 2>/dev/null |
    awk -F';' '{printf "fio: %.0f syncs/s, %.1f MB/s\n", $49, $48 / 1024}' || true
  rm -f "$work"/fsync-lat*
fi

echo "== log_bench (fsync: always) =="
out="$(build/release/bench/log_bench --dir "$work/log" --seconds "$seconds")"
echo "$out" | grep -v '^RESULT'
echo
echo "$out" | grep '^RESULT mode=batch100' | while read -r _ mode writers eps mbs; do
  mb="${mbs#mb_per_s=}"
  awk -v w="${writers#writers=}" -v m="$mb" -v r="$raw_mbs" \
    'BEGIN {printf "batch100 writers=%s: %.1f MB/s = %.0f%% of raw %.1f MB/s\n", w, m, 100 * m / r, r}'
done
