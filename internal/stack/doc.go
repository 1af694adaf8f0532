// Package stack holds the checks of the local service stack (scripts/services.sh,
// docker-compose.yml): that the real Kafka and OpenSearch it starts answer the way the rest
// of the project's integration tests rely on, that `up` is idempotent, and that the
// docker-compose file agrees with the script's defaults.
//
// The tests are behind the `integration` build tag and run with `make test`, which starts
// the stack and exports its environment (see docs/local-stack.md):
//
//	KAFKA_BROKERS, KAFKA_VERSION, OPENSEARCH_URL, OPENSEARCH_VERSION, OPENSEARCH_SNAPSHOT_DIR
//
// Run directly: make services-up && go test -tags integration ./internal/stack/
// The environment falls back to the stack's env file (.cache/services/env). A missing service
// is a test failure, never a skip.
package stack
