package itest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// adminTimeout bounds topic creation, deletion and the metadata wait.
const adminTimeout = 30 * time.Second

// CreateTopic creates topic name with the given partitions and replication
// factor 1, waits until the metadata shows every partition with a leader,
// and deletes it when the test ends (unless KEEP_TEST_DATA=1).
func CreateTopic(t testing.TB, env *Env, name string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.KafkaBrokers...))
	if err != nil {
		t.Fatalf("itest: Kafka client: %v", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(t.Context(), adminTimeout)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, name); err != nil {
		t.Fatalf("itest: create topic %s (%d partitions): %v", name, partitions, err)
	}
	t.Cleanup(func() {
		if env.KeepTestData {
			t.Logf("itest: KEEP_TEST_DATA: keeping topic %s", name)
			return
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(env.KafkaBrokers...))
		if err != nil {
			t.Errorf("itest: delete topic %s: %v", name, err)
			return
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		if _, err := kadm.NewClient(cl).DeleteTopic(ctx, name); err != nil {
			t.Errorf("itest: delete topic %s: %v", name, err)
		}
	})
	if err := waitTopic(ctx, adm, name, partitions); err != nil {
		t.Fatalf("itest: topic %s: %v", name, err)
	}
}

func waitTopic(ctx context.Context, adm *kadm.Client, name string, partitions int32) error {
	var last error
	for {
		md, err := adm.Metadata(ctx, name)
		switch td, ok := md.Topics[name]; {
		case err != nil:
			last = fmt.Errorf("metadata: %w", err)
		case !ok:
			last = fmt.Errorf("not in metadata")
		case td.Err != nil:
			last = fmt.Errorf("metadata: %w", td.Err)
		case int32(len(td.Partitions)) != partitions:
			last = fmt.Errorf("metadata shows %d of %d partitions", len(td.Partitions), partitions)
		default:
			last = nil
			for _, p := range td.Partitions {
				if p.Err != nil || p.Leader < 0 {
					last = fmt.Errorf("partition %d has no leader yet (%v)", p.Partition, p.Err)
				}
			}
			if last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready before the deadline: %w (%w)", last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Produced summarises a Produce call.
type Produced struct {
	// Records is the number of records written.
	Records int
	// EndOffsets maps each partition written to to one past its last
	// offset written by this call.
	EndOffsets map[int32]int64
}

// produceChunk bounds how many records one ProduceSync call carries.
const produceChunk = 5000

// Record returns the Kafka record of e for topic: key = id, value = the
// envelope, or for a tombstone a nil value with the version header.
func Record(topic string, e chatgen.Event) *kgo.Record {
	r := &kgo.Record{Topic: topic, Key: e.Key(), Value: e.Value()}
	if e.Tombstone {
		r.Headers = []kgo.RecordHeader{{Key: chatgen.VersionHeader, Value: e.VersionHeaderValue()}}
	}
	return r
}

// Produce writes events to topic in order, synchronously, keyed by id, with
// an idempotent producer (acks=all), so that the records of one id keep
// their order within their partition. It fails the test on any error.
func Produce(t testing.TB, env *Env, topic string, events []chatgen.Event) Produced {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(env.KafkaBrokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence (the default) needs acks=all
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerLinger(5*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("itest: Kafka producer: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	out := Produced{EndOffsets: map[int32]int64{}}
	recs := make([]*kgo.Record, 0, min(len(events), produceChunk))
	for start := 0; start < len(events); start += produceChunk {
		recs = recs[:0]
		for _, e := range events[start:min(start+produceChunk, len(events))] {
			recs = append(recs, Record(topic, e))
		}
		for _, r := range cl.ProduceSync(ctx, recs...) {
			if r.Err != nil {
				t.Fatalf("itest: produce to %s (record key %q): %v", topic, r.Record.Key, r.Err)
			}
			if end := r.Record.Offset + 1; end > out.EndOffsets[r.Record.Partition] {
				out.EndOffsets[r.Record.Partition] = end
			}
			out.Records++
		}
	}
	return out
}
