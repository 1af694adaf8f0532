package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// DefaultMargin is how far before a snapshot's start SinceSnapshot looks by
// default, for clock skew between the workers and the cluster.
const DefaultMargin = time.Minute

// ErrSnapshotMissing is returned (wrapped) by SnapshotInfo when the
// repository has no such snapshot.
var ErrSnapshotMissing = errors.New("snapshot does not exist")

// ErrRepositoryMissing is returned (wrapped) by SnapshotInfo when the cluster
// has no such snapshot repository.
var ErrRepositoryMissing = errors.New("snapshot repository is not registered")

// Snapshot states, as OpenSearch reports them.
const (
	SnapshotSuccess    = "SUCCESS"
	SnapshotInProgress = "IN_PROGRESS"
	SnapshotPartial    = "PARTIAL"
	SnapshotFailed     = "FAILED"
)

// Snapshot describes one snapshot, as GET _snapshot/<repo>/<name> reports
// it.
type Snapshot struct {
	// Repo is the repository the snapshot was read from.
	Repo string
	// Name is the snapshot's name.
	Name string
	// UUID is the snapshot's UUID.
	UUID string
	// State is SUCCESS, IN_PROGRESS, PARTIAL, FAILED or INCOMPATIBLE.
	State string
	// Start is when the snapshot started (cluster clock, millisecond
	// precision). Every shard was captured at or after it.
	Start time.Time
	// End is when the snapshot ended; zero while in progress.
	End time.Time
	// Indices are the indices the snapshot holds.
	Indices []string
	// ShardsTotal, ShardsFailed and ShardsSuccessful count its shards.
	ShardsTotal, ShardsFailed, ShardsSuccessful int
	// Version is the OpenSearch version that took the snapshot.
	Version string
}

// Usable returns an error unless the snapshot completed successfully and,
// when index is not empty, holds index: a partial, failed or unfinished
// snapshot lacks whole shards, which no replay from a checkpoint restores.
func (s Snapshot) Usable(index string) error {
	if s.State != SnapshotSuccess {
		return fmt.Errorf("snapshot %s/%s is %s (%d of %d shards failed), not %s",
			s.Repo, s.Name, s.State, s.ShardsFailed, s.ShardsTotal, SnapshotSuccess)
	}
	if index != "" && !slices.Contains(s.Indices, index) {
		return fmt.Errorf("snapshot %s/%s does not hold index %s (it holds %s)", s.Repo, s.Name, index, strings.Join(s.Indices, ", "))
	}
	return nil
}

// SnapshotInfo reads snapshot name of repository repo. A missing snapshot
// or repository gives an error wrapping ErrSnapshotMissing or
// ErrRepositoryMissing that names both. (It uses a hand-built request: the
// typed API's struct cannot decode snapshots whose user metadata holds
// non-string values.)
func SnapshotInfo(ctx context.Context, client *opensearchapi.Client, repo, name string) (Snapshot, error) {
	if repo == "" || name == "" {
		return Snapshot{}, fmt.Errorf("snapshot info: need a repository and a snapshot name (got %q/%q)", repo, name)
	}
	path := "/_snapshot/" + url.PathEscape(repo) + "/" + url.PathEscape(name)
	data, err := perform(ctx, client, http.MethodGet, path, nil)
	if err != nil {
		switch _, typ := errorInfo(err); typ {
		case "snapshot_missing_exception":
			return Snapshot{}, fmt.Errorf("snapshot %s in repository %s: %w (%w)", name, repo, ErrSnapshotMissing, err)
		case "repository_missing_exception":
			return Snapshot{}, fmt.Errorf("snapshot %s in repository %s: %w (%w)", name, repo, ErrRepositoryMissing, err)
		}
		return Snapshot{}, fmt.Errorf("snapshot %s in repository %s: %w", name, repo, err)
	}
	snap, err := parseSnapshot(repo, name, data)
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %s in repository %s: %w", name, repo, err)
	}
	return snap, nil
}

