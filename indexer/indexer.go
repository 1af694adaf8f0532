// Package indexer writes document operations to OpenSearch with
// version-checked bulk requests and classifies every item's outcome.
//
// Every upsert is a bulk "index" action with version_type=external (or
// external_gte) carrying the event's version, so OpenSearch itself keeps the
// newest version of each document whatever order operations arrive in. A 409
// version conflict therefore means "already applied or superseded" and is a
// success (Stale or Duplicate), never an error. Deletes are versioned
// "delete" actions, or in Tombstone mode an "index" of a small tombstone
// document with the same external version, so that an older upsert can never
// resurrect a deleted document however late it arrives.
//
// Write retries only the items that failed with a retryable error (429, 5xx,
// rejected execution, timeouts) and never resends the ones that succeeded;
// whole-request failures (network errors, 429/502/503/504) resend the items
// still pending; a cluster block (read-only, flood-stage watermark) or a
// missing index stops progress loudly and keeps retrying, dropping nothing.
// A whole request rejected with 400 or 413 is split in halves until the bad
// items are isolated, so one bad record cannot fail its neighbours.
//
// Per item the hot path is: append an action line and the untouched document
// bytes to a reused buffer; parse the filtered bulk response with an
// allocation-free scanner.
package indexer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/reindexer/reindexer/event"
	"github.com/reindexer/reindexer/internal/jsonscan"
	"github.com/reindexer/reindexer/internal/metrics"
	"github.com/reindexer/reindexer/internal/throttle"
)

// DeleteMode says how delete events are written.
type DeleteMode uint8

// The delete modes (docs/design.md §2).
const (
	// Delete writes versioned deletes. OpenSearch remembers the deleted
	// version only for index.gc_deletes (60 s by default) and forgets it on
	// a node restart, so an older upsert replayed later resurrects the
	// document. Safe when each partition has one ordered writer.
	Delete DeleteMode = iota
	// Tombstone writes a delete as an index of a tombstone document (a
	// marker field) with the delete's version: an older upsert always gets
	// a 409, whatever the timing. Searches must filter the marker.
	Tombstone
)

// String returns "delete" or "tombstone".
func (m DeleteMode) String() string {
	if m == Tombstone {
		return "tombstone"
	}
	return "delete"
}

// ParseDeleteMode parses "delete" or "tombstone".
func ParseDeleteMode(s string) (DeleteMode, error) {
	switch s {
	case "delete":
		return Delete, nil
	case "tombstone":
		return Tombstone, nil
	}
	return 0, fmt.Errorf("delete mode %q: want delete or tombstone", s)
}

// DefaultTombstoneField is the marker field of tombstone documents.
const DefaultTombstoneField = "reindexer_tombstone"

// Config configures an Indexer. The zero value (with Index set) works.
type Config struct {
	// Index is the target index or alias. Required.
	Index string
	// VersionType is "external" (default) or "external_gte". With
	// external_gte an equal version is rewritten instead of returning 409.
	VersionType string
	// DeleteMode is Delete (default) or Tombstone.
	DeleteMode DeleteMode
	// TombstoneField is the marker field of tombstone documents. Default
	// DefaultTombstoneField. The tombstone document is {"<field>":true}.
	TombstoneField string
	// RequestTimeout bounds one bulk round trip on the client side and is
	// also sent as the bulk's server-side timeout. Default 2m.
	RequestTimeout time.Duration
	// RetryInitial and RetryMax bound the exponential backoff (with 50 %
	// jitter) between retries. Defaults 100ms and 15s. Retries never stop on
	// their own: only the context ends them, so nothing is dropped.
	RetryInitial, RetryMax time.Duration
	// MaxRate, if positive, caps the documents per second sent by every
	// Write of this Indexer together (bulk items, retries included).
	MaxRate float64
	// MaxBytesRate, if positive, caps the bulk body bytes per second.
	MaxBytesRate float64
	// TargetLatency, if positive, turns on adaptive concurrency: at most
	// a limit of bulk requests are in flight, raised while bulks answer
	// within TargetLatency and halved on overload (429, rejected
	// execution, 503), slower bulks or slow guard searches (see Guard).
	TargetLatency time.Duration
	// MaxInFlight is the upper bound of the adaptive limit, normally the
	// number of lanes. Default 1.
	MaxInFlight int
	// Logger receives warnings about retries and blocks. Default slog.Default().
	Logger *slog.Logger
	// Metrics is updated with bulk and write metrics. Default: unregistered.
	Metrics *metrics.Metrics
}

