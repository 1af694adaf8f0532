//go:build integration

package consumer_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/reindexer/reindexer/consumer"
	"github.com/reindexer/reindexer/indexer"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// short reports whether the compat suite asked for the short form.
func short() bool { return testing.Short() || os.Getenv("REINDEXER_COMPAT") == "1" }

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func bulkClient(t testing.TB, env *itest.Env) *opensearch.Client {
	t.Helper()
	c, err := opensearch.NewClient(opensearch.Config{Addresses: []string{env.OpenSearchURL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newIndexer(t testing.TB, env *itest.Env, index string, mode indexer.DeleteMode) *indexer.Indexer {
	t.Helper()
	ix, err := indexer.New(bulkClient(t, env), indexer.Config{Index: index, DeleteMode: mode, Logger: testLogger(t),
		RetryInitial: 20 * time.Millisecond, RetryMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func baseConfig(t testing.TB, env *itest.Env, topic, group string, ix *indexer.Indexer) consumer.Config {
	return consumer.Config{
		Topic:          topic,
		Group:          group,
		Kafka:          []kgo.Opt{kgo.SeedBrokers(env.KafkaBrokers...)},
		Indexer:        ix,
		DLQTopic:       topic + ".dlq",
		CommitInterval: 200 * time.Millisecond,
		SessionTimeout: 6 * time.Second,
		Logger:         testLogger(t),
	}
}

// runUntilCommitted runs a Service until the group's commits reach ends,
// then stops it gracefully and returns its summary.
func runUntilCommitted(t testing.TB, env *itest.Env, cfg consumer.Config, ends map[int32]int64) consumer.Summary {
	t.Helper()
	svc, err := consumer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	if err := waitCommitted(t, env, cfg.Group, cfg.Topic, ends, 3*time.Minute, done); err != nil {
		cancel()
		<-done
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
	return svc.Summary()
}

// waitCommitted polls the group's committed offsets until each partition in
// ends has reached its end.
func waitCommitted(t testing.TB, env *itest.Env, group, topic string, ends map[int32]int64, timeout time.Duration, died <-chan error) error {
	t.Helper()
	adm := kadm.NewClient(itest.Kafka(t, env))
	deadline := time.Now().Add(timeout)
	var last kadm.OffsetResponses
	for time.Now().Before(deadline) {
		select {
		case err := <-died:
			return fmt.Errorf("service stopped early: %v", err)
		default:
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		fetched, err := adm.FetchOffsets(ctx, group)
		cancel()
		if err == nil && fetched.Error() == nil {
			last = fetched
			ok := true
			for p, end := range ends {
				o, found := fetched.Lookup(topic, p)
				if !found || o.At < end {
					ok = false
					break
				}
			}
			if ok {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond) // polling interval of an awaited condition
	}
	return fmt.Errorf("group %s did not commit up to %v within %s; last commits %v", group, ends, timeout, last)
}