// snapshotJSON is one snapshot of a GET _snapshot answer.
type snapshotJSON struct {
	Snapshot          string   `json:"snapshot"`
	UUID              string   `json:"uuid"`
	Version           string   `json:"version"`
	Indices           []string `json:"indices"`
	State             string   `json:"state"`
	StartTimeInMillis *int64   `json:"start_time_in_millis"`
	EndTimeInMillis   *int64   `json:"end_time_in_millis"`
	Shards            struct {
		Total      int `json:"total"`
		Failed     int `json:"failed"`
		Successful int `json:"successful"`
	} `json:"shards"`
}

// parseSnapshot reads a GET _snapshot answer, {"snapshots":[…]} on
// OpenSearch 1.x, 2.x and 3.x, and picks the snapshot called name (or the
// only one, when name was an expression the server resolved).
func parseSnapshot(repo, name string, data []byte) (Snapshot, error) {
	var ans struct {
		Snapshots []snapshotJSON `json:"snapshots"`
	}
	if err := json.Unmarshal(data, &ans); err != nil {
		return Snapshot{}, fmt.Errorf("decode answer: %w", err)
	}
	i := slices.IndexFunc(ans.Snapshots, func(s snapshotJSON) bool { return s.Snapshot == name })
	switch {
	case i >= 0:
	case len(ans.Snapshots) == 1:
		i = 0
	case len(ans.Snapshots) == 0:
		return Snapshot{}, fmt.Errorf("%w: the answer lists no snapshot", ErrSnapshotMissing)
	default:
		return Snapshot{}, fmt.Errorf("the name matches %d snapshots; name exactly one", len(ans.Snapshots))
	}
	s := ans.Snapshots[i]
	if s.StartTimeInMillis == nil || *s.StartTimeInMillis <= 0 {
		return Snapshot{}, errors.New("the answer has no start_time_in_millis")
	}
	out := Snapshot{
		Repo: repo, Name: s.Snapshot, UUID: s.UUID, State: s.State, Version: s.Version,
		Start:       time.UnixMilli(*s.StartTimeInMillis).UTC(),
		Indices:     s.Indices,
		ShardsTotal: s.Shards.Total, ShardsFailed: s.Shards.Failed, ShardsSuccessful: s.Shards.Successful,
	}
	if s.EndTimeInMillis != nil && *s.EndTimeInMillis > 0 {
		out.End = time.UnixMilli(*s.EndTimeInMillis).UTC()
	}
	return out, nil
}