// Indexer sends batches to one index. It is safe for concurrent use; each
// Write is independent.
type Indexer struct {
	cfg       Config
	client    *opensearch.Client
	path      string
	tombDoc   []byte
	log       *slog.Logger
	m         *metrics.Metrics
	bufs      sync.Pool
	warnings  throttle.Log
	blockedN  atomic.Int32
	thr       *pacer
	sleepHook func(time.Duration) // tests
}

// New returns an Indexer writing through client. The client should be
// created with DisableRetry: the Indexer does its own item-level retries
// with backoff, and a transport retry would resend items that already
// succeeded.
func New(client *opensearch.Client, cfg Config) (*Indexer, error) {
	if cfg.Index == "" {
		return nil, errors.New("indexer: index name is empty")
	}
	switch cfg.VersionType {
	case "":
		cfg.VersionType = "external"
	case "external", "external_gte":
	case "external_gt":
		cfg.VersionType = "external"
	default:
		return nil, fmt.Errorf("indexer: version type %q: want external or external_gte", cfg.VersionType)
	}
	if cfg.TombstoneField == "" {
		cfg.TombstoneField = DefaultTombstoneField
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 2 * time.Minute
	}
	if cfg.RetryInitial <= 0 {
		cfg.RetryInitial = 100 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New(nil)
	}
	tomb := append([]byte(`{"`), jsonscan.AppendEscaped(nil, []byte(cfg.TombstoneField))...)
	tomb = append(tomb, `":true}`...)
	q := url.Values{}
	q.Set("filter_path", bulkFilterPath)
	q.Set("timeout", strconv.FormatInt(cfg.RequestTimeout.Milliseconds(), 10)+"ms")
	if cfg.MaxRate < 0 || cfg.MaxBytesRate < 0 || cfg.TargetLatency < 0 {
		return nil, fmt.Errorf("indexer: negative rate or latency target")
	}
	cfg.MaxInFlight = max(cfg.MaxInFlight, 1)
	m := cfg.Metrics
	m.ThrottleLimit.Set(float64(cfg.MaxInFlight))
	return &Indexer{
		cfg:     cfg,
		client:  client,
		path:    "/" + url.PathEscape(cfg.Index) + "/_bulk?" + q.Encode(),
		tombDoc: tomb,
		log:     cfg.Logger,
		m:       m,
		thr: newPacer(cfg, func(limit float64, reason string) {
			m.ThrottleLimit.Set(limit)
			if reason != "" {
				m.ThrottleDecreases.WithLabelValues(reason).Inc()
			}
		}),
	}, nil
}

// Config returns the indexer's configuration with defaults filled in.
func (ix *Indexer) Config() Config { return ix.cfg }

// TombstoneDoc returns the document written for deletes in Tombstone mode.
func (ix *Indexer) TombstoneDoc() []byte { return ix.tombDoc }

// Add appends ev to b as one item and returns its index. ev must come from
// event.Decoder, which has already validated the id and version.
func (ix *Indexer) Add(b *Batch, ev *event.Event) int {
	return b.add(ev, ix.cfg.VersionType, ix.tombDoc, ix.cfg.DeleteMode)
}

// Write sends b and retries until every item has a final Result, or ctx
// ends (then the unfinished items stay Pending and ctx's error is returned).
// keep, if not nil, is asked before the first send and before each retry
// round whether item i is still wanted; items it rejects are never sent (or
// never resent) and become Abandoned (their partition was revoked, or an
// earlier batch of it failed).
func (ix *Indexer) Write(ctx context.Context, b *Batch, keep func(i int) bool) error {
	idx := make([]int, 0, len(b.Items))
	for i := range b.Items {
		if keep != nil && !keep(i) {
			b.Items[i].Result = Abandoned
			continue
		}
		idx = append(idx, i)
	}
	return ix.writeSet(ctx, b, idx, keep)
}

