#!/usr/bin/env bash
# Starts one Apache Kafka broker (KRaft, combined broker+controller) on 127.0.0.1
# and prints `export` lines for the caller to eval:
#   eval "$(scripts/kafka/start.sh)"
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

LIBS=$("$here/fetch.sh")
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
# free_port: a loopback port nobody uses, chosen below the kernel's ephemeral
# range (ip_local_port_range, 32768-60999 by default). A port inside that range
# can be taken at any moment as the local end of an outgoing connection, even by
# the broker itself: its own client dialling the controller port before the
# controller listens can land on that very port (TCP self-connect), and the
# controller then fails with "Address already in use" (seen in CI).
ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
if ((ephemeral_low > 11024)); then port_lo=10000 port_hi=$((ephemeral_low - 1)); else port_lo=61000 port_hi=65000; fi
port_taken() {
  # Any socket on that local port (listening, connected, TIME_WAIT) counts.
  if command -v ss >/dev/null && [[ -n $(ss -Htan "( sport = :$1 )" 2>/dev/null) ]]; then
    return 0
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((port_lo + (RANDOM * 32768 + RANDOM) % (port_hi - port_lo + 1)))
    if ! port_taken "$p"; then
      echo "$p"
      return 0
    fi
  done
  echo "start.sh: no free port found in $port_lo-$port_hi" >&2
  return 1
}
JVM_OPTS=${CALLPUB_TEST_KAFKA_JVM_OPTS:--Xms512m -Xmx1g}

# kafka_ready HOST PORT: send ApiVersions v0 and succeed only on error_code 0.
# A bare TCP connect is not enough: the port accepts before the broker serves.
kafka_ready() {
  # shellcheck disable=SC2016  # the script is expanded by the inner bash
  timeout 5 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    # size=15, api_key=18, api_version=0, correlation_id=7, client_id="probe"
    printf "\x00\x00\x00\x0f\x00\x12\x00\x00\x00\x00\x00\x07\x00\x05probe" >&3
    reply=$(head -c 10 <&3 | od -An -tx1 | tr -d " \n")
    [[ ${reply:8:12} == 000000070000 ]]   # correlation_id 7, error_code 0
  ' "$1" "$2" 2>/dev/null
}

# summary FILE: the lines of a broker log that say why it stopped, first
# ("Caused by"/ERROR/FATAL, deduplicated), then its last lines.
summary() {
  echo "--- why (from $1):"
  grep -E '(^Caused by:|\] (ERROR|FATAL) |Exception: )' "$1" | awk '!seen[$0]++' | head -n 15
  echo "--- last lines:"
  tail -n 25 "$1"
}

# start_once: one attempt on fresh ports. Returns 0 when the broker serves,
# 75 when it lost a port race (worth another attempt), 1 otherwise.
start_once() {
  PORT=${CALLPUB_TEST_KAFKA_PORT:-$(free_port)} || return 1
  CONTROLLER_PORT=${CALLPUB_TEST_KAFKA_CONTROLLER_PORT:-$(free_port)} || return 1
  while [[ $CONTROLLER_PORT == "$PORT" ]]; do CONTROLLER_PORT=$(free_port) || return 1; done
  for p in "$PORT" "$CONTROLLER_PORT"; do
    if port_taken "$p"; then
      echo "start.sh: port $p is already in use (an old broker?)" >&2
      return 1
    fi
  done

  WORK=$(mktemp -d -t callpub-kafka.XXXXXX)    # under $TMPDIR

  cat >"$WORK/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${CONTROLLER_PORT}
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:${PORT},CONTROLLER://127.0.0.1:${CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${PORT}
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${WORK}/data
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS

  cat >"$WORK/log4j2.properties" <<'L4J2'
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
L4J2

  cat >"$WORK/log4j.properties" <<'L4J1'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
L4J1

  # Kafka 4.x reads the first file, 3.9 the second; each ignores the other property.
  LOG_OPTS=(-Dlog4j2.configurationFile="$WORK/log4j2.properties"
            -Dlog4j.configuration="file:$WORK/log4j.properties")

  # A 22-character base64url id, the form `kafka-storage random-uuid` prints;
  # one starting with '-' would be read as an option, so draw again.
  CLUSTER_ID=-
  while [[ $CLUSTER_ID == -* ]]; do
    CLUSTER_ID=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  done

  "$JAVA" -Xmx256m "${LOG_OPTS[@]}" -cp "$LIBS/*" \
    kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$WORK/server.properties" \
    >"$WORK/format.log" 2>&1 || { cat "$WORK/format.log" >&2; return 1; }

  # shellcheck disable=SC2086  # JVM_OPTS is a list of flags
  nohup "$JAVA" $JVM_OPTS -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true "${LOG_OPTS[@]}" -cp "$LIBS/*" \
    kafka.Kafka "$WORK/server.properties" >"$WORK/broker.log" 2>&1 </dev/null &
  echo $! >"$WORK/broker.pid"

  local deadline=$((SECONDS + ${CALLPUB_TEST_KAFKA_START_TIMEOUT:-120}))
  until kafka_ready 127.0.0.1 "$PORT"; do
    if ! kill -0 "$(cat "$WORK/broker.pid")" 2>/dev/null; then
      if grep -q 'Address already in use' "$WORK/broker.log"; then
        echo "start.sh: port $PORT or $CONTROLLER_PORT was taken before the broker bound it (Address already in use)" >&2
        rm -rf "$WORK"
        return 75
      fi
      echo "start.sh: the broker exited during startup" >&2
      summary "$WORK/broker.log" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "start.sh: no answer from 127.0.0.1:$PORT in time" >&2
      summary "$WORK/broker.log" >&2
      CALLPUB_TEST_KAFKA_WORK=$WORK "$here/stop.sh"
      return 1
    fi
    sleep 0.3
  done
}

attempts=${CALLPUB_TEST_KAFKA_START_ATTEMPTS:-3}
for ((attempt = 1; ; attempt++)); do
  rc=0
  start_once || rc=$?
  ((rc == 0)) && break
  if ((rc != 75)); then
    exit 1
  elif ((attempt >= attempts)); then
    echo "start.sh: giving up after $attempts attempts" >&2
    exit 1
  fi
  echo "start.sh: attempt $attempt of $attempts failed; trying again on other ports" >&2
done

VERSION=$(cd "$LIBS" && ls kafka_2.13-*.jar | sed -E 's/^kafka_2\.13-(.*)\.jar$/\1/' | head -1)
echo "start.sh: Apache Kafka $VERSION broker (KRaft, $("$JAVA" -version 2>&1 | head -1)) ready at 127.0.0.1:$PORT, files in $WORK" >&2
echo "export CALLPUB_TEST_KAFKA_BROKERS=127.0.0.1:$PORT"
echo "export CALLPUB_TEST_KAFKA_WORK=$WORK"
