package parity

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// liveStream reduces a sorted stream (several items per id, the winner
// first) to one item per id whose winner is live or unsettled (flagged so:
// the join leaves such ids out). It counts the live ids and the ids whose
// winner is a delete (tombstones) or unsettled.
type liveStream struct {
	in         stream
	last       []byte
	started    bool
	live       int64
	tombstones int64
	unsettled  int64
}

func (l *liveStream) Next() (*item, bool) {
	for {
		it, ok := l.in.Next()
		if !ok {
			return nil, false
		}
		if l.started && bytes.Equal(it.ID, l.last) {
			continue // an older operation (or a duplicate) of the same id
		}
		l.started = true
		l.last = append(l.last[:0], it.ID...)
		switch it.Flag {
		case flagLive:
			l.live++
			return it, true
		case flagDelete:
			l.tombstones++
		default:
			l.unsettled++
			return it, true
		}
	}
}

func (l *liveStream) Err() error   { return l.in.Err() }
func (l *liveStream) Close() error { return l.in.Close() }

// drain counts the rest of the stream.
func (l *liveStream) drain() error {
	for _, ok := l.Next(); ok; _, ok = l.Next() {
	}
	return l.Err()
}

// topicCount counts the live ids and tombstones the topic implies.
func (c *comparison) topicCount(s *sorter, res *Result) error {
	st, err := s.Finish()
	if err != nil {
		return err
	}
	ls := &liveStream{in: st}
	defer ls.Close()
	if err := ls.drain(); err != nil {
		return err
	}
	res.Right.Count, res.Right.Tombstones = ls.live, ls.tombstones
	return nil
}

// addOnly records an id found on one side only.
func (c *comparison) addOnly(list *[]string, n *int64, id []byte) {
	*n++
	if len(*list) < c.cfg.MaxIDs {
		*list = append(*list, string(id))
	}
}

func (c *comparison) addVersion(res *Result, id []byte, l, r int64) {
	res.Diff.VersionDiffers++
	if len(res.IDs.VersionDiffers) < c.cfg.MaxIDs {
		res.IDs.VersionDiffers = append(res.IDs.VersionDiffers, VersionDiff{ID: string(id), Left: l, Right: r})
	}
}

// join merge-joins two live streams in id order into res.Diff and res.IDs.
// With leftOnly, ids only on the right are not differences (the left side
// is a sample).
func (c *comparison) join(l, r stream, res *Result, leftOnly bool) error {
	li, lok := l.Next()
	ri, rok := r.Next()
	for lok || rok {
		var cmp int
		switch {
		case !rok:
			cmp = -1
		case !lok:
			cmp = 1
		default:
			cmp = bytes.Compare(li.ID, ri.ID)
		}
		// An id inside the settle window on either side is left out: one
		// side may simply not have caught up with it yet.
		switch {
		case cmp < 0:
			if li.Flag == flagLive {
				c.addOnly(&res.IDs.OnlyLeft, &res.Diff.OnlyLeft, li.ID)
			}
			li, lok = l.Next()
		case cmp > 0:
			if !leftOnly && ri.Flag == flagLive {
				c.addOnly(&res.IDs.OnlyRight, &res.Diff.OnlyRight, ri.ID)
			}
			ri, rok = r.Next()
		default:
			if li.Flag == flagLive && ri.Flag == flagLive && li.Version != ri.Version {
				c.addVersion(res, li.ID, li.Version, ri.Version)
			}
			li, lok = l.Next()
			ri, rok = r.Next()
		}
	}
	if err := l.Err(); err != nil {
		return err
	}
	return r.Err()
}

// scrollSorted reads every live id and version of side into a sorter.
func (c *comparison) scrollSorted(ctx context.Context, side indexSide, budget int64) (*sorter, error) {
	dir, err := c.tempDir()
	if err != nil {
		return nil, err
	}
	s := newSorter(dir, budget)
	body := map[string]any{
		"size":             c.cfg.PageSize,
		"sort":             []string{"_doc"},
		"_source":          false,
		"version":          true,
		"track_total_hits": true,
		"query":            c.f.live(),
	}
	started := time.Now()
	n, err := side.scroll(ctx, body, 0, func(id string, version int64, _ string) error {
		return s.Add([]byte(id), version, 0, flagLive)
	})
	if err != nil {
		return nil, err
	}
	if !c.f.cutoff.IsZero() {
		// The ids inside the settle window too, flagged, so that the join
		// can leave them out on both sides.
		body["query"] = c.f.unsettled()
		if _, err := side.scroll(ctx, body, 0, func(id string, version int64, _ string) error {
			return s.Add([]byte(id), version, 0, flagUnsettled)
		}); err != nil {
			return nil, err
		}
	}
	c.log.Debug("read ids", "side", side.which, "index", side.side.Index, "ids", n, "spilled_runs", s.Spills(), "seconds", time.Since(started).Seconds())
	return s, nil
}

