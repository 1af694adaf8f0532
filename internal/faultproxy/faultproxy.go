// Package faultproxy is a fault-injecting HTTP proxy for tests: it stands in
// front of a real OpenSearch node and makes some bulk items, or whole bulk
// requests, fail the way an overloaded or blocked cluster does (429
// rejected_execution_exception, 503 unavailable_shards_exception,
// cluster_block_exception), forwarding everything else to the real node.
//
// It also keeps books: how often each bulk item was forwarded and applied,
// so a test can prove that only failed items are ever resent.
package faultproxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
)

// Faults configures what goes wrong. Rates are probabilities in [0, 1].
type Faults struct {
	ItemReject    float64 // per bulk item: answer 429 rejected_execution_exception without forwarding it
	ItemUnavail   float64 // per bulk item: answer 503 unavailable_shards_exception without forwarding it
	RequestReject float64 // per bulk request: answer 429 (or 503) for the whole request, forwarding nothing
	Blocked       bool    // every bulk item gets 429 cluster_block_exception (flood-stage read-only)
}

// Stats are the proxy's books.
type Stats struct {
	Requests        int // bulk requests received
	Forwarded       int // bulk requests forwarded (at least one item)
	ItemsInjected   int // items answered with an injected failure
	ItemsForwarded  int // items forwarded to the node
	RequestsFailed  int // whole requests answered with an injected failure
	BlockedItems    int // items refused with a cluster block
	ResentAfterDone int // items forwarded again after the node had already answered them 2xx/409
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	srv    *httptest.Server
	target *url.URL
	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
	stats  Stats
	done   map[string]int // item key -> times the node answered it 2xx or 409
	allow  map[string]int // item key -> times it may legitimately be applied (duplicates in the stream)
}

// New starts a proxy to target (e.g. http://127.0.0.1:9200).
func New(target string, seed uint64) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{target: u, rng: rand.New(rand.NewPCG(seed, 99)), done: map[string]int{}, allow: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	return p, nil
}

// URL is the proxy's address.
func (p *Proxy) URL() string { return p.srv.URL }

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.Close() }

// Set replaces the faults.
func (p *Proxy) Set(f Faults) {
	p.mu.Lock()
	p.faults = f
	p.mu.Unlock()
}

// Allow declares that the item with this key may be applied n times
// (because the stream holds it n times). Keys are ItemKey values.
func (p *Proxy) Allow(key string, n int) {
	p.mu.Lock()
	p.allow[key] = n
	p.mu.Unlock()
}

// Stats returns a copy of the books.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// ItemKey identifies a bulk item: action, id and version.
func ItemKey(action, id string, version int64) string {
	return fmt.Sprintf("%s|%s|%d", action, id, version)
}

type item struct {
	action string
	key    string
	lines  []byte
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/_bulk") {
		p.forward(w, r, nil)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	items, err := splitBulk(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	p.stats.Requests++
	f := p.faults
	if !f.Blocked && p.rng.Float64() < f.RequestReject {
		p.stats.RequestsFailed++
		unavailable := p.rng.IntN(2) == 0 // the rng is guarded by mu too
		p.mu.Unlock()
		status, typ := http.StatusTooManyRequests, "rejected_execution_exception"
		if unavailable {
			status, typ = http.StatusServiceUnavailable, "unavailable_shards_exception"
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":{"type":%q,"reason":"injected by faultproxy"},"status":%d}`, typ, status)
		return
	}
	results := make([]json.RawMessage, len(items))
	var fwd bytes.Buffer
	var fwdIdx []int
	for i, it := range items {
		switch x := p.rng.Float64(); {
		case f.Blocked:
			p.stats.BlockedItems++
			results[i] = failure(it.action, 429, "cluster_block_exception",
				"index [x] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];")
		case x < f.ItemReject:
			p.stats.ItemsInjected++
			results[i] = failure(it.action, 429, "rejected_execution_exception", "rejected execution (injected by faultproxy)")
		case x < f.ItemReject+f.ItemUnavail:
			p.stats.ItemsInjected++
			results[i] = failure(it.action, 503, "unavailable_shards_exception", "primary shard is not active (injected by faultproxy)")
		default:
			fwd.Write(it.lines)
			fwdIdx = append(fwdIdx, i)
			p.stats.ItemsForwarded++
		}
	}
	p.mu.Unlock()
	if len(fwdIdx) > 0 {
		real, status, err := p.post(r, fwd.Bytes())
		if err != nil || status != http.StatusOK {
			// Pass real whole-request failures through untouched.
			w.WriteHeader(max(status, http.StatusBadGateway))
			w.Write(real)
			return
		}
		var parsed struct {
			Items []map[string]json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(real, &parsed); err != nil || len(parsed.Items) != len(fwdIdx) {
			http.Error(w, fmt.Sprintf("faultproxy: bad upstream response (%v, %d items for %d)", err, len(parsed.Items), len(fwdIdx)), http.StatusBadGateway)
			return
		}
		p.mu.Lock()
		p.stats.Forwarded++
		for k, i := range fwdIdx {
			it := items[i]
			var st struct {
				Status int `json:"status"`
			}
			for _, v := range parsed.Items[k] {
				_ = json.Unmarshal(v, &st)
			}
			if st.Status < 300 || st.Status == http.StatusConflict || st.Status == http.StatusNotFound {
				p.done[it.key]++
				allowed := max(p.allow[it.key], 1)
				if p.done[it.key] > allowed {
					p.stats.ResentAfterDone++
				}
			}
			b, _ := json.Marshal(parsed.Items[k])
			results[i] = b
		}
		p.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	var out bytes.Buffer
	out.WriteString(`{"took":1,"errors":true,"items":[`)
	for i, r := range results {
		if i > 0 {
			out.WriteByte(',')
		}
		out.Write(r)
	}
	out.WriteString("]}")
	w.Write(out.Bytes())
}

func failure(action string, status int, typ, reason string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{action: map[string]any{"status": status,
		"error": map[string]any{"type": typ, "reason": reason}}})
	return b
}

func (p *Proxy) post(r *http.Request, body []byte) ([]byte, int, error) {
	u := *p.target
	u.Path = r.URL.Path
	u.RawQuery = r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return []byte(err.Error()), 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return b, res.StatusCode, err
}

func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	u := *p.target
	u.Path = r.URL.Path
	u.RawQuery = r.URL.RawQuery
	var rd io.Reader = r.Body
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), rd)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	for k, v := range res.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(res.StatusCode)
	io.Copy(w, res.Body)
}

// splitBulk cuts an NDJSON bulk body into items (action line plus source
// line for index/create/update).
func splitBulk(body []byte) ([]item, error) {
	var items []item
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for sc.Scan() {
		line := append([]byte(nil), sc.Bytes()...)
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var meta map[string]struct {
			ID      string `json:"_id"`
			Version int64  `json:"version"`
		}
		if err := json.Unmarshal(line, &meta); err != nil || len(meta) != 1 {
			return nil, fmt.Errorf("faultproxy: bad action line %q", line)
		}
		var it item
		for action, m := range meta {
			it.action = action
			it.key = ItemKey(action, m.ID, m.Version)
		}
		it.lines = append(line, '\n')
		if it.action != "delete" {
			if !sc.Scan() {
				return nil, fmt.Errorf("faultproxy: %s action without a source line", it.action)
			}
			it.lines = append(it.lines, sc.Bytes()...)
			it.lines = append(it.lines, '\n')
		}
		items = append(items, it)
	}
	return items, sc.Err()
}
