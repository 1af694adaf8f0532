package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/reindexer/reindexer/internal/osreq"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Fixed test credentials (the AWS documentation's example key pair).
const (
	testAccessKey    = "AKIDEXAMPLE"
	testSecretKey    = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testSessionToken = "session-token-example"
)

var testCreds = aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey, SessionToken: testSessionToken}

// verifySigV4 checks r's SigV4 signature the way AWS does: it recomputes the
// signature with the AWS SDK's signer from the signed headers, the body's
// hash and the request's own X-Amz-Date, for creds, region and service, and
// checks that the date is within 5 minutes of now (a fixed time in tests).
func verifySigV4(r *http.Request, body []byte, creds aws.Credentials, region, service string, now time.Time) error {
	auth := r.Header.Get("Authorization")
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return fmt.Errorf("no SigV4 Authorization header (got %q)", auth)
	}
	parts := map[string]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(auth, algo), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		parts[k] = v
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	if got := r.Header.Get("X-Amz-Content-Sha256"); got != hash {
		return fmt.Errorf("X-Amz-Content-Sha256 %s does not match the body's %s", got, hash)
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("X-Amz-Date: %w", err)
	}
	if d := now.Sub(at); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("X-Amz-Date %s is %s away from now", at, d)
	}
	wantScope := fmt.Sprintf("%s/%s/%s/%s/aws4_request", creds.AccessKeyID, at.Format("20060102"), region, service)
	if parts["Credential"] != wantScope {
		return fmt.Errorf("credential scope %q, want %q", parts["Credential"], wantScope)
	}
	if r.Header.Get("X-Amz-Security-Token") != creds.SessionToken {
		return errors.New("session token missing or wrong")
	}
	re, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return err
	}
	re.ContentLength = r.ContentLength
	for _, h := range strings.Split(parts["SignedHeaders"], ";") {
		if h == "host" || h == "content-length" {
			continue
		}
		for _, v := range r.Header.Values(h) {
			re.Header.Add(h, v)
		}
	}
	re.Header.Del("Authorization")
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, re, hash, service, region, at); err != nil {
		return fmt.Errorf("re-sign: %w", err)
	}
	if got, want := auth, re.Header.Get("Authorization"); got != want {
		return fmt.Errorf("signature mismatch:\n got  %s\n want %s", got, want)
	}
	return nil
}

// sigV4Server is a stand-in for an Amazon OpenSearch Service domain that
// answers only correctly signed requests, and records what it saw.
type sigV4Server struct {
	*httptest.Server
	region, service string

	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	method, path, encoding string
	body                   []byte
	err                    error
}

func newSigV4Server(t *testing.T, region, service string) *sigV4Server {
	s := &sigV4Server{region: region, service: service}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := verifySigV4(r, body, testCreds, region, service, time.Now())
		s.mu.Lock()
		s.seen = append(s.seen, seenRequest{r.Method, r.URL.RequestURI(), r.Header.Get("Content-Encoding"), body, err})
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(map[string]string{"message": "The request signature we calculated does not match the signature you provided. " + err.Error()})
			return
		}
		switch {
		case r.URL.Path == "/":
			fmt.Fprint(w, `{"version":{"number":"2.19.1","distribution":"opensearch"}}`)
		case strings.HasSuffix(r.URL.Path, "/_bulk"):
			fmt.Fprint(w, `{"took":1,"errors":false,"items":[{"index":{"_id":"r42-m1","_version":7,"status":201,"result":"created"}}]}`)
		case strings.HasPrefix(r.URL.Path, "/_snapshot/"):
			fmt.Fprint(w, `{"acknowledged":true,"snapshots":[]}`)
		default:
			fmt.Fprint(w, `{}`)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sigV4Server) requests() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenRequest(nil), s.seen...)
}

// isolateAWS points the AWS configuration chain at fixed environment
// credentials only: no shared files, no instance metadata.
func isolateAWS(t *testing.T, region string) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           testAccessKey,
		"AWS_SECRET_ACCESS_KEY":       testSecretKey,
		"AWS_SESSION_TOKEN":           testSessionToken,
		"AWS_REGION":                  region,
		"AWS_DEFAULT_REGION":          "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ROLE_ARN":                "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "",
	} {
		t.Setenv(k, v)
	}
}

