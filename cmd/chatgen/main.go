// Command chatgen produces realistic chat-message events (the reindexer's
// default envelope: Japanese and English bodies, rooms, senders, edits,
// deletes, re-creates) into a Kafka topic, for demos, benchmarks and manual
// tests.
//
//	chatgen --brokers 127.0.0.1:9092 --topic chat-events --events 100000 --ids 20000
//	chatgen --brokers 127.0.0.1:9092 --topic chat-events --file testdata/chat-events.jsonl
//
// It prints how many events it produced, by kind, and the end offset of
// every partition it wrote to.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chatgen:", err)
		var ue usageErr
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageErr struct{ error }

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("chatgen", flag.ContinueOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "Kafka brokers, comma-separated")
	topic := fs.String("topic", "", "topic to produce to (required)")
	partitions := fs.Int("partitions", 6, "partitions when the topic is created")
	events := fs.Int("events", 10000, "number of generated events")
	ids := fs.Int("ids", 0, "distinct documents (default events/4)")
	seed := fs.Int64("seed", 1, "generator seed (the same seed gives the same stream)")
	file := fs.String("file", "", "produce the events of this JSONL file instead of generating")
	tombstones := fs.Float64("tombstones", 0, "share of deletes sent as Kafka tombstones (null value, version header)")
	if err := fs.Parse(args); err != nil {
		return usageErr{err}
	}
	if *topic == "" {
		return usageErr{errors.New("flag --topic is required")}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, int32(*partitions), 1, nil, *topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", *topic, err)
	}

	var next func() (chatgen.Event, bool)
	if *file != "" {
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		evs, err := chatgen.ReadJSONL(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", *file, err)
		}
		i := 0
		next = func() (chatgen.Event, bool) {
			if i >= len(evs) {
				return chatgen.Event{}, false
			}
			i++
			return evs[i-1], true
		}
	} else {
		cfg := chatgen.DefaultConfig(*seed)
		cfg.IDs = *ids
		if cfg.IDs == 0 {
			cfg.IDs = max(*events/4, 1)
		}
		cfg.TombstoneProb = *tombstones
		g, err := chatgen.New(cfg)
		if err != nil {
			return usageErr{err}
		}
		n := 0
		next = func() (chatgen.Event, bool) {
			if n >= *events {
				return chatgen.Event{}, false
			}
			n++
			return g.Next(), true
		}
	}
	start := time.Now()
	ends := map[int32]int64{}
	kinds := map[string]int{}
	var firstErr error
	total := 0
	for {
		e, ok := next()
		if !ok || ctx.Err() != nil {
			break
		}
		r := &kgo.Record{Topic: *topic, Key: e.Key(), Value: e.Value()}
		if e.Tombstone {
			r.Headers = []kgo.RecordHeader{{Key: chatgen.VersionHeader, Value: e.VersionHeaderValue()}}
		}
		kinds[e.Kind.String()]++
		total++
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			ends[r.Partition] = max(ends[r.Partition], r.Offset+1)
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if firstErr != nil {
		return fmt.Errorf("produce: %w", firstErr)
	}
	fmt.Fprintf(out, "produced %d events to %s in %s\n", total, *topic, time.Since(start).Round(time.Millisecond))
	var ks []string
	for k := range kinds {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		fmt.Fprintf(out, "  %-10s %d\n", k, kinds[k])
	}
	var ps []int
	for p := range ends {
		ps = append(ps, int(p))
	}
	sort.Ints(ps)
	for _, p := range ps {
		fmt.Fprintf(out, "  partition %d end offset %d\n", p, ends[int32(p)])
	}
	return nil
}
