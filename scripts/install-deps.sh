#!/usr/bin/env bash
# Installs what Switchyard needs to build and test, from Debian's packages only, when missing.
# Usage: scripts/install-deps.sh [build|test|bench]   (each level includes the previous one)
set -euo pipefail
level=${1:-build}

build_pkgs=(build-essential cmake ninja-build pkg-config nodejs npm
  libboost1.81-dev libboost-json1.81-dev libsimdjson-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev
  zlib1g-dev libdeflate-dev libzstd-dev libxxhash-dev libcurl4-openssl-dev libssl-dev libsqlite3-dev libpq-dev
  libjemalloc-dev libsodium-dev librdkafka-dev libvalijson-dev libmozjs-102-dev
  sqlite3 libgtest-dev libgmock-dev googletest clang-format clang-format-14)
# libmozjs-102-dev: SpiderMonkey 102, the JavaScript engine of user functions (src/functions).
# libsodium-dev: Argon2id password hashes, random tokens and SHA-256 of the admin API (src/admin).
# librdkafka-dev: the Kafka client (2.0.2): the kafka destination, and the coming cluster mode.
# libvalijson-dev: JSON Schema (draft-07) for tracking plans (src/governance), header-only.
# sqlite3: the CLI the README queries the embedded warehouse with.
# postgresql: the warehouse tests start a real PostgreSQL 15 (tests/e2e/pg.py).
# kcat: a Kafka command-line client, handy to look into the test broker (tests/kafka).
# openssl: the CLI the TLS tests make their self-signed certificates with (src/http, tests/e2e).
test_pkgs=(clang-14 libclang-rt-14-dev python3 python3-venv curl chromium postgresql kcat openssl)
bench_pkgs=(nginx wrk fio bc time libbenchmark-dev)

want=("${build_pkgs[@]}")
case "$level" in
  build) ;;
  test) want+=("${test_pkgs[@]}") ;;
  bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  # node/npm/python may come from outside Debian on a dev machine; accept a working binary.
  case "$p" in
    nodejs) command -v node >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
    python3) command -v python3 >/dev/null && continue ;;
    python3-venv) python3 -c 'import venv, ensurepip' 2>/dev/null && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The browser library (sdk/js) is bundled at build time by esbuild from its committed lock file;
# its node_modules are installed once (again only when the lock file changes).
root=$(cd "$(dirname "$0")/.." && pwd)
sdk="$root/sdk/js"
sdk_hash=$(cat "$sdk/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ ! -f "$sdk/node_modules/.sy-stamp" ] || [ "$(cat "$sdk/node_modules/.sy-stamp")" != "$sdk_hash" ]; then
  sdk_log=$(mktemp)
  if ! (cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error) >"$sdk_log" 2>&1; then
    echo "install-deps: npm ci in sdk/js failed:" >&2
    cat "$sdk_log" >&2
    rm -f "$sdk_log"
    exit 1
  fi
  rm -f "$sdk_log"
  echo "$sdk_hash" >"$sdk/node_modules/.sy-stamp"
fi