// TestSigV4Signing: with --opensearch-auth aws, every request the admin and
// bulk clients send — cluster info, the snapshot API (a GET and a PUT with
// a JSON body), bulk bodies plain and gzipped — carries a SigV4 signature
// that the AWS SDK's signer reproduces for the fixed credentials from the
// standard chain (here: the environment), with the right region and service.
func TestSigV4Signing(t *testing.T) {
	for _, svc := range []string{"es", "aoss"} {
		for _, gz := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/gzip=%v", svc, gz), func(t *testing.T) {
				isolateAWS(t, "eu-west-1")
				srv := newSigV4Server(t, "eu-west-1", svc)
				fs := flag.NewFlagSet("t", flag.ContinueOnError)
				var o osFlags
				o.register(fs)
				args := []string{"--opensearch", srv.URL, "--opensearch-auth", "aws", "--opensearch-aws-service", svc}
				if gz {
					args = append(args, "--opensearch-gzip")
				}
				if err := parseFlags(fs, args, func(string) string { return "" }); err != nil {
					t.Fatal(err)
				}
				admin, bulk, err := o.clients(1)
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				if err := reachOpenSearch(admin)(ctx); err != nil {
					t.Fatalf("cluster info: %v", err)
				}
				if _, err := osreq.Do(ctx, admin, http.MethodPut, "/_snapshot/nightly",
					[]byte(`{"type":"s3","settings":{"bucket":"snapshots","region":"eu-west-1","role_arn":"arn:aws:iam::123456789012:role/snapshots"}}`)); err != nil {
					t.Fatalf("register snapshot repository: %v", err)
				}
				if _, err := osreq.Do(ctx, admin, http.MethodGet, "/_snapshot/nightly/snap-2026.11.25", nil); err != nil {
					t.Fatalf("snapshot info: %v", err)
				}
				doc := `{"index":{"_id":"r42-m1","version":7,"version_type":"external"}}` + "\n" +
					`{"room_id":"r42","body":"こんにちは +/=?&%"}` + "\n"
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "/messages/_bulk?filter_path=errors,items.*.status", strings.NewReader(doc))
				req.Header.Set("Content-Type", "application/x-ndjson")
				res, err := bulk.Stream(req)
				if err != nil {
					t.Fatalf("bulk: %v", err)
				}
				res.Body.Close()
				if res.StatusCode != 200 {
					t.Fatalf("bulk: HTTP %d", res.StatusCode)
				}
				seen := srv.requests()
				if len(seen) != 4 {
					t.Fatalf("server saw %d requests, want 4: %+v", len(seen), seen)
				}
				for _, s := range seen {
					if s.err != nil {
						t.Errorf("%s %s: %v", s.method, s.path, s.err)
					}
				}
				b := seen[3]
				if b.method != http.MethodPost || !strings.HasPrefix(b.path, "/messages/_bulk") || len(b.body) == 0 {
					t.Fatalf("last request %s %s (%d bytes), want the bulk", b.method, b.path, len(b.body))
				}
				if gz != (b.encoding == "gzip") {
					t.Errorf("bulk Content-Encoding %q with --opensearch-gzip=%v", b.encoding, gz)
				}
				if !gz && !bytes.Equal(b.body, []byte(doc)) {
					t.Errorf("bulk body changed on the way: %q", b.body)
				}
			})
		}
	}
}

// TestSigV4VerifierRejects shows the verifier used above can fail: a
// request signed at a fixed time with the right key verifies, and the same
// request with a changed body, another secret, another region or an old
// date does not.
func TestSigV4VerifierRejects(t *testing.T) {
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	body := []byte(`{"index":{"_id":"a"}}` + "\n" + `{"x":1}` + "\n")
	sign := func(creds aws.Credentials, region string, b []byte) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "http://search.example:9200/messages/_bulk", bytes.NewReader(b))
		r.Header.Set("Content-Type", "application/x-ndjson")
		sum := sha256.Sum256(b)
		r.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), "es", region, at); err != nil {
			t.Fatal(err)
		}
		r.Host = r.URL.Host
		return r
	}
	if err := verifySigV4(sign(testCreds, "eu-west-1", body), body, testCreds, "eu-west-1", "es", at.Add(time.Minute)); err != nil {
		t.Fatalf("a correct signature was rejected: %v", err)
	}
	other := testCreds
	other.SecretAccessKey = "another-secret"
	tampered := append(bytes.Clone(body[:len(body)-2]), []byte("2}\n")...)
	for name, c := range map[string]struct {
		r    *http.Request
		body []byte
		now  time.Time
		want string
	}{
		"changed body":   {sign(testCreds, "eu-west-1", body), tampered, at, "X-Amz-Content-Sha256"},
		"other secret":   {sign(other, "eu-west-1", body), body, at, "signature mismatch"},
		"other region":   {sign(testCreds, "us-east-1", body), body, at, "credential scope"},
		"too old a date": {sign(testCreds, "eu-west-1", body), body, at.Add(time.Hour), "away from now"},
	} {
		if err := verifySigV4(c.r, c.body, testCreds, "eu-west-1", "es", c.now); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: verify = %v, want an error with %q", name, err, c.want)
		}
	}
}

