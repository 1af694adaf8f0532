package parity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reindexer/reindexer/event"
	"github.com/reindexer/reindexer/internal/jsonscan"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// topicRead is what reading a topic side found.
type topicRead struct {
	records     int64 // data records read
	undecodable int64 // records the indexer would dead-letter
	ends        map[int32]int64
}

// readTopic reads every record of t from the start of each partition up to
// the last stable offsets captured when it starts, decodes each one and adds
// (id, version, order, flag) to s. Upserts whose document has a time field
// at or after cutoff are flagged unsettled (when cutoff is set).
func readTopic(ctx context.Context, t *Topic, cutoff time.Time, timePath []string, s *sorter) (topicRead, error) {
	var out topicRead
	dec, err := event.NewDecoder(t.Decoder)
	if err != nil {
		return out, fmt.Errorf("topic %s: decoder: %w", t.Topic, err)
	}
	opts := append([]kgo.Opt{},
		t.Kafka...)
	opts = append(opts,
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(2<<20),
		kgo.FetchMaxPartitionBytes(1<<20),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return out, fmt.Errorf("topic %s: Kafka client: %w", t.Topic, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// A read-committed consumer cannot pass the last stable offset, so that
	// is the end of each partition (the high watermark unless a transaction
	// is open).
	ends, err := adm.ListCommittedOffsets(ctx, t.Topic)
	if err == nil {
		err = ends.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return out, fmt.Errorf("topic %s does not exist (%w)", t.Topic, err)
	}
	if err != nil {
		return out, fmt.Errorf("topic %s: list end offsets: %w", t.Topic, err)
	}
	if len(ends[t.Topic]) == 0 {
		return out, fmt.Errorf("topic %s does not exist or has no partitions", t.Topic)
	}
	starts, err := adm.ListStartOffsets(ctx, t.Topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return out, fmt.Errorf("topic %s: list start offsets: %w", t.Topic, err)
	}
	out.ends = map[int32]int64{}
	assign := map[int32]kgo.Offset{}
	pending := 0
	for p, o := range ends[t.Topic] {
		out.ends[p] = o.Offset
		start := int64(0)
		if so, ok := starts.Lookup(t.Topic, p); ok {
			start = so.Offset
		}
		if start < o.Offset {
			assign[p] = kgo.NewOffset().At(start)
			pending++
		}
	}
	if pending == 0 {
		return out, nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{t.Topic: assign})
	done := map[int32]bool{}
	var seq int64
	var idbuf []byte
	for pending > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("topic %s: %w", t.Topic, err)
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("topic %s partition %d: fetch: %w", topic, p, err)
			}
		})
		if ferr != nil {
			return out, ferr
		}
		var addErr error
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			end := out.ends[fp.Partition]
			for _, r := range fp.Records {
				if done[fp.Partition] || r.Offset >= end || addErr != nil {
					break
				}
				if r.Offset+1 >= end {
					done[fp.Partition] = true
					pending--
					cl.PauseFetchPartitions(map[string][]int32{t.Topic: {fp.Partition}})
				}
				if r.Attrs.IsControl() {
					continue
				}
				out.records++
				ev, err := dec.Decode(r)
				if err != nil {
					out.undecodable++
					continue
				}
				seq++
				id := ev.ID
				if bytes.IndexByte(id, '\\') >= 0 {
					if idbuf, err = jsonscan.AppendUnescaped(idbuf[:0], id); err != nil {
						out.undecodable++
						continue
					}
					id = idbuf
				}
				flag := flagLive
				switch {
				case ev.Op == event.Delete:
					flag = flagDelete
				case !cutoff.IsZero() && !docSettled(ev.Doc, timePath, cutoff):
					flag = flagUnsettled
				}
				addErr = s.Add(id, ev.Version, seq, flag)
			}
		})
		if addErr != nil {
			return out, addErr
		}
	}
	return out, nil
}

// docSettled reports whether doc's time field (at path) is before cutoff;
// a document without the field, or with a value that is not a date, counts
// as settled (the index keeps such documents too).
func docSettled(doc []byte, path []string, cutoff time.Time) bool {
	start, end, found, err := jsonscan.Lookup(doc, jsonscan.SkipSpace(doc, 0), path)
	if err != nil || !found {
		return true
	}
	t, ok := parseTime(doc[start:end])
	return !ok || t.Before(cutoff)
}

// parseTime reads a JSON date as OpenSearch's default date format does: a
// number or numeric string is epoch milliseconds, a string an ISO 8601
// date or date-time (UTC unless it has an offset).
func parseTime(v []byte) (time.Time, bool) {
	if len(v) == 0 {
		return time.Time{}, false
	}
	s := string(v)
	if v[0] == '"' {
		u, err := strconv.Unquote(s)
		if err != nil {
			return time.Time{}, false
		}
		s = u
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && v[0] != '"' {
		return time.UnixMilli(int64(f)), true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// timePath splits a dotted field name into JSON pointer tokens.
func timePath(field string) []string {
	return strings.Split(field, ".")
}
