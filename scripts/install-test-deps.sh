#!/usr/bin/env bash
# Installs the end-to-end test clients, when missing:
#   - tests/e2e/node_modules: `npm ci` from the committed package-lock.json (@segment/analytics-node)
#   - tests/browser/node_modules: `npm ci` (playwright-core, @segment/analytics-next, esbuild);
#     the browser is Debian's chromium (scripts/install-deps.sh test), never a download
#   - build/venv: a Python venv with the pinned pytest and segment-analytics-python
#   - build/tools/weed: SeaweedFS for the archive's S3 tests (scripts/install-seaweedfs.sh)
#   - build/tools/kafka-<version>: Apache Kafka for the `kafka` tests (scripts/install-kafka.sh)
# Idempotent: each part is redone only when its pin file changed (a stamp holds its hash), so a
# second run touches no network. Prints one line on success. Never downloads browsers.
# Env: SY_VENV overrides the venv path (default build/venv).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
e2e="$root/tests/e2e"
venv=${SY_VENV:-$root/build/venv}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

fail() {
  echo "install-test-deps: $1 failed:" >&2
  cat "$log" >&2
  exit 1
}

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# 1. Node clients.
command -v npm >/dev/null || { echo "install-test-deps: npm not found (run scripts/install-deps.sh test)" >&2; exit 1; }
node_hash=$(hash_of "$e2e/package.json" "$e2e/package-lock.json"; node --version)
node_stamp="$e2e/node_modules/.sy-stamp"
if [ ! -f "$node_stamp" ] || [ "$(cat "$node_stamp")" != "$node_hash" ]; then
  (cd "$e2e" && PUPPETEER_SKIP_DOWNLOAD=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
    npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1 || fail "npm ci"
  echo "$node_hash" >"$node_stamp"
fi

# 1b. Browser test drivers. PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core never downloads, but
# say so anyway.
browser="$root/tests/browser"
browser_hash=$(hash_of "$browser/package.json" "$browser/package-lock.json"; node --version)
browser_stamp="$browser/node_modules/.sy-stamp"
if [ ! -f "$browser_stamp" ] || [ "$(cat "$browser_stamp")" != "$browser_hash" ]; then
  (cd "$browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
    npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1 || fail "npm ci (tests/browser)"
  echo "$browser_hash" >"$browser_stamp"
fi

# 2. Python venv.
py_hash=$(hash_of "$e2e/requirements.txt"; python3 --version 2>&1)
py_stamp="$venv/.sy-stamp"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$py_stamp" ] || [ "$(cat "$py_stamp")" != "$py_hash" ]; then
  # A venv whose interpreter no longer runs (python3 upgraded or moved) is made anew.
  if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    python3 -m venv --clear "$venv" >"$log" 2>&1 || fail "python3 -m venv $venv"
  fi
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$e2e/requirements.txt" \
    >"$log" 2>&1 || fail "pip install"
  echo "$py_hash" >"$py_stamp"
fi

# 3. SeaweedFS, the S3-compatible server (verifies SigV4) of the archive's S3 tests
# (tests/e2e/test_archive.py), built once from the Go module proxy into build/tools/weed.
# Test tooling only; needs Go >= 1.21 (GOTOOLCHAIN fetches the version SeaweedFS asks for).
if ! "$root/scripts/install-seaweedfs.sh" >"$log" 2>&1; then
  echo "install-test-deps: warning: SeaweedFS not built, the archive's S3 tests will fail:" >&2
  cat "$log" >&2
fi

# 4. Apache Kafka (KRaft broker jars) for the cluster-mode tests (tests/kafka, ctest label kafka);
# Java 17 and Maven from Debian when missing. Instant when already assembled.
"$root/scripts/install-kafka.sh" >"$log" 2>&1 || fail "scripts/install-kafka.sh"

echo "install-test-deps: ok (node clients in tests/e2e/node_modules and tests/browser/node_modules, python venv at ${venv#$root/})"
