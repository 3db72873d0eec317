#!/usr/bin/env bash
# Builds SeaweedFS's `weed` (an S3-compatible server that verifies SigV4 signatures) from the Go
# module proxy, for the archive's S3 tests only: Go and SeaweedFS never ship in the product.
# Idempotent: the binary is cached at build/tools/weed (or $1) and the script exits at once when
# it is there. A fresh build downloads ~300 modules and compiles for ~10-20 minutes on 2 cores;
# later builds reuse Go's module and build caches.
#
# `go install …@version` refuses SeaweedFS (its go.mod has replace directives), so the script
# builds it from a scratch module that copies SeaweedFS's go.mod (module renamed) and go.sum and
# imports weed/command.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/tools/weed}
version=v0.0.0-20261109003541-7506e5f91cd6
if [ -x "$out" ]; then
  exit 0
fi
if ! command -v go >/dev/null; then
  for g in /usr/local/go/bin/go /usr/lib/go/bin/go; do
    [ -x "$g" ] && export PATH="$(dirname "$g"):$PATH" && break
  done
fi
if ! command -v go >/dev/null; then
  echo "install-seaweedfs: Go >= 1.21 is not installed (Debian 12: golang-1.22 from bookworm-backports, or go.dev/dl)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "install-seaweedfs: building SeaweedFS $version (first time: 10-20 minutes)"
cd "$work"
# Fetch the module source into the module cache to read its go.mod and go.sum.
mod_dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/seaweedfs/seaweedfs@$version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$mod_dir" ] || [ ! -f "$mod_dir/go.mod" ]; then
  echo "install-seaweedfs: cannot download github.com/seaweedfs/seaweedfs@$version" >&2
  exit 1
fi
sed 's|^module .*|module switchyard.local/weedbuild|' "$mod_dir/go.mod" >go.mod
cp "$mod_dir/go.sum" go.sum
chmod u+w go.mod go.sum
printf '\nrequire github.com/seaweedfs/seaweedfs %s\n' "$version" >>go.mod
cat >tools.go <<'GO'
package main

import _ "github.com/seaweedfs/seaweedfs/weed/command"

func main() {}
GO
mkdir -p "$(dirname "$out")"
GOFLAGS=-mod=mod go build -o "$out.tmp" github.com/seaweedfs/seaweedfs/weed
mv "$out.tmp" "$out"
echo "install-seaweedfs: $out"