// unreachableRounds is how many round trips in a row must get no answer
// before an Indexer reports OpenSearch as down (the blocked gauge).
const unreachableRounds = 3

type outcome uint8

const (
	outDone outcome = iota
	outRetry
	outBlocked
)

// round is what one bulk round trip left to do.
type round struct {
	next    []int  // items to send again
	reason  string // why (the retries metric label)
	blocked bool   // OpenSearch refuses writes until an operator acts
	split   int    // HTTP status of a whole-request 400/413 to bisect; 0 otherwise
}

// writeSet writes the items idx of b until each has a final Result,
// resending only the ones that still need it, with backoff between rounds.
func (ix *Indexer) writeSet(ctx context.Context, b *Batch, idx []int, keep func(int) bool) error {
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(ix.cfg.RetryInitial),
		backoff.WithMaxInterval(ix.cfg.RetryMax),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxElapsedTime(0),
	)
	var retryBody []byte
	blocked := false
	unreachable := 0 // consecutive round trips that got no answer
	defer func() {
		if blocked {
			ix.setBlocked(false)
		}
	}()
	for len(idx) > 0 {
		body := b.buf
		if len(idx) != len(b.Items) {
			retryBody = retryBody[:0]
			for _, i := range idx {
				retryBody = append(retryBody, b.ItemBody(i)...)
			}
			body = retryBody
		}
		waited, err := ix.thr.wait(ctx, len(idx), len(body))
		ix.m.ThrottleWait.Add(waited.Seconds())
		if err != nil {
			return err
		}
		began := time.Now()
		res, err := ix.send(ctx, body, len(idx))
		ix.thr.release()
		if err != nil {
			return err
		}
		r := ix.judge(b, idx, res)
		if res.status == 0 {
			// A node that does not answer for several rounds (restarting,
			// partitioned away) is an outage, not a blip: say so on the
			// blocked gauge like a write block, and wait the same way.
			if unreachable++; unreachable >= unreachableRounds {
				r.blocked = true
				for _, i := range idx {
					b.Items[i].ErrType, b.Items[i].ErrReason = "unreachable", res.err.Error()
				}
			}
		} else {
			unreachable = 0
		}
		ix.thr.observe(time.Since(began), overloadReason(res.status, r.reason))
		ix.release(res)
		if r.split != 0 {
			return ix.bisect(ctx, b, idx, keep, r.split)
		}
		if len(r.next) < len(idx) {
			bo.Reset() // progress
		}
		if r.blocked != blocked {
			blocked = r.blocked
			ix.setBlocked(blocked)
		}
		if r.blocked {
			it := &b.Items[r.next[0]]
			msg := "OpenSearch refuses writes: progress is stopped until it accepts them again (nothing is dropped)"
			if it.ErrType == "unreachable" {
				msg = "OpenSearch does not answer: progress is stopped until it does (nothing is dropped)"
			}
			ix.warn(msg, "index", ix.cfg.Index, "error_type", it.ErrType, "reason", it.ErrReason, "items_waiting", len(r.next))
		}
		idx = ix.kept(b, r.next, keep)
		if len(idx) == 0 {
			return nil
		}
		ix.m.Retries.WithLabelValues(r.reason).Add(float64(len(idx)))
		if err := ix.sleep(ctx, bo.NextBackOff()); err != nil {
			return err
		}
	}
	return nil
}