// TestOpenSearchAuthFlags: region and service come from the flags, the
// environment or the endpoint's host name; mistakes name the flag.
func TestOpenSearchAuthFlags(t *testing.T) {
	for _, c := range []struct {
		name, url string
		args      []string
		env       map[string]string
		region    string // region passed to the AWS loader ("" = the chain decides)
		service   string
		err       string
	}{
		{name: "host gives region and service", url: "https://search-chat-abc.eu-central-1.es.amazonaws.com",
			args: []string{"--opensearch-auth", "aws"}, region: "eu-central-1", service: "es"},
		{name: "serverless host", url: "https://abc123.us-west-2.aoss.amazonaws.com",
			args: []string{"--opensearch-auth", "aws"}, region: "us-west-2", service: "aoss"},
		{name: "AWS_REGION wins over the host", url: "https://search-chat-abc.eu-central-1.es.amazonaws.com",
			args: []string{"--opensearch-auth", "aws"}, env: map[string]string{"AWS_REGION": "ap-south-1"}, region: "", service: "es"},
		{name: "flag wins", url: "https://vpc-proxy.internal:9200",
			args: []string{"--opensearch-auth", "aws", "--opensearch-aws-region", "sa-east-1", "--opensearch-aws-service", "aoss"}, region: "sa-east-1", service: "aoss"},
		{name: "bad mode", url: "https://x:9200", args: []string{"--opensearch-auth", "kerberos"}, err: `flag --opensearch-auth: "kerberos" is not basic, aws or none`},
		{name: "bad service", url: "https://x:9200", args: []string{"--opensearch-auth", "aws", "--opensearch-aws-service", "s3"}, err: "flag --opensearch-aws-service"},
		{name: "region without aws", url: "https://x:9200", args: []string{"--opensearch-aws-region", "eu-west-1"}, err: "need --opensearch-auth aws"},
		{name: "username with aws", url: "https://x:9200", args: []string{"--opensearch-auth", "aws", "--opensearch-username", "admin"}, err: "--opensearch-username is only used with --opensearch-auth basic"},
		{name: "no region anywhere", url: "https://x:9200", args: []string{"--opensearch-auth", "aws"}, err: "flag --opensearch-aws-region: no AWS region"},
	} {
		t.Run(c.name, func(t *testing.T) {
			isolateAWS(t, "")
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			var o osFlags
			o.register(fs)
			var gotRegion string
			o.auth.loadAWS = func(ctx context.Context, region string) (aws.Config, error) {
				gotRegion = region
				cfg, err := loadAWSConfig(ctx, region)
				return cfg, err
			}
			if err := parseFlags(fs, append([]string{"--opensearch", c.url}, c.args...), func(string) string { return "" }); err != nil {
				t.Fatal(err)
			}
			_, _, err := o.clients(1)
			if c.err != "" {
				var ue usageError
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.As(err, &ue) {
					t.Fatalf("clients() = %v, want a usage error with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, svc := o.auth.awsTarget([]string{c.url})
			if gotRegion != c.region || svc != c.service {
				t.Fatalf("region %q service %q, want %q %q", gotRegion, svc, c.region, c.service)
			}
		})
	}
}

// TestKafkaSASL: aws-msk-iam signs with the AWS chain's current
// credentials (asked for at every authentication) and implies TLS;
// oauthbearer sends the token, re-reading a token file each time.
func TestKafkaSASL(t *testing.T) {
	t.Run("aws-msk-iam", func(t *testing.T) {
		isolateAWS(t, "eu-west-1")
		k := kafkaFlags{saslMechanism: "aws-msk-iam"}
		opt, tls, err := kafkaSASL(&k)
		if err != nil || opt == nil || !tls {
			t.Fatalf("kafkaSASL = %v, tls %v, %v", opt, tls, err)
		}
		// The mechanism itself, with a provider whose credentials rotate.
		n := 0
		provider := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			n++
			c := testCreds
			c.AccessKeyID = fmt.Sprintf("AKIDROTATED%d", n)
			return c, nil
		})
		m := mskIAM(provider)
		if m.Name() != "AWS_MSK_IAM" {
			t.Fatalf("mechanism %s", m.Name())
		}
		for i := 1; i <= 2; i++ {
			_, msg, err := m.Authenticate(context.Background(), "b-1.chat.abc123.c2.kafka.eu-west-1.amazonaws.com:9098")
			if err != nil {
				t.Fatal(err)
			}
			var kv map[string]string
			if err := json.Unmarshal(msg, &kv); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("AKIDROTATED%d/", i); !strings.HasPrefix(kv["x-amz-credential"], want) ||
				!strings.Contains(kv["x-amz-credential"], "/eu-west-1/kafka-cluster/aws4_request") ||
				kv["x-amz-security-token"] != testSessionToken || kv["action"] != "kafka-cluster:Connect" || kv["x-amz-signature"] == "" {
				t.Fatalf("authentication %d: %v", i, kv)
			}
		}
		if _, _, err := (mskIAM(nil)).Authenticate(context.Background(), "b-1.kafka.eu-west-1.amazonaws.com:9098"); err == nil {
			t.Fatal("no credentials: want an error")
		}
	})
	t.Run("oauthbearer file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(file, []byte("token-one\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		k := kafkaFlags{saslMechanism: "oauthbearer", oauthTokenFile: file}
		if _, tls, err := kafkaSASL(&k); err != nil || tls {
			t.Fatalf("kafkaSASL: tls %v, %v", tls, err)
		}
		m := oauthBearer("", file)
		for _, tok := range []string{"token-one", "token-two"} {
			if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, msg, err := m.Authenticate(context.Background(), "broker:9093")
			if err != nil {
				t.Fatal(err)
			}
			if want := "\x01auth=Bearer " + tok + "\x01\x01"; !strings.HasSuffix(string(msg), want) {
				t.Fatalf("initial response %q, want suffix %q", msg, want)
			}
		}
	})
	t.Run("oauthbearer token", func(t *testing.T) {
		_, msg, err := oauthBearer("tok", "").Authenticate(context.Background(), "broker:9093")
		if err != nil || !strings.Contains(string(msg), "auth=Bearer tok") {
			t.Fatalf("%q %v", msg, err)
		}
	})
	for _, c := range []struct {
		name string
		k    kafkaFlags
		want string
	}{
		{"unknown", kafkaFlags{saslMechanism: "gssapi"}, `flag --kafka-sasl: "gssapi" is not plain`},
		{"oauth without token", kafkaFlags{saslMechanism: "oauthbearer"}, "needs exactly one of --kafka-oauth-token and --kafka-oauth-token-file"},
		{"oauth both", kafkaFlags{saslMechanism: "oauthbearer", oauthToken: "a", oauthTokenFile: "b"}, "exactly one"},
		{"oauth missing file", kafkaFlags{saslMechanism: "oauthbearer", oauthTokenFile: "/nonexistent/token"}, "flag --kafka-oauth-token-file"},
		{"token without oauth", kafkaFlags{saslMechanism: "plain", oauthToken: "a"}, "need --kafka-sasl oauthbearer"},
		{"msk with password", kafkaFlags{saslMechanism: "aws-msk-iam", password: "p"}, "are not used"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := kafkaSASL(&c.k)
			var ue usageError
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.As(err, &ue) {
				t.Fatalf("kafkaSASL = %v, want a usage error with %q", err, c.want)
			}
		})
	}
	// The options build a client (nothing is dialled).
	k := kafkaFlags{brokers: "127.0.0.1:1", saslMechanism: "oauthbearer", oauthToken: "tok"}
	opts, err := k.opts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
}