// full compares every live id and version of both sides.
func (c *comparison) full(ctx context.Context, topicSorted *sorter, res *Result) error {
	if _, err := c.tempDir(); err != nil {
		return err
	}
	budget := c.cfg.MemoryBytes / 2
	var ls, rs *sorter
	var lerr, rerr error
	if topicSorted != nil {
		ls, lerr = c.scrollSorted(ctx, c.left, budget)
		rs = topicSorted
	} else {
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if rs, rerr = c.scrollSorted(ctx, c.right, budget); rerr != nil {
				cancel()
			}
		}()
		if ls, lerr = c.scrollSorted(ctx, c.left, budget); lerr != nil {
			cancel()
		}
		wg.Wait()
		cancel()
	}
	if lerr != nil {
		return lerr
	}
	if rerr != nil {
		return rerr
	}
	lst, err := ls.Finish()
	if err != nil {
		return err
	}
	res.SpilledRuns += ls.Spills()
	if topicSorted == nil {
		res.SpilledRuns += rs.Spills()
	}
	rst, err := rs.Finish()
	if err != nil {
		lst.Close()
		return err
	}
	l, r := &liveStream{in: lst}, &liveStream{in: rst}
	defer l.Close()
	defer r.Close()
	if err := c.join(l, r, res, false); err != nil {
		return err
	}
	// The counts of the compared ids: exact, and consistent with Diff even
	// when the sides changed after they were counted.
	res.Left.Count = l.live
	res.Right.Count = r.live
	if topicSorted != nil {
		res.Right.Tombstones = r.tombstones
	}
	return nil
}

// sampleBatch is the number of ids per mget.
const sampleBatch = 1000

// sample draws cfg.Sample live ids at random from the left side and looks
// them up on the right.
func (c *comparison) sample(ctx context.Context, topicSorted *sorter, res *Result) error {
	type drawn struct {
		id      string
		version int64
		routing string
	}
	var ids []drawn
	body := map[string]any{
		"size":    min(c.cfg.Sample, c.cfg.PageSize),
		"_source": false,
		"version": true,
		"sort":    []string{"_score"},
		"query": map[string]any{"function_score": map[string]any{
			"query":        c.f.live(),
			"random_score": map[string]any{"seed": rand.Int64N(1 << 31), "field": "_seq_no"},
			"boost_mode":   "replace",
		}},
	}
	if _, err := c.left.scroll(ctx, body, int64(c.cfg.Sample), func(id string, version int64, routing string) error {
		ids = append(ids, drawn{id, version, routing})
		return nil
	}); err != nil {
		return err
	}
	if topicSorted != nil {
		// Sorted sample against the topic's sorted live ids.
		slices.SortFunc(ids, func(a, b drawn) int { return bytes.Compare([]byte(a.id), []byte(b.id)) })
		dir, err := c.tempDir()
		if err != nil {
			return err
		}
		ss := newSorter(dir, c.cfg.MemoryBytes)
		for _, d := range ids {
			if err := ss.Add([]byte(d.id), d.version, 0, flagLive); err != nil {
				return err
			}
		}
		lst, err := ss.Finish()
		if err != nil {
			return err
		}
		rst, err := topicSorted.Finish()
		if err != nil {
			lst.Close()
			return err
		}
		l, r := &liveStream{in: lst}, &liveStream{in: rst}
		defer l.Close()
		defer r.Close()
		if err := c.join(l, r, res, true); err != nil {
			return err
		}
		res.Sampled = len(ids)
		res.Right.Count, res.Right.Tombstones = r.live, r.tombstones
		return nil
	}
	fields := []string{c.cfg.TombstoneField}
	if c.cfg.TimeField != "" {
		fields = append(fields, c.cfg.TimeField)
	}
	path := timePath(c.cfg.TimeField)
	// Each id is looked up with the routing the left side stored it with,
	// so custom routing finds it on the right too.
	batch := make([]mgetID, 0, sampleBatch)
	for start := 0; start < len(ids); start += sampleBatch {
		batch = batch[:0]
		for _, d := range ids[start:min(start+sampleBatch, len(ids))] {
			batch = append(batch, mgetID{ID: d.id, Routing: d.routing})
		}
		docs, err := c.right.mget(ctx, batch, fields)
		if err != nil {
			return err
		}
		for i, doc := range docs {
			want := ids[start+i]
			live := doc.Found && !hasField(doc.Source, []string{c.cfg.TombstoneField})
			switch {
			case live && !c.f.cutoff.IsZero() && !docSettled(doc.Source, path, c.f.cutoff):
				continue // changed on the right inside the settle window
			case !live:
				c.addOnly(&res.IDs.OnlyLeft, &res.Diff.OnlyLeft, []byte(want.id))
			case doc.Version != want.version:
				c.addVersion(res, []byte(want.id), want.version, doc.Version)
			}
			res.Sampled++
		}
	}
	return nil
}

// hasField reports whether the JSON object src has a non-null value at path.
func hasField(src json.RawMessage, path []string) bool {
	if len(src) == 0 {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(src, &m) != nil {
		return false
	}
	for i, tok := range path {
		v, ok := m[tok]
		if !ok || string(v) == "null" {
			return false
		}
		if i == len(path)-1 {
			return true
		}
		m = nil
		if json.Unmarshal(v, &m) != nil {
			return false
		}
	}
	return false
}
