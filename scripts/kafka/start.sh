#!/usr/bin/env bash
# Starts one Apache Kafka broker (KRaft, combined broker+controller) on 127.0.0.1
# and prints `export` lines for the caller to eval:
#   eval "$(scripts/kafka/start.sh)"
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

LIBS=$("$here/fetch.sh")
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
# free_port: a loopback port nobody listens on (random in 20000-59999).
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "start.sh: no free port found" >&2
  return 1
}
# Fixed ports when asked for; otherwise free ones, so two runs never collide.
PORT=${CALLPUB_TEST_KAFKA_PORT:-$(free_port)}
CONTROLLER_PORT=${CALLPUB_TEST_KAFKA_CONTROLLER_PORT:-$(free_port)}
while [[ $CONTROLLER_PORT == "$PORT" ]]; do CONTROLLER_PORT=$(free_port); done
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

for p in "$PORT" "$CONTROLLER_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "start.sh: port $p is already in use (an old broker?)" >&2
    exit 1
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

# A 22-character base64url id, the form `kafka-storage random-uuid` prints.
CLUSTER_ID=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')

"$JAVA" -Xmx256m "${LOG_OPTS[@]}" -cp "$LIBS/*" \
  kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$WORK/server.properties" \
  >"$WORK/format.log" 2>&1 || { cat "$WORK/format.log" >&2; exit 1; }

# shellcheck disable=SC2086  # JVM_OPTS is a list of flags
nohup "$JAVA" $JVM_OPTS -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
  -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
  -Djava.awt.headless=true "${LOG_OPTS[@]}" -cp "$LIBS/*" \
  kafka.Kafka "$WORK/server.properties" >"$WORK/broker.log" 2>&1 </dev/null &
echo $! >"$WORK/broker.pid"

deadline=$((SECONDS + ${CALLPUB_TEST_KAFKA_START_TIMEOUT:-120}))
until kafka_ready 127.0.0.1 "$PORT"; do
  if ! kill -0 "$(cat "$WORK/broker.pid")" 2>/dev/null; then
    echo "start.sh: the broker exited during startup; last lines of $WORK/broker.log:" >&2
    tail -n 60 "$WORK/broker.log" >&2
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    echo "start.sh: no answer from 127.0.0.1:$PORT in time; last lines of $WORK/broker.log:" >&2
    tail -n 60 "$WORK/broker.log" >&2
    CALLPUB_TEST_KAFKA_WORK=$WORK "$here/stop.sh"
    exit 1
  fi
  sleep 0.3
done

VERSION=$(cd "$LIBS" && ls kafka_2.13-*.jar | sed -E 's/^kafka_2\.13-(.*)\.jar$/\1/' | head -1)
echo "start.sh: Apache Kafka $VERSION broker (KRaft, $("$JAVA" -version 2>&1 | head -1)) ready at 127.0.0.1:$PORT, files in $WORK" >&2
echo "export CALLPUB_TEST_KAFKA_BROKERS=127.0.0.1:$PORT"
echo "export CALLPUB_TEST_KAFKA_WORK=$WORK"
