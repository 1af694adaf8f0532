#!/usr/bin/env bash
# Version-matrix run (`make test-compat`, issue #10): for each OPENSEARCH:KAFKA pair in
# COMPAT_PAIRS, take the local stack down, bring it up fresh with that pair, run the
# COMPAT_TESTS against it and take it down again. Prints the wall time of each pair, always
# leaves the stack down (also on failure or Ctrl-C) and exits non-zero if any pair failed.
#
# env: COMPAT_PAIRS   e.g. "3.8.0:4.4.0 2.19.1:3.9.1" (OpenSearch version:Kafka version)
#      COMPAT_TESTS   go test -run pattern
#      COMPAT_TIMEOUT go test -timeout (default 20m)
#      GO             go binary (default go)
# plus everything scripts/services.sh reads (ports, SERVICES_DIR, ...).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SERVICES=$ROOT/scripts/services.sh
: "${COMPAT_PAIRS:=3.8.0:4.4.0 2.19.1:3.9.1}"
: "${COMPAT_TESTS:=TestWalkingSkeleton|TestConvergence|TestSnapshotGap}"
: "${COMPAT_TIMEOUT:=20m}"
: "${GO:=go}"

log() { printf '[compat] %s\n' "$*"; }

# Whatever happens, the stack is down when this script ends.
finish() {
  local rc=$?
  "$SERVICES" down >/dev/null 2>&1 || true
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_pair OPENSEARCH KAFKA -> runs the compat tests against a fresh stack of that pair.
run_pair() {
  local os=$1 kafka=$2
  "$SERVICES" down
  # `run` starts the stack (fresh: it is down), exports its env, runs the tests and, because it
  # started the stack, takes it down afterwards -- also when the tests fail.
  OPENSEARCH_VERSION=$os KAFKA_VERSION=$kafka KEEP_SERVICES=0 "$SERVICES" run -- \
    env REQUIRE_REAL_SERVICES=1 REINDEXER_COMPAT=1 \
    "$GO" test -race -tags integration -count=1 -timeout "$COMPAT_TIMEOUT" -run "$COMPAT_TESTS" ./...
}

main() {
  local -a summary=()
  local failed=0 pair os kafka t0 rc secs
  read -r -a pairs <<<"$COMPAT_PAIRS"
  ((${#pairs[@]} > 0)) || { log "COMPAT_PAIRS is empty"; exit 2; }
  for pair in "${pairs[@]}"; do
    [[ $pair == *:* ]] || { log "bad pair '$pair' (want OPENSEARCH:KAFKA, e.g. 2.19.1:3.9.1)"; exit 2; }
    os=${pair%%:*}; kafka=${pair#*:}
    log "=== OpenSearch $os + Kafka $kafka: go test -run '$COMPAT_TESTS' ==="
    t0=$SECONDS; rc=0
    run_pair "$os" "$kafka" || rc=$?
    secs=$((SECONDS - t0))
    if ((rc == 0)); then
      summary+=("PASS  OpenSearch $os + Kafka $kafka  ${secs}s")
    else
      summary+=("FAIL  OpenSearch $os + Kafka $kafka  ${secs}s (exit $rc)")
      failed=1
    fi
    log "=== OpenSearch $os + Kafka $kafka: $( ((rc == 0)) && echo PASS || echo "FAIL (exit $rc)") in ${secs}s ==="
  done
  log "summary:"
  printf '  %s\n' "${summary[@]}"
  return "$failed"
}

main "$@"
