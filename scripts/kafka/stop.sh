#!/usr/bin/env bash
# Stops the broker that start.sh started: SIGTERM runs Kafka's controlled
# shutdown; SIGKILL after 30 s. Removes its folder unless CALLPUB_TEST_KAFKA_KEEP=1.
set -u
work=${CALLPUB_TEST_KAFKA_WORK:?run eval "\$(scripts/kafka/start.sh)" first}
if pid=$(cat "$work/broker.pid" 2>/dev/null) && kill -TERM "$pid" 2>/dev/null; then
  for _ in $(seq 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -KILL "$pid" 2>/dev/null || true
fi
[[ ${CALLPUB_TEST_KAFKA_KEEP:-} == 1 ]] || rm -rf "$work"
