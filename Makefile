# reindexer -- developer entry points. `make help` lists them.
#
# Service versions and ports default in scripts/services.sh (single source of truth) and are
# overridden from the command line or the environment, e.g.
#   make services-up OPENSEARCH_VERSION=3.8.0 KAFKA_VERSION=4.4.0
#   make test KAFKA_PORT=19092 OPENSEARCH_PORT=19200
# (command-line variables are exported to the scripts by make).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

GO       ?= go
SERVICES := scripts/services.sh
# Runs a command with the local stack up and its env (.cache/services/env) exported. It starts
# the stack if needed and then takes it down again (also on failure); a stack that was already
# up is reused and left up. KEEP_SERVICES=1 always leaves it up.
WITH_SERVICES := $(SERVICES) run --

TEST_TIMEOUT        ?= 25m
# make bench: events in the end-to-end streams (BenchmarkEndToEnd, BenchmarkFigures).
BENCH_EVENTS        ?= 300000
# Fuzz targets (name:package), run by `make fuzz` for FUZZTIME each and by `make test` for
# TEST_FUZZTIME each; a crash is saved under the package's testdata/fuzz and becomes a test.
FUZZ_TARGETS  ?= FuzzDocument:./internal/jsonscan FuzzFields:./internal/jsonscan FuzzStrings:./internal/jsonscan \
                 FuzzParseInt:./internal/jsonscan FuzzDecode:./event FuzzParseBulkResponse:./indexer
FUZZTIME      ?= 2m
TEST_FUZZTIME ?= 10s
# The fault tests' private Kafka + OpenSearch (cmd/reindexer/chaos_stack_test.go): stopped after
# test and chaos even when go test is killed.
CHAOS_RESULTS    ?= .cache/chaos-results
STOP_CHAOS_STACK := SERVICES_DIR=$(CURDIR)/.cache/chaos-services $(SERVICES) down >/dev/null 2>&1 || true
STATICCHECK_VERSION ?= v0.8.2
# test-compat: OPENSEARCH:KAFKA pairs and the tests run against each pair.
COMPAT_PAIRS   ?= 3.8.0:4.4.0 2.19.1:3.9.1
COMPAT_TESTS   ?= TestWalkingSkeleton|TestConvergence|TestSnapshotGap|TestClusterCompat|TestKafkaAnswers|TestOpenSearchAnswers
COMPAT_TIMEOUT ?= 20m
export COMPAT_PAIRS COMPAT_TESTS COMPAT_TIMEOUT GO

.PHONY: help build services-up services-down services-status test test-unit fuzz lint demo bench bench-parity bench-gentle \
        chaos test-compat clean distclean

help: ## show this help
	@echo 'usage: make <target> [VAR=value ...]'
	@echo
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z_-]+:.*## / { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo
	@echo 'service defaults (override as VAR=value; see docs/local-stack.md):'
	@$(SERVICES) defaults | sed 's/^/  /'
	@echo '  COMPAT_PAIRS="$(COMPAT_PAIRS)"  COMPAT_TESTS="$(COMPAT_TESTS)"'

build: ## build bin/reindexer
	$(GO) build -o bin/reindexer ./cmd/reindexer

services-up: ## fetch (first use) and start real Kafka + OpenSearch on 127.0.0.1; idempotent
	$(SERVICES) up

services-down: ## stop the local services (TERM, then KILL after 30 s)
	$(SERVICES) down

services-status: ## show pids, versions, health, RSS and the env of the local services
	$(SERVICES) status

# `make test` starts a fresh stack and stops it at the end, also on failure, keeping go's exit
# code. If a healthy stack of the same versions was already up (developer mode) it is reused
# as is (NOT wiped) and left running. CI always starts from a stopped stack.
test: ## go vet + all tests (-race, integration tag) against the real services, then each fuzz target for 10s
	$(WITH_SERVICES) bash -c '\
	  set -euo pipefail; \
	  trap "$(STOP_CHAOS_STACK)" EXIT; \
	  echo "+ go vet ./..."; $(GO) vet ./...; \
	  echo "+ go vet -tags integration ./..."; $(GO) vet -tags integration ./...; \
	  echo "+ go test -race -tags integration -count=1 -timeout $(TEST_TIMEOUT) ./..."; \
	  REQUIRE_REAL_SERVICES=1 $(GO) test -race -tags integration -count=1 -timeout $(TEST_TIMEOUT) ./...'
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(TEST_FUZZTIME)