// judge classifies one round trip's answer: it sets the final Result of
// every item the answer settles (counting it in the metrics only once the
// whole answer is known to line up with the request) and returns what is
// left to do.
func (ix *Indexer) judge(b *Batch, idx []int, res response) round {
	switch {
	case res.status == 0: // transport error
		ix.warn("bulk request failed, retrying", "index", ix.cfg.Index, "items", len(idx), "err", res.err)
		return round{next: idx, reason: "network"}
	case res.status == http.StatusOK:
		return ix.judgeItems(b, idx, res)
	case wholeBlocked(res):
		errType, errReason := wholeError(res)
		if errType == "" {
			errType = "http_" + strconv.Itoa(res.status)
		}
		for _, i := range idx {
			b.Items[i].ErrType, b.Items[i].ErrReason = errType, errReason
		}
		return round{next: idx, reason: "blocked", blocked: true}
	case res.status == http.StatusTooManyRequests || res.status == http.StatusRequestTimeout || res.status >= 500:
		ix.warn("bulk request refused, retrying", "index", ix.cfg.Index, "status", res.status, "items", len(idx))
		return round{next: idx, reason: strconv.Itoa(res.status)}
	}
	// 400 with an OpenSearch error body, or 413: some item is bad.
	if len(idx) == 1 {
		errType, errReason := wholeError(res)
		it := &b.Items[idx[0]]
		it.Result, it.ErrType, it.ErrReason = Permanent, errType, errReason
		if it.ErrType == "" {
			it.ErrType = "http_" + strconv.Itoa(res.status)
		}
		return round{}
	}
	return round{split: res.status}
}

// judgeItems classifies the items of a 200 bulk answer.
func (ix *Indexer) judgeItems(b *Batch, idx []int, res response) round {
	var r round
	done := idx[:0:0]
	n, perr := parseBulkResponse(res.body.Bytes(), func(k int, it *itemResp) {
		if k >= len(idx) {
			return
		}
		i := idx[k]
		switch ix.classify(&b.Items[i], it) {
		case outDone:
			done = append(done, i)
		case outRetry:
			r.next = append(r.next, i)
			if r.reason == "" {
				r.reason = retryReason(it)
			}
		case outBlocked:
			r.next = append(r.next, i)
			r.blocked, r.reason = true, "blocked"
		}
	})
	if perr != nil || n != len(idx) {
		// Unparseable or misaligned: never guess which item is which, and
		// count nothing.
		for _, i := range idx {
			b.Items[i].Result = Pending
		}
		ix.warn("bulk response unusable, resending the request", "index", ix.cfg.Index, "items", len(idx), "parsed", n, "err", perr)
		return round{next: idx, reason: "bad_response"}
	}
	for _, i := range done {
		ix.m.Write(b.Items[i].Result.String(), 1)
	}
	return r
}

// bisect writes the two halves of idx separately, to isolate the item(s)
// that made OpenSearch reject the whole request with status.
func (ix *Indexer) bisect(ctx context.Context, b *Batch, idx []int, keep func(int) bool, status int) error {
	half := len(idx) / 2
	left := append([]int(nil), idx[:half]...)
	right := append([]int(nil), idx[half:]...)
	ix.m.Retries.WithLabelValues("split_" + strconv.Itoa(status)).Inc()
	if err := ix.writeSet(ctx, b, left, keep); err != nil {
		return err
	}
	return ix.writeSet(ctx, b, right, keep)
}

// kept returns the items of next that keep still wants, marking the others
// Abandoned.
func (ix *Indexer) kept(b *Batch, next []int, keep func(int) bool) []int {
	if keep == nil {
		return next
	}
	out := next[:0]
	for _, i := range next {
		if keep(i) {
			out = append(out, i)
		} else {
			b.Items[i].Result = Abandoned
		}
	}
	return out
}

