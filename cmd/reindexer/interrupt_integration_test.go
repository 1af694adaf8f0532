//go:build integration

package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/refmodel"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TestReplayInterruptedUnderBlock: a replay whose every write is refused
// (index.blocks.write, a real cluster block) is stopped with Ctrl-C. The
// shutdown abandons the in-flight batch after --drain-timeout; what follows
// it in the partition (the end mark) must not be committed: the replay
// exits 1 (interrupted, not "complete"), the group's commits stay at the
// plan's starts, and the same command run again after the block is lifted
// replays everything, ending equal to the reference model.
func TestReplayInterruptedUnderBlock(t *testing.T) {
	env := itest.Services(t)
	topic, index, ck := itest.Name(t, "intr"), itest.Name(t, "intr"), itest.Name(t, "ck")
	createTopicDLQ(t, env, topic, 2)
	itest.CreateIndex(t, env, index, `{"settings":{"number_of_shards":1,"number_of_replicas":0}}`)
	itest.CleanupIndex(t, env, ck)
	f := newFeed(t, env, topic, chatgen.MustNew(chatConfig(67, 500)))
	ends := f.produce(2000)
	osOK(t, env, http.MethodPut, "/"+index+"/_settings", `{"index.blocks.write":true}`)

	group := itest.Name(t, "g")
	args := replayArgs(env, topic, group, index, ck, "--from-offsets", "0:0,1:0", "--delete-mode", "tombstone",
		"--drain-timeout", "1s")
	p, out := startSplit(t, "replay-blocked", args...)
	for deadline := time.Now().Add(time.Minute); !strings.Contains(readLog(p), "OpenSearch refuses writes"); {
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("no block logged (exited: %v); log:\n%s", p.exited(), tail([]byte(readLog(p)), 3000))
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	waitExit(t, p, time.Minute)
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || ee.ExitCode() != exitFailure {
		t.Fatalf("interrupted replay exited with %v, want exit code %d; log:\n%s", p.err, exitFailure, tail([]byte(readLog(p)), 3000))
	}
	data, _ := os.ReadFile(out)
	var sum summaryJSON
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatalf("stdout is not the --json summary: %v\n%s", err, data)
	}
	if sum.Complete {
		t.Fatalf("summary says complete though nothing was written:\n%s", data)
	}
	adm := kadm.NewClient(itest.Kafka(t, env))
	for part, at := range commits(t, adm, group, topic) {
		if at != 0 {
			t.Errorf("partition %d committed to %d though every write was refused", part, at)
		}
	}

	osOK(t, env, http.MethodPut, "/"+index+"/_settings", `{"index.blocks.write":null}`)
	r := runReplay(t, "replay-resumed", 2*time.Minute, args...)
	if r.Sum.Records != sum64(ends) {
		t.Errorf("the resumed replay read %d records, want all %d", r.Sum.Records, sum64(ends))
	}
	itest.CompareToModel(t, itest.DumpIndex(t, env, index), f.model(t, refmodel.ModeTombstone, below(ends)))
}
