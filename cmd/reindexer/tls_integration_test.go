//go:build integration

package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/refmodel"
)

// testCA is a certificate authority made for one test, and a server
// certificate it signed for 127.0.0.1.
type testCA struct {
	caFile string // PEM of the CA certificate
	server tls.Certificate
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "reindexer test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "opensearch.test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return testCA{caFile: caFile, server: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}

// authProxy is a TLS-terminating reverse proxy in front of the real node
// that forwards only requests that authenticate, like a secured cluster or
// an Amazon OpenSearch Service domain.
type authProxy struct {
	*httptest.Server
	accepted, rejected atomic.Int64
}

// newAuthProxy starts the proxy; check returns nil for a request (with its
// body read) that may pass.
func newAuthProxy(t *testing.T, ca testCA, target string, check func(r *http.Request, body []byte) error) *authProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &authProxy{}
	p.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := check(r, body); err != nil {
			p.rejected.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"type":"security_exception","reason":"authentication failed"},"status":401}`)
			return
		}
		p.accepted.Add(1)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.Header.Del("Authorization")
		rp.ServeHTTP(w, r)
	}))
	p.TLS = &tls.Config{Certificates: []tls.Certificate{ca.server}, MinVersion: tls.VersionTLS12}
	p.StartTLS()
	t.Cleanup(p.Close)
	return p
}

// basicAuth accepts HTTP basic auth as user:pass only.
func basicAuth(user, pass string) func(*http.Request, []byte) error {
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	return func(r *http.Request, _ []byte) error {
		if r.Header.Get("Authorization") != want {
			return io.ErrUnexpectedEOF
		}
		return nil
	}
}

// TestTLSAndAuthThroughProxy runs real replays through a TLS proxy with a
// test CA in front of the real node, authenticated with basic auth and with
// AWS SigV4 (the proxy verifies each signature with the AWS SDK's signer),
// and greps everything the processes printed — help, dry-run plan, logs,
// summaries and the error of a rejected password — for the secrets.
func TestTLSAndAuthThroughProxy(t *testing.T) {
	env := itest.Services(t)
	ca := newTestCA(t)
	events := chatgen.MustNew(chatgen.DefaultConfig(23)).Stream(600)
	topic := itest.Name(t, "ops-tls")
	itest.CreateTopic(t, env, topic, 2)
	itest.Produce(t, env, topic, events)
	want := itest.Model(t, refmodel.ModeTombstone, events)
	const password = "Tls-Pw-4d1e9b"
	// Every secret of this test, in every form it is passed.
	secrets := []string{password, testSecretKey, testSessionToken, base64.StdEncoding.EncodeToString([]byte("admin:" + password))}
	noSecret := func(what, out string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s printed the secret %q:\n%s", what, s, tail([]byte(out), 3000))
			}
		}
	}
	run := func(t *testing.T, proxyURL string, extra ...string) (index string, args func(...string) []string) {
		index = itest.Name(t, "ops-tls")
		itest.CreateIndex(t, env, index, `{"settings":{"number_of_shards":1,"number_of_replicas":0}}`)
		group, ck := itest.Name(t, "ops-tls-g"), itest.Name(t, "ops-tls-ck")
		t.Cleanup(func() { itest.CleanupIndex(t, env, ck) })
		return index, func(more ...string) []string {
			a := replayArgs(env, topic, group, index, ck, "--from-offsets", "0:0,1:0", "--delete-mode", "tombstone",
				"--opensearch-tls-ca", ca.caFile, "--log-level", "debug")
			for i, v := range a {
				if v == env.OpenSearchURL {
					a[i] = proxyURL
				}
			}
			return append(append(a, extra...), more...)
		}
	}

	t.Run("basic", func(t *testing.T) {
		proxy := newAuthProxy(t, ca, env.OpenSearchURL, basicAuth("admin", password))
		t.Setenv("REINDEXER_OPENSEARCH_PASSWORD", password)
		index, args := run(t, proxy.URL, "--opensearch-username", "admin")

		// Without the CA the certificate is refused: TLS verification is on.
		p, _ := startSplit(t, "no-ca", withoutFlag(args(), "--opensearch-tls-ca", ca.caFile)...)
		waitExit(t, p, time.Minute)
		if p.err == nil || !strings.Contains(readLog(p), "certificate") {
			t.Errorf("without --opensearch-tls-ca: exit %v, want a certificate error; log:\n%s", p.err, tail([]byte(readLog(p)), 2000))
		}
		noSecret("run without the CA", readLog(p))

		// A wrong password is rejected; the error names no secret.
		p, _ = startSplit(t, "wrong-password", args("--opensearch-password", "not-"+password)...)
		waitExit(t, p, time.Minute)
		if p.err == nil {
			t.Errorf("a wrong password was accepted")
		}
		noSecret("run with a wrong password", readLog(p))

		p, out := startSplit(t, "dry-run", args("--dry-run")...)
		waitExit(t, p, time.Minute)
		plan, _ := os.ReadFile(out)
		if p.err != nil || !strings.Contains(string(plan), topic) {
			t.Fatalf("dry run: %v\n%s\n%s", p.err, plan, readLog(p))
		}
		noSecret("dry run", string(plan)+readLog(p))

		res := runReplay(t, "replay", 2*time.Minute, args()...)
		noSecret("replay", res.Log)
		itest.CompareToModel(t, itest.DumpIndex(t, env, index), want)
		if proxy.accepted.Load() == 0 || proxy.rejected.Load() == 0 {
			t.Errorf("proxy accepted %d and rejected %d requests; want both", proxy.accepted.Load(), proxy.rejected.Load())
		}

		help, err := exec.Command(binPath, "replay", "-h").CombinedOutput()
		if err != nil {
			t.Fatalf("replay -h: %v", err)
		}
		noSecret("replay -h", string(help))
	})

	t.Run("aws-sigv4", func(t *testing.T) {
		isolateAWS(t, "eu-west-1")
		var verified atomic.Int64
		proxy := newAuthProxy(t, ca, env.OpenSearchURL, func(r *http.Request, body []byte) error {
			if err := verifySigV4(r, body, testCreds, "eu-west-1", "es", time.Now()); err != nil {
				return err
			}
			verified.Add(1)
			return nil
		})
		index, args := run(t, proxy.URL, "--opensearch-auth", "aws", "--opensearch-aws-service", "es", "--opensearch-gzip")
		res := runReplay(t, "replay", 2*time.Minute, args()...)
		noSecret("replay", res.Log)
		itest.CompareToModel(t, itest.DumpIndex(t, env, index), want)
		if proxy.rejected.Load() != 0 || verified.Load() == 0 {
			t.Errorf("proxy verified %d signatures and rejected %d requests; want all verified", verified.Load(), proxy.rejected.Load())
		}
		// Another secret key is refused.
		t.Setenv("AWS_SECRET_ACCESS_KEY", "another-secret")
		p, _ := startSplit(t, "wrong-key", args()...)
		waitExit(t, p, time.Minute)
		if p.err == nil {
			t.Error("a wrong AWS secret key was accepted")
		}
		noSecret("run with a wrong key", readLog(p))
	})
}

// withoutFlag returns args without the flag name and its value.
func withoutFlag(args []string, name, value string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == name && i+1 < len(args) && args[i+1] == value {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}
