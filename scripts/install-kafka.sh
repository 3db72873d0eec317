#!/usr/bin/env bash
# Assembles Apache Kafka (KRaft broker) for the tests only: it never ships in the product. Java 17
# and Maven come from Debian (installed when missing); `mvn dependency:copy-dependencies` on
# tests/kafka/pom.xml collects org.apache.kafka:kafka_2.13 and its runtime jars into
# build/tools/kafka-<version>/lib (or $1/lib), run as `java -cp 'lib/*' kafka.Kafka …` by
# tests/kafka/kafka_cluster.py.
# Idempotent: a stamp holds the pom's hash, so a second run exits at once without network; the
# first run downloads ~45 jars (~43 MB) into Maven's local repository and takes ~10 s to a minute.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=4.4.0 # keep in step with tests/kafka/pom.xml and tests/kafka/kafka_cluster.py
pom="$root/tests/kafka/pom.xml"
out=${1:-$root/build/tools/kafka-$version}
stamp="$out/.sy-stamp"
pom_hash=$(sha256sum "$pom" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$pom_hash" ] && [ -d "$out/lib" ]; then
  exit 0
fi

missing=()
if ! command -v java >/dev/null || ! java -version 2>&1 | grep -qE 'version "(1[7-9]|[2-9][0-9])'; then
  missing+=(openjdk-17-jre-headless)
fi
command -v mvn >/dev/null || missing+=(maven)
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-kafka: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Collect into a scratch directory and move it in place, so an interrupted run leaves no
# half-filled lib/ behind that a later run would take as complete.
mkdir -p "$out"
tmp=$(mktemp -d "$out/.lib.XXXXXX")
trap 'rm -rf "$tmp" "$tmp.log"' EXIT
if ! mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
  -DoutputDirectory="$tmp" -DincludeScope=runtime >"$tmp.log" 2>&1; then
  echo "install-kafka: mvn dependency:copy-dependencies failed:" >&2
  cat "$tmp.log" >&2
  rm -f "$tmp.log"
  exit 1
fi
rm -f "$tmp.log"
ls "$tmp"/kafka_2.13-"$version".jar >/dev/null
rm -rf "$out/lib"
mv "$tmp" "$out/lib"
echo "$pom_hash" >"$stamp"
echo "install-kafka: Kafka $version in ${out#$root/}"