// classify sets the item's Result from its response and says whether to
// retry it.
func (ix *Indexer) classify(item *Item, it *itemResp) outcome {
	st := it.status
	switch {
	case st >= 200 && st < 300 || (st == http.StatusNotFound && !it.hasErrorBody):
		switch string(it.result) {
		case "created":
			item.Result = Created
		case "updated":
			item.Result = Updated
		case "deleted":
			item.Result = Deleted
		case "not_found":
			item.Result = NotFound
		default: // "noop" or unknown: the write is done either way
			item.Result = Updated
		}
		if item.tombstone && (item.Result == Created || item.Result == Updated) {
			item.Result = Deleted
		}
		return outDone
	case st == http.StatusConflict && (string(it.errType) == "version_conflict_engine_exception" || len(it.errType) == 0):
		c, p, ok := conflictVersions(it.errReason)
		if ok && c == p {
			item.Result = Duplicate
		} else {
			item.Result = Stale
		}
		return outDone
	}
	item.ErrType, item.ErrReason = string(it.errType), unescape(it.errReason)
	if len(it.causeReason) > 0 {
		item.ErrReason += " (caused by " + string(it.causeType) + ": " + unescape(it.causeReason) + ")"
	}
	switch errClass(string(it.errType), item.ErrReason, st) {
	case outBlocked:
		return outBlocked
	case outRetry:
		return outRetry
	}
	item.Result = Permanent
	return outDone
}

// errClass sorts an OpenSearch item error into retry, blocked or permanent
// (outDone). Errors about the target index rather than the document (a
// missing, closed or misnamed index, an alias without a write index) block:
// every other document would fail the same way, and dead-lettering them all
// would empty the topic into the dead-letter topic.
func errClass(typ, reason string, status int) outcome {
	switch typ {
	case "cluster_block_exception", "index_not_found_exception", "index_closed_exception",
		"security_exception", "authorization_exception", "invalid_index_name_exception",
		"invalid_alias_name_exception":
		return outBlocked
	case "illegal_argument_exception":
		if indexLevel(reason) {
			return outBlocked
		}
	case "rejected_execution_exception", "es_rejected_execution_exception", "circuit_breaking_exception",
		"unavailable_shards_exception", "no_shard_available_action_exception", "node_not_connected_exception",
		"node_closed_exception", "connect_transport_exception", "receive_timeout_transport_exception",
		"process_cluster_event_timeout_exception", "timeout_exception", "primary_missing_action_exception",
		"retry_on_primary_exception", "shard_not_found_exception", "not_master_exception",
		"not_cluster_manager_exception", "cluster_manager_not_discovered_exception",
		"master_not_discovered_exception", "index_shard_closed_exception", "illegal_index_shard_state_exception",
		"replication_response_exception", "send_request_transport_exception", "translog_exception":
		return outRetry
	}
	switch {
	case status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500:
		return outRetry
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return outBlocked
	}
	return outDone
}

func retryReason(it *itemResp) string {
	if len(it.errType) > 0 {
		return string(it.errType)
	}
	return strconv.Itoa(it.status)
}

type response struct {
	status int
	body   *bytes.Buffer
	err    error
}

// openSearchError reports whether the body is OpenSearch's error answer
// {"error":{"type":...},...}, as opposed to a proxy's page or nothing.
func (r response) openSearchError() bool {
	if r.body == nil {
		return false
	}
	b := r.body.Bytes()
	s, _, found, err := jsonscan.Lookup(b, jsonscan.SkipSpace(b, 0), []string{"error", "type"})
	return err == nil && found && jsonscan.KindAt(b, s) == jsonscan.String
}

func (ix *Indexer) release(r response) {
	if r.body != nil {
		r.body.Reset()
		ix.bufs.Put(r.body)
	}
}

