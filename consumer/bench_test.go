package consumer

import (
	"io"
	"log/slog"
	"testing"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/reindexer/reindexer/event"
	"github.com/reindexer/reindexer/indexer"
	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkHotPath measures what the poll goroutine does per record: decode
// the envelope, append the action line and the untouched document to the
// lane's bulk buffer, and note the offset. Run with -benchmem: the target is
// zero allocations per record once the buffers have grown.
func BenchmarkHotPath(b *testing.B) {
	g := chatgen.MustNew(chatgen.DefaultConfig(1))
	const n = 4096
	recs := make([]*kgo.Record, n)
	var bytes int64
	for i := range recs {
		e := g.Next()
		recs[i] = &kgo.Record{Topic: "t", Partition: int32(i % 4), Offset: int64(i), Key: e.Key(), Value: e.Value()}
		if e.Tombstone {
			recs[i].Headers = []kgo.RecordHeader{{Key: "version", Value: e.VersionHeaderValue()}}
		}
		bytes += int64(len(recs[i].Value))
	}
	oc, _ := opensearch.NewClient(opensearch.Config{Addresses: []string{"http://127.0.0.1:1"}})
	ix, err := indexer.New(oc, indexer.Config{Index: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	dec, _ := event.NewDecoder(event.Config{})
	p := &pipeline{cfg: Config{BatchBytes: DefaultBatchBytes, BatchDocs: DefaultBatchDocs}, ix: ix,
		m: metrics.New(nil), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ln := newLane(p, 0, dec)
	parts := []*part{{id: 0, end: -1, lane: ln}, {id: 1, end: -1, lane: ln}, {id: 2, end: -1, lane: ln}, {id: 3, end: -1, lane: ln}}
	bt := &batch{}
	b.SetBytes(bytes / n)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := recs[i%n]
		p.add(bt, parts[r.Partition], r)
		if p.full(bt) {
			bt.reset()
		}
		i++
	}
}
