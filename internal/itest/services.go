package itest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// pingTimeout bounds each service check in Services.
const pingTimeout = 10 * time.Second

// Services loads the environment and checks that Kafka (a metadata request
// listing the brokers) and OpenSearch (GET /) really answer. When either is
// missing it fails the test with a message naming the service and how to
// start it. It never skips.
func Services(t testing.TB) *Env {
	t.Helper()
	env, err := LoadEnv()
	if err != nil {
		t.Fatalf("itest: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), pingTimeout)
	defer cancel()
	var (
		wg               sync.WaitGroup
		kafkaErr, osErr  error
		brokers          int
		opensearchVer    string
		kafkaAt, osAtURL = strings.Join(env.KafkaBrokers, ","), env.OpenSearchURL
	)
	wg.Go(func() { brokers, kafkaErr = pingKafka(ctx, env) })
	wg.Go(func() { opensearchVer, osErr = pingOpenSearch(ctx, env) })
	wg.Wait()
	var missing []string
	if kafkaErr != nil {
		missing = append(missing, fmt.Sprintf("Kafka at %s (KAFKA_BROKERS): %v", kafkaAt, kafkaErr))
	}
	if osErr != nil {
		missing = append(missing, fmt.Sprintf("OpenSearch at %s (OPENSEARCH_URL): %v", osAtURL, osErr))
	}
	if len(missing) > 0 {
		from := "process environment and defaults"
		if env.EnvFile != "" {
			from = "process environment, then " + env.EnvFile
		}
		t.Fatalf("itest: real services are not available:\n  - %s\nStart them with `make services-up` (addresses from %s; REQUIRE_REAL_SERVICES=%v; integration tests fail rather than skip).",
			strings.Join(missing, "\n  - "), from, env.RequireRealServices)
	}
	env.KafkaBrokerCount, env.OpenSearchVersion = brokers, opensearchVer
	return env
}

func pingKafka(ctx context.Context, env *Env) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.KafkaBrokers...), kgo.DialTimeout(3*time.Second))
	if err != nil {
		return 0, fmt.Errorf("new client: %w", err)
	}
	defer cl.Close()
	brokers, err := kadm.NewClient(cl).ListBrokers(ctx)
	if err != nil {
		return 0, fmt.Errorf("list brokers: %w", err)
	}
	if len(brokers) == 0 {
		return 0, fmt.Errorf("metadata lists no brokers")
	}
	return len(brokers), nil
}

func pingOpenSearch(ctx context.Context, env *Env) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.OpenSearchURL+"/", nil)
	if err != nil {
		return "", fmt.Errorf("build request: %w", err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET /: %w", err)
	}
	defer res.Body.Close()
	var info struct {
		Version struct {
			Number       string `json:"number"`
			Distribution string `json:"distribution"`
		} `json:"version"`
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /: HTTP %s", res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(&info); err != nil {
		return "", fmt.Errorf("GET /: decode: %w", err)
	}
	if info.Version.Number == "" {
		return "", fmt.Errorf("GET /: no version.number in the answer (not OpenSearch?)")
	}
	return info.Version.Number, nil
}

// Kafka returns a franz-go client for env's brokers with opts added; it is
// closed when the test ends.
func Kafka(t testing.TB, env *Env, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(env.KafkaBrokers...)}, opts...)...)
	if err != nil {
		t.Fatalf("itest: Kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// OpenSearch returns an OpenSearch client for env; it is closed when the
// test ends.
func OpenSearch(t testing.TB, env *Env) *opensearchapi.Client {
	t.Helper()
	cl, err := newOpenSearch(env)
	if err != nil {
		t.Fatalf("itest: %v", err)
	}
	t.Cleanup(func() {
		if err := cl.Close(); err != nil {
			t.Logf("itest: close OpenSearch client: %v", err)
		}
	})
	return cl
}

func newOpenSearch(env *Env) (*opensearchapi.Client, error) {
	cl, err := opensearchapi.NewClient(opensearchapi.Config{
		Client: opensearch.Config{Addresses: []string{env.OpenSearchURL}},
	})
	if err != nil {
		return nil, fmt.Errorf("OpenSearch client for %s: %w", env.OpenSearchURL, err)
	}
	return cl, nil
}

// maxNameLen keeps names well inside Kafka's topic limit (249) and
// OpenSearch's index limit (255 bytes).
const maxNameLen = 100

// Name returns a lower-case name, unique per call, usable as a Kafka topic,
// consumer group or OpenSearch index: prefix, the test's name and a random
// suffix, made of [a-z0-9-] and starting with a letter.
func Name(t testing.TB, prefix string) string {
	t.Helper()
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("itest: random name suffix: %v", err)
	}
	return buildName(prefix, t.Name(), hex.EncodeToString(b[:]))
}

// buildName joins the sanitised prefix and test name and the suffix.
func buildName(prefix, testName, suffix string) string {
	p := sanitize(prefix)
	switch {
	case p == "":
		p = "it"
	case p[0] < 'a' || p[0] > 'z':
		p = "it-" + p
	}
	base := p
	if tn := sanitize(strings.TrimPrefix(testName, "Test")); tn != "" {
		base += "-" + tn
	}
	if limit := maxNameLen - len(suffix) - 1; len(base) > limit {
		base = strings.TrimRight(base[:limit], "-")
	}
	return base + "-" + suffix
}

// sanitize lower-cases s and maps every run of characters outside [a-z0-9]
// to one '-', trimming dashes at both ends.
func sanitize(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
			continue
		}
		dash = true
	}
	return b.String()
}
