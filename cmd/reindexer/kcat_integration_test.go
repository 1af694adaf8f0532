//go:build integration

package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/refmodel"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TestKcatProducer produces the sample events with kcat (librdkafka), an
// independent Kafka client, into the real broker, indexes them with the
// reindexer binary and compares the index with the reference model: the
// project is not only tested against its own client library.
func TestKcatProducer(t *testing.T) {
	env := itest.Services(t)
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is not installed (apt-get install -y kcat; .ci/run does this): %v", err)
	}
	f, err := os.Open("../../testdata/chat-events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	events, err := chatgen.ReadJSONL(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	topic := itest.Name(t, "kcat")
	index := itest.Name(t, "kcat")
	createTopicDLQ(t, env, topic, 3)

	var in bytes.Buffer
	for _, e := range events {
		if e.Tombstone {
			t.Fatalf("sample holds a tombstone (%s); kcat -K cannot send a null value with a header", e.ID)
		}
		in.Write(e.Key())
		in.WriteByte('\t')
		in.Write(e.Value())
		in.WriteByte('\n')
	}
	cmd := exec.Command(kcat, "-P", "-b", strings.Join(env.KafkaBrokers, ","), "-t", topic, "-K", "\t",
		"-X", "enable.idempotence=true")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v: %s", err, out)
	}
	ends, err := kadm.NewClient(itest.Kafka(t, env)).ListEndOffsets(t.Context(), topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets: %v %v", err, ends.Error())
	}
	want := map[int32]int64{}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { want[o.Partition] = o.Offset; total += o.Offset })
	if total != int64(len(events)) {
		t.Fatalf("kcat produced %d records, want %d", total, len(events))
	}

	group := itest.Name(t, "g")
	w := start(t, "worker", runArgs(env, topic, group, index)...)
	waitGroupAt(t, env, group, topic, want, 2*time.Minute)
	w.term(30 * time.Second)

	itest.CompareToModel(t, itest.DumpIndex(t, env, index), itest.Model(t, refmodel.ModeDelete, events))
}