test-unit: ## unit tests only (-race, no integration tag, no services)
	$(GO) test -race ./...

lint: ## gofmt -l, go vet, staticcheck (STATICCHECK_VERSION, fetched via the Go proxy)
	@files=$$(find . -name '*.go' -not -path './.cache/*' -not -path './.git/*'); \
	  out=$$([ -z "$$files" ] || gofmt -l $$files); \
	  if [ -n "$$out" ]; then echo "gofmt -l lists (run gofmt -w):"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags integration ./...

demo: services-up ## the migration story on the local stack: live indexer, snapshot, restore, gap replay, counts
	scripts/demo.sh

bench: ## benchmarks (integration tag) against the real services; BENCH_EVENTS=10000000 for the long form
	$(WITH_SERVICES) env REQUIRE_REAL_SERVICES=1 REINDEXER_BENCH_EVENTS=$(BENCH_EVENTS) \
	  $(GO) test -tags integration -run '^$$' -bench . -skip 'BenchmarkGentle|BenchmarkParity' -benchmem -timeout 120m ./...

bench-parity: ## reindexer parity on two 1M-document indices and a 1M-event topic: time and peak RSS per mode
	$(WITH_SERVICES) env REQUIRE_REAL_SERVICES=1 REINDEXER_BENCH_PARITY_DOCS=$${REINDEXER_BENCH_PARITY_DOCS:-1000000} \
	  $(GO) test -tags integration -run '^$$' -bench BenchmarkParity -benchtime 1x -timeout 60m ./cmd/reindexer

bench-gentle: ## search latency during a replay of 1M events: idle, unthrottled, gentle; --max-rate over a minute; a rejecting node (docs/performance.md)
	$(WITH_SERVICES) env REQUIRE_REAL_SERVICES=1 REINDEXER_BENCH_EVENTS=$${REINDEXER_BENCH_EVENTS:-1000000} \
	  REINDEXER_GENTLE_PHASE=$${REINDEXER_GENTLE_PHASE:-60s} REINDEXER_GENTLE_RATE=$${REINDEXER_GENTLE_RATE:-250,2000,10000} \
	  $(GO) test -tags integration -run '^$$' -bench BenchmarkGentle -benchtime 1x -timeout 60m ./cmd/reindexer
	@echo '+ the fourth phase: a node rejecting 30% of bulk items through the fault proxy (also in make test)'
	$(WITH_SERVICES) env REQUIRE_REAL_SERVICES=1 $(GO) test -tags integration -count=1 -v -run '^TestGentleBacksOffAndRecovers$$' ./consumer

chaos: ## long fault scenarios (restarts, partitions, dropped connections, kill loop, rebalance storm, disk pressure) -> docs/reliability.md
	rm -rf $(CHAOS_RESULTS)
	$(WITH_SERVICES) bash -c '\
	  trap "$(STOP_CHAOS_STACK)" EXIT; rc=0; \
	  REQUIRE_REAL_SERVICES=1 REINDEXER_CHAOS=long REINDEXER_CHAOS_RESULTS=$(CURDIR)/$(CHAOS_RESULTS) \
	    $(GO) test -tags integration -count=1 -v -run "Chaos|Crash|Rebalance" -timeout 100m ./... || rc=1; \
	  $(GO) run ./internal/chaosreport/render -in $(CHAOS_RESULTS) -out docs/reliability.md || rc=1; \
	  exit $$rc'

fuzz: ## run each go test -fuzz target for FUZZTIME (default 2m; make test runs each for TEST_FUZZTIME)
	@for t in $(FUZZ_TARGETS); do \
	  echo "+ go test -run '^$$' -fuzz '^$${t%%:*}$$' -fuzztime $(FUZZTIME) $${t#*:}"; \
	  $(GO) test -run '^$$' -fuzz "^$${t%%:*}\$$" -fuzztime $(FUZZTIME) "$${t#*:}" || exit 1; \
	done

test-compat: ## run COMPAT_TESTS against each OPENSEARCH:KAFKA pair of COMPAT_PAIRS (fresh stack each)
	scripts/compat.sh

clean: services-down ## stop services, remove bin/ and service state (keeps the downloaded jars)
	rm -rf bin .cache/services/kafka .cache/services/opensearch .cache/services/env

distclean: clean ## clean + remove the downloaded jars (next services-up fetches again)
	rm -rf .cache
