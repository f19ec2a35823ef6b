#!/usr/bin/env bash
# Prints the folder that holds the Kafka broker's jars, filling it with mvn first
# if needed. The folder is named after pom.xml's hash, so a version bump gets a
# fresh folder instead of mixing old and new jars.
set -euo pipefail

if [[ -n ${CALLPUB_TEST_KAFKA_LIBS:-} ]]; then
  echo "$CALLPUB_TEST_KAFKA_LIBS"
  exit 0
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
pom=$root/publisher/kafkatest/pom.xml
cache=${CALLPUB_TEST_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/callpub-kafka}
libs=$cache/$(sha256sum "$pom" | cut -c1-12)/libs
if [[ -d $libs ]]; then
  echo "$libs"
  exit 0
fi

command -v mvn >/dev/null || { echo "fetch.sh: mvn not found and no jars in $libs" >&2; exit 1; }
mkdir -p "${libs%/libs}"
stage=$(mktemp -d "${libs%/libs}/fetch-XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp "$pom" "$stage/pom.xml"          # run Maven outside the repository
mvn -B -q -Dstyle.color=never -f "$stage/pom.xml" \
  org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$stage/libs" >&2

ls "$stage/libs"/kafka_2.13-*.jar >/dev/null 2>&1 \
  || { echo "fetch.sh: no kafka_2.13 jar was copied" >&2; exit 1; }
bindings=()                          # exactly one SLF4J 1.7 binding, or no logs
for jar in "$stage/libs"/*.jar; do
  case ${jar##*/} in
    log4j-slf4j-impl-* | log4j-slf4j2-impl-* | slf4j-reload4j-* | slf4j-log4j12-* | \
    slf4j-simple-* | slf4j-jdk14-* | slf4j-nop-* | logback-classic-*) bindings+=("${jar##*/}") ;;
  esac
done
case "${#bindings[@]}:${bindings[*]:-}" in
  1:log4j-slf4j-impl-* | 1:slf4j-reload4j-*) ;;
  *) echo "fetch.sh: want one SLF4J 1.7 binding, got: ${bindings[*]:-none}" >&2; exit 1 ;;
esac
[[ -d $libs ]] || mv "$stage/libs" "$libs"   # a parallel run may have finished first
echo "$libs"