// send performs one bulk round trip. It returns an error only when ctx is
// done; transport failures come back as status 0 with err set.
func (ix *Indexer) send(ctx context.Context, body []byte, items int) (response, error) {
	if err := ctx.Err(); err != nil {
		return response{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, ix.cfg.RequestTimeout+10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, ix.path, bytes.NewReader(body))
	if err != nil {
		return response{}, fmt.Errorf("bulk to %s: %w", ix.cfg.Index, err)
	}
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/x-ndjson")

	ix.m.InFlightBulks.Inc()
	start := time.Now()
	res, err := ix.client.Stream(req)
	ix.m.InFlightBulks.Dec()
	ix.m.BulkBytes.Add(float64(len(body)))
	ix.m.BulkDocs.Observe(float64(items))
	if res == nil {
		if ctx.Err() != nil {
			return response{}, ctx.Err()
		}
		ix.m.BulkRequests.WithLabelValues("error").Inc()
		return response{err: fmt.Errorf("bulk to %s: %w", ix.cfg.Index, err)}, nil
	}
	buf, _ := ix.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	_, rerr := buf.ReadFrom(res.Body)
	res.Body.Close()
	ix.m.BulkLatency.Observe(time.Since(start).Seconds())
	ix.m.BulkRequests.WithLabelValues(strconv.Itoa(res.StatusCode)).Inc()
	if rerr != nil {
		buf.Reset()
		ix.bufs.Put(buf)
		if ctx.Err() != nil {
			return response{}, ctx.Err()
		}
		return response{err: fmt.Errorf("bulk to %s: read response: %w", ix.cfg.Index, rerr)}, nil
	}
	return response{status: res.StatusCode, body: buf}, nil
}

// wholeError extracts type and reason of a whole-request error body
// {"error":{"type":...,"reason":...},"status":N}.
func wholeError(r response) (typ, reason string) {
	if r.body == nil {
		return "", ""
	}
	b := r.body.Bytes()
	s, e, found, err := jsonscan.Lookup(b, jsonscan.SkipSpace(b, 0), []string{"error", "type"})
	if err == nil && found && jsonscan.KindAt(b, s) == jsonscan.String {
		typ = unescape(b[s+1 : e-1])
	}
	s, e, found, err = jsonscan.Lookup(b, jsonscan.SkipSpace(b, 0), []string{"error", "reason"})
	if err == nil && found && jsonscan.KindAt(b, s) == jsonscan.String {
		reason = unescape(b[s+1 : e-1])
	}
	if typ == "" && reason == "" && len(b) > 0 {
		reason = string(b[:min(len(b), 512)])
	}
	return typ, reason
}

// indexLevel reports whether an illegal_argument_exception's reason is about
// the target index or alias (so every document would fail the same way).
func indexLevel(reason string) bool {
	for _, s := range []string{"no write index is defined for alias", "has more than one index associated with it",
		"require_alias", "is not an alias", "only write ops with an op_type of create are allowed in data streams"} {
		if strings.Contains(reason, s) {
			return true
		}
	}
	return false
}

// wholeBlocked reports whether a whole-request failure means OpenSearch (or
// whatever answered in its place) refuses writes until an operator acts: a
// redirect, authentication or authorization failure, a missing index, a
// method or media type the endpoint does not accept (a wrong URL or a
// proxy), a cluster block, or a 400 that is not an OpenSearch error about
// the request's content. None of these is the fault of one document, so
// the items wait (loudly) instead of being split and dead-lettered. Only a
// 400 carrying an OpenSearch error and a 413 (body too large) are the
// documents' fault.
func wholeBlocked(r response) bool {
	switch {
	case r.status == http.StatusTooManyRequests:
		typ, _ := wholeError(r)
		return typ == "cluster_block_exception"
	case r.status == http.StatusRequestTimeout || r.status >= 500:
		return false
	case r.status == http.StatusRequestEntityTooLarge:
		return false
	case r.status == http.StatusBadRequest:
		typ, reason := wholeError(r)
		return !r.openSearchError() || errClass(typ, reason, r.status) == outBlocked
	}
	return r.status >= 300 // 3xx, 401, 403, 404, 405, 406, 415, ...
}

func (ix *Indexer) setBlocked(on bool) {
	if on {
		if ix.blockedN.Add(1) == 1 {
			ix.m.Blocked.Set(1)
		}
		return
	}
	if ix.blockedN.Add(-1) == 0 {
		ix.m.Blocked.Set(0)
		ix.log.Info("OpenSearch accepts writes again", "index", ix.cfg.Index)
	}
}

// warn logs at most one warning every few seconds per Indexer so a retry
// storm does not flood the log; metrics count every retry.
func (ix *Indexer) warn(msg string, args ...any) { ix.warnings.Warn(ix.log, msg, args...) }

func (ix *Indexer) sleep(ctx context.Context, d time.Duration) error {
	if ix.sleepHook != nil {
		ix.sleepHook(d)
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
