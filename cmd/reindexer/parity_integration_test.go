//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/osreq"
	"github.com/reindexer/reindexer/internal/refmodel"
	"github.com/reindexer/reindexer/parity"
)

// runParity runs the binary's parity command to its exit and returns the
// exit code and the --json result.
func runParity(t *testing.T, args ...string) (int, parity.Result) {
	t.Helper()
	p, out := startSplit(t, "parity", append(args, "--json")...)
	waitExit(t, p, 3*time.Minute)
	code := 0
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		code = ee.ExitCode()
	} else if p.err != nil {
		t.Fatal(p.err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res parity.Result
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("parity stdout is not one JSON result: %v\n%s\nlog:\n%s", err, data, readLog(p))
	}
	return code, res
}

func parityArgs(env *itest.Env, index string, extra ...string) []string {
	return append([]string{"parity", "--opensearch", env.OpenSearchURL, "--index", index}, extra...)
}

// parityFreeAddr returns a loopback address nothing listens on.
func parityFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// parityScrape reads one sample of a metric ("name{labels}") from /metrics; ok
// false while the endpoint or the sample is not there.
func parityScrape(addr, sample string) (float64, bool) {
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0, false
	}
	var v float64
	fmt.Sscan(string(m[1]), &v)
	return v, true
}