// SinceSnapshot plans `--since-snapshot`: the offset of every partition of
// topic from which a replay restores what a snapshot of sourceIndex that
// started at snapStart may lack. With cutoff = snapStart − margin (margin 0
// means DefaultMargin), a partition with checkpoints for topic and
// sourceIndex before the cutoff starts at the greatest such offset (see
// Store.Before); the others fall back to the first offset whose record
// timestamp is at or after the cutoff (the end offset when there is none),
// which is only safe if producer timestamps are close to wall-clock time.
// store may be nil (no checkpoint history): every partition falls back.
// note says, for a human, which partitions used which rule, and warns about
// history the topic contradicts (a checkpoint past the partition's end: the
// topic was recreated; that partition falls back) or records already deleted
// by retention.
func SinceSnapshot(ctx context.Context, store *Store, adm *kadm.Client, topic, sourceIndex string, snapStart time.Time, margin time.Duration) (starts map[int32]int64, note string, err error) {
	switch {
	case snapStart.IsZero():
		return nil, "", errors.New("since snapshot: zero snapshot start time")
	case margin < 0:
		return nil, "", fmt.Errorf("since snapshot: negative clock-skew margin %s", margin)
	case margin == 0:
		margin = DefaultMargin
	}
	cutoff := snapStart.Add(-margin)
	logStarts, err := listOffsets(topic, "start", func() (kadm.ListedOffsets, error) { return adm.ListStartOffsets(ctx, topic) })
	if err != nil {
		return nil, "", err
	}
	ends, err := listOffsets(topic, "end", func() (kadm.ListedOffsets, error) { return adm.ListEndOffsets(ctx, topic) })
	if err != nil {
		return nil, "", err
	}
	var history map[int32]Checkpoint
	if store != nil {
		if history, err = store.Before(ctx, topic, sourceIndex, cutoff); err != nil {
			return nil, "", fmt.Errorf("since snapshot: %w", err)
		}
	}

	starts = map[int32]int64{}
	var fromHistory, fallback, retention, contradicted []int32
	var oldest, newest time.Time
	groups := map[string]bool{}
	for _, p := range sortedPartitions(ends) {
		cp, ok := history[p]
		if ok && cp.Offset > ends[p] {
			contradicted = append(contradicted, p)
			ok = false
		}
		if !ok {
			fallback = append(fallback, p)
			continue
		}
		starts[p] = cp.Offset
		fromHistory = append(fromHistory, p)
		groups[cp.Group] = true
		if oldest.IsZero() || cp.Time.Before(oldest) {
			oldest = cp.Time
		}
		if cp.Time.After(newest) {
			newest = cp.Time
		}
		if cp.Offset < logStarts[p] {
			retention = append(retention, p)
		}
	}
	if len(fallback) > 0 {
		after, err := listOffsets(topic, "timestamp", func() (kadm.ListedOffsets, error) {
			return adm.ListOffsetsAfterMilli(ctx, cutoff.UnixMilli(), topic)
		})
		if err != nil {
			return nil, "", err
		}
		for _, p := range fallback {
			o, ok := after[p]
			if !ok || o < 0 {
				o = ends[p] // no record at or after the cutoff
			}
			starts[p] = o
		}
	}
	var unknown []int32
	for p := range history {
		if _, ok := ends[p]; !ok {
			unknown = append(unknown, p)
		}
	}
	slices.Sort(unknown)

	var b strings.Builder
	fmt.Fprintf(&b, "snapshot started %s; cutoff %s (start - %s clock-skew margin)",
		snapStart.UTC().Format(TimeLayout), cutoff.UTC().Format(TimeLayout), margin)
	if len(fromHistory) > 0 {
		fmt.Fprintf(&b, "; partitions %s start at the last durable offset recorded before the cutoff in checkpoint history %s for index %s (checkpoints from %s to %s, groups %s)",
			partitionList(fromHistory), store.Index(), sourceIndex, oldest.Format(TimeLayout), newest.Format(TimeLayout), strings.Join(slices.Sorted(maps.Keys(groups)), ","))
	}
	if len(fallback) > 0 {
		why := "no checkpoint history before the cutoff"
		if store == nil {
			why = "checkpoint history disabled"
		}
		fmt.Fprintf(&b, "; partitions %s (%s) fall back to the first record with a timestamp at or after the cutoff, which is only safe if producer timestamps are close to wall-clock time",
			partitionList(fallback), why)
	}
	if len(contradicted) > 0 {
		fmt.Fprintf(&b, "; WARNING: checkpoints of partitions %s are past the partition's end offset (was the topic recreated?); they were ignored", partitionList(contradicted))
	}
	if len(retention) > 0 {
		fmt.Fprintf(&b, "; WARNING: on partitions %s the start is below the log start offset: records the snapshot lacks were already deleted by retention and cannot be replayed", partitionList(retention))
	}
	if len(unknown) > 0 {
		fmt.Fprintf(&b, "; checkpoints name partitions %s the topic does not have; ignored", partitionList(unknown))
	}
	return starts, b.String(), nil
}

// listOffsets runs one kadm listing of topic and turns it into partition →
// offset, failing on any partition error or an unknown topic.
func listOffsets(topic, what string, list func() (kadm.ListedOffsets, error)) (map[int32]int64, error) {
	listed, err := list()
	if err == nil {
		err = listed.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil, fmt.Errorf("since snapshot: topic %s does not exist: %w", topic, err)
	}
	if err != nil {
		return nil, fmt.Errorf("since snapshot: list %s offsets of topic %s: %w", what, topic, err)
	}
	out := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) {
		if o.Topic == topic && o.Partition >= 0 {
			out[o.Partition] = o.Offset
		}
	})
	if len(out) == 0 {
		return nil, fmt.Errorf("since snapshot: topic %s does not exist or has no partitions", topic)
	}
	return out, nil
}

// partitionList renders sorted partitions compactly: "0-3,5,7-8".
func partitionList(ps []int32) string {
	var b strings.Builder
	for i := 0; i < len(ps); {
		j := i
		for j+1 < len(ps) && ps[j+1] == ps[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(ps[i])))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(int(ps[j])))
		}
		i = j + 1
	}
	return b.String()
}
