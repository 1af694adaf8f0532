package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
)

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