// TestAuthFlagsPrefixed: the other side of a comparison (--against-...)
// gets its own authentication flags, and its errors name them.
func TestAuthFlagsPrefixed(t *testing.T) {
	isolateAWS(t, "eu-west-1")
	srv := newSigV4Server(t, "eu-west-1", "es")
	fs := flag.NewFlagSet("parity", flag.ContinueOnError)
	var left, right osFlags
	left.register(fs)
	right.registerAs(fs, "against-")
	for _, name := range []string{"against-opensearch-auth", "against-opensearch-aws-region", "against-opensearch-aws-service"} {
		if fs.Lookup(name) == nil {
			t.Fatalf("--%s is not registered", name)
		}
	}
	if err := parseFlags(fs, []string{"--opensearch", "http://127.0.0.1:1", "--against-opensearch", srv.URL,
		"--against-opensearch-auth", "aws"}, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	admin, _, err := right.clients(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := reachOpenSearch(admin)(context.Background()); err != nil {
		t.Fatalf("signed request of the against- side: %v", err)
	}
	if left.auth.mode != authBasic {
		t.Errorf("left side auth %q, want the default basic", left.auth.mode)
	}
	right.auth.mode = "kerberos"
	if _, _, err := right.clients(1); err == nil || !strings.Contains(err.Error(), "flag --against-opensearch-auth") {
		t.Fatalf("error %v does not name --against-opensearch-auth", err)
	}
}