// parityWaitMetric waits until every sample has its value.
func parityWaitMetric(t *testing.T, addr string, want map[string]float64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ok := true
		for s, v := range want {
			if got, found := parityScrape(addr, s); !found || got != v {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never reached %v", want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestParityCommand runs the binary end to end: events through Kafka into
// two indices by 'reindexer replay' (delete and tombstone mode), then
// parity between the indices and between an index and its topic (exit 0,
// counts equal to the reference model), --watch with its gauges while a
// difference comes and goes, injected drift (exit 1, the exact ids) and a
// missing index (exit 2).
func TestParityCommand(t *testing.T) {
	env := itest.Services(t)
	cl := itest.OpenSearch(t, env)
	cfg := chatgen.DefaultConfig(14)
	cfg.IDs, cfg.DeleteProb, cfg.TombstoneProb = 3000, 0.1, 0.5
	events := chatgen.MustNew(cfg).Stream(6000)
	topic := itest.Name(t, "parity")
	itest.CreateTopic(t, env, topic, 3)
	itest.Produce(t, env, topic, events)
	model := itest.Model(t, refmodel.ModeDelete, events)
	tmodel := itest.Model(t, refmodel.ModeTombstone, events)
	live, deleted := int64(len(model)), int64(len(tmodel)-len(model))

	indices := map[string]string{}
	for _, mode := range []string{"delete", "tombstone"} {
		index, ck := itest.Name(t, "parity-"+mode), itest.Name(t, "parity-ck")
		itest.CleanupIndex(t, env, index)
		itest.CleanupIndex(t, env, ck)
		runReplay(t, "replay-"+mode, 3*time.Minute, replayArgs(env, topic, itest.Name(t, "parity-g"), index, ck,
			"--from", "1h", "--delete-mode", mode)...)
		indices[mode] = index
	}
	old, copy := indices["delete"], indices["tombstone"]
	itest.CompareToModel(t, itest.DumpIndex(t, env, old), model)

	t.Run("against topic", func(t *testing.T) {
		for _, mode := range []string{"count", "sample", "full"} {
			code, res := runParity(t, parityArgs(env, old, "--against-topic", topic, "--brokers", strings.Join(env.KafkaBrokers, ","),
				"--mode", mode, "--memory-bytes", "1MiB")...)
			if code != 0 || res.Verdict != parity.VerdictEqual || res.Left.Count != live || res.Right.Count != live || res.Right.Tombstones != deleted {
				t.Errorf("%s: exit %d, %+v; want 0, %d live, %d deleted", mode, code, res, live, deleted)
			}
		}
	})
	t.Run("tombstone-mode copy", func(t *testing.T) {
		for _, mode := range []string{"count", "sample", "full"} {
			code, res := runParity(t, parityArgs(env, old, "--against-index", copy, "--mode", mode, "--bucket", "room_id")...)
			if code != 0 || res.Verdict != parity.VerdictEqual || res.Right.Count != live || res.Right.Tombstones != deleted || res.Left.Tombstones != 0 {
				t.Errorf("%s: exit %d, %+v; want 0, %d live, %d tombstones on the right", mode, code, res, live, deleted)
			}
		}
	})
	t.Run("watch", func(t *testing.T) {
		addr := parityFreeAddr(t)
		p, _ := startSplit(t, "parity-watch", parityArgs(env, old, "--against-index", copy, "--mode", "full",
			"--watch", "300ms", "--metrics-addr", addr, "--json")...)
		parityWaitMetric(t, addr, map[string]float64{`reindexer_parity_verdict{verdict="equal"}`: 1, `reindexer_parity_documents{side="right"}`: float64(live)})
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if _, err := osreq.Do(ctx, cl, http.MethodPut, "/"+copy+"/_doc/parity-extra?refresh=true", []byte(`{"room_id":"r1"}`)); err != nil {
			t.Fatal(err)
		}
		parityWaitMetric(t, addr, map[string]float64{`reindexer_parity_verdict{verdict="drift"}`: 1, `reindexer_parity_differences{kind="only_right"}`: 1, `reindexer_parity_drift`: 1})
		if _, err := osreq.Do(ctx, cl, http.MethodDelete, "/"+copy+"/_doc/parity-extra?refresh=true", nil); err != nil {
			t.Fatal(err)
		}
		parityWaitMetric(t, addr, map[string]float64{`reindexer_parity_verdict{verdict="equal"}`: 1, `reindexer_parity_drift`: 0})
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		waitExit(t, p, 30*time.Second)
		if p.err != nil {
			t.Errorf("watch exited with %v after an equal check, want 0", p.err)
		}
	})
	t.Run("own credentials", func(t *testing.T) {
		// A second "cluster": the same node behind a proxy that wants its
		// own user and password.
		target, err := url.Parse(env.OpenSearchURL)
		if err != nil {
			t.Fatal(err)
		}
		rp := httputil.NewSingleHostReverseProxy(target)
		guarded := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "parity" || p != "s3cret" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"error":{"type":"security_exception","reason":"missing or wrong credentials"},"status":401}`)
				return
			}
			rp.ServeHTTP(w, r)
		}))
		defer guarded.Close()
		right := []string{"--against-opensearch", guarded.URL, "--against-index", copy, "--against-opensearch-username", "parity"}
		t.Setenv("REINDEXER_AGAINST_OPENSEARCH_PASSWORD", "s3cret")
		code, res := runParity(t, parityArgs(env, old, right...)...)
		if code != 0 || res.Verdict != parity.VerdictEqual || res.Right.Count != live {
			t.Errorf("right side with its own credentials: exit %d, %+v", code, res)
		}
		// The left side's credentials are not the right side's.
		code, res = runParity(t, parityArgs(env, old, "--against-opensearch", guarded.URL, "--against-index", copy, "--opensearch-username", "parity")...)
		if code != 2 || !strings.Contains(res.Error, "401") {
			t.Errorf("right side without credentials: exit %d, %+v; want 2 and HTTP 401", code, res)
		}
		// Without --against-opensearch the right side is the left's cluster,
		// with the left's credentials.
		t.Setenv("REINDEXER_AGAINST_OPENSEARCH_PASSWORD", "")
		t.Setenv("REINDEXER_OPENSEARCH_PASSWORD", "s3cret")
		code, res = runParity(t, "parity", "--opensearch", guarded.URL, "--opensearch-username", "parity", "--index", old, "--against-index", copy)
		if code != 0 || res.Verdict != parity.VerdictEqual {
			t.Errorf("same cluster through the guarded proxy: exit %d, %+v", code, res)
		}
	})
	t.Run("drift", func(t *testing.T) {
		var ids []string
		for id := range model {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		gone := ids[7:10]
		var body bytes.Buffer
		for _, id := range gone {
			fmt.Fprintf(&body, `{"delete":{"_index":%q,"_id":%q}}`+"\n", copy, id)
		}
		if _, err := osreq.Do(t.Context(), cl, http.MethodPost, "/_bulk?refresh=true", body.Bytes()); err != nil {
			t.Fatal(err)
		}
		code, res := runParity(t, parityArgs(env, old, "--against-index", copy, "--mode", "full")...)
		if code != 1 || res.Verdict != parity.VerdictDrift || res.Diff.OnlyLeft != 3 || strings.Join(res.IDs.OnlyLeft, ",") != strings.Join(gone, ",") ||
			res.Diff.OnlyRight != 0 || res.Diff.VersionDiffers != 0 {
			t.Errorf("exit %d, %+v; want 1 and only %v on the left", code, res, gone)
		}
		code, res = runParity(t, parityArgs(env, old, "--against-index", copy, "--tolerance", "3")...)
		if code != 0 || res.Verdict != parity.VerdictEqual || res.Drift != 3 {
			t.Errorf("tolerance 3: exit %d, %+v; want 0", code, res)
		}
	})
	t.Run("failed shards", func(t *testing.T) {
		// created_at is a keyword in this index: a date histogram fails on
		// its shard, so the pattern's answer is partial.
		kw := itest.Name(t, "parity-kw")
		itest.CreateIndex(t, env, kw, `{"settings":{"number_of_shards":1,"number_of_replicas":0},"mappings":{"properties":{"created_at":{"type":"keyword"}}}}`)
		if _, err := osreq.Do(t.Context(), cl, http.MethodPut, "/"+kw+"/_doc/x?refresh=true", []byte(`{"created_at":"2024-11-24"}`)); err != nil {
			t.Fatal(err)
		}
		code, res := runParity(t, parityArgs(env, old, "--against-index", copy+","+kw, "--bucket", "created_at:1d")...)
		if code != 2 || res.Verdict != parity.VerdictError || !strings.Contains(res.Error, "shards failed") {
			t.Errorf("exit %d, %+v; want 2 naming the failed shards", code, res)
		}
	})
	t.Run("missing index", func(t *testing.T) {
		code, res := runParity(t, parityArgs(env, old, "--against-index", old+"-missing", "--mode", "full")...)
		if code != 2 || res.Verdict != parity.VerdictError || !strings.Contains(res.Error, "no such index") {
			t.Errorf("exit %d, %+v; want 2 naming the missing index", code, res)
		}
	})
}
