#!/usr/bin/env bash
# Runs a command with CALLPUB_TEST_KAFKA_BROKERS naming one broker that every
# test package shares, then stops that broker:
#   scripts/kafka/with-broker.sh go test ./...
# Without java (or without mvn and cached jars) it runs the command as it is,
# and publisher/kafkatest picks a container or kfake, unless CALLPUB_TEST_KAFKA=real.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mode=${CALLPUB_TEST_KAFKA:-auto}

if [[ -z ${CALLPUB_TEST_KAFKA_BROKERS:-} && $mode != fake ]]; then
  if command -v "${JAVA_HOME:+$JAVA_HOME/bin/}java" >/dev/null && env=$("$here/start.sh"); then
    eval "$env"
    trap '"$here/stop.sh" || true' EXIT
  elif [[ $mode == real ]]; then
    echo "with-broker.sh: CALLPUB_TEST_KAFKA=real, but no broker could be started from jars" >&2
    exit 1
  else
    echo "with-broker.sh: no jar broker; each test package will choose its own" >&2
  fi
fi
"$@"
