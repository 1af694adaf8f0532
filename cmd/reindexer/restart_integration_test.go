//go:build integration

package main

import (
	"context"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// restartSessionTimeout is the group session timeout of the restart test:
// long enough that waiting it out is clearly told apart from a fast
// restart, short enough to keep the dynamic-membership half bounded.
const restartSessionTimeout = 20 * time.Second

// TestStaticMembershipRestart kills a worker with SIGKILL while events keep
// arriving, restarts it at once, and measures how long the group takes to
// commit progress again: with --instance-id the restarted process takes its
// partitions back within 5 s; without it, the group waits for the dead
// member's session to time out.
func TestStaticMembershipRestart(t *testing.T) {
	static := restartToProgress(t, "ops-static", "--instance-id", "ops-restart-0")
	dynamic := restartToProgress(t, "ops-dynamic")
	t.Logf("restart to progress: %.1fs with --instance-id, %.1fs without (session timeout %s)",
		static.Seconds(), dynamic.Seconds(), restartSessionTimeout)
	if static >= 5*time.Second {
		t.Errorf("with --instance-id the restarted worker made progress after %s, want < 5s", static.Round(time.Millisecond))
	}
	// The comparison shows the flag is what makes the difference: a
	// dynamic member's restart waits for the dead session to expire.
	if dynamic < restartSessionTimeout/2 {
		t.Errorf("without --instance-id progress resumed after %s; expected about the session timeout %s (the test no longer measures what it claims)",
			dynamic.Round(time.Millisecond), restartSessionTimeout)
	}
}

// restartToProgress runs one kill -9 and restart of a worker with extra
// flags and returns the time from the restart to the group's first commit
// past what was committed when the worker died.
func restartToProgress(t *testing.T, prefix string, extra ...string) time.Duration {
	t.Helper()
	env := itest.Services(t)
	topic, group, index := itest.Name(t, prefix), itest.Name(t, prefix), itest.Name(t, prefix)
	createTopicDLQ(t, env, topic, 3)
	itest.CreateIndex(t, env, index, `{"settings":{"number_of_shards":1,"number_of_replicas":0}}`)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	produced := produceUntil(ctx, t, env, topic)

	args := runArgs(env, topic, group, index, append([]string{"--session-timeout", restartSessionTimeout.String(),
		"--delete-mode", "tombstone"}, extra...)...)
	w := start(t, prefix+"-1", args...)
	adm := kadm.NewClient(itest.Kafka(t, env))
	// The first worker is up and committing.
	waitCommitted(t, adm, group, topic, nil, 60*time.Second, w)
	w.kill()
	atKill := committedOffsets(t, adm, group, topic)

	restarted := time.Now()
	w2 := start(t, prefix+"-2", args...)
	waitCommitted(t, adm, group, topic, atKill, 3*restartSessionTimeout, w2)
	took := time.Since(restarted)
	w2.term(60 * time.Second)
	cancel()
	if err := <-produced; err != nil {
		t.Fatalf("producing: %v", err)
	}
	return took
}

// produceUntil produces chat events to topic, 30 every 50ms, until ctx
// ends; the channel yields the first produce error (nil after ctx ends).
func produceUntil(ctx context.Context, t *testing.T, env *itest.Env, topic string) <-chan error {
	cl := itest.Kafka(t, env, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond))
	events := chatgen.MustNew(chatgen.DefaultConfig(17)).Stream(200000)
	out := make(chan error, 1)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(events); i += 30 {
			recs := make([]*kgo.Record, 0, 30)
			for _, e := range events[i:min(i+30, len(events))] {
				recs = append(recs, itest.Record(topic, e))
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil && ctx.Err() == nil {
				out <- err
				return
			}
			select {
			case <-ctx.Done():
				out <- nil
				return
			case <-tick.C:
			}
		}
		out <- nil
	}()
	return out
}

// committedOffsets returns the group's committed offsets of topic.
func committedOffsets(t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	fetched, err := adm.FetchOffsets(ctx, group)
	if err != nil || fetched.Error() != nil {
		t.Fatalf("fetch offsets of %s: %v %v", group, err, fetched.Error())
	}
	out := map[int32]int64{}
	fetched.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

// waitCommitted polls the group's commits until some partition of topic is
// committed past its offset in after (any commit when after is nil). It
// fails the test if w exits or timeout passes first.
func waitCommitted(t *testing.T, adm *kadm.Client, group, topic string, after map[int32]int64, timeout time.Duration, w *proc) {
	t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(50 * time.Millisecond) // poll interval of an awaited condition
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		fetched, err := adm.FetchOffsets(ctx, group)
		cancel()
		if err == nil && fetched.Error() == nil {
			moved := false
			fetched.Each(func(o kadm.OffsetResponse) {
				if o.Topic != topic || o.At < 0 {
					return
				}
				if prev, ok := after[o.Partition]; after == nil || !ok || o.At > prev {
					moved = true
				}
			})
			if moved {
				return
			}
		}
		select {
		case <-deadline:
			t.Fatalf("group %s made no progress within %s (committed %v, before %v)", group, timeout, fetched, after)
		case <-w.done:
			t.Fatalf("%s exited (%v) before the group made progress", w.name, w.err)
		case <-tick.C:
		}
	}
}
