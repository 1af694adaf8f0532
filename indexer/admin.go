package indexer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/reindexer/reindexer/internal/osreq"
)

// Cluster describes the OpenSearch cluster being written. Everything that
// differs between OpenSearch majors is decided here, from Major.
type Cluster struct {
	Distribution string // "opensearch"
	Version      string // e.g. "2.19.1"
	Major        int
}

// DefaultGCDeletes is index.gc_deletes when an index does not set it, the
// same on OpenSearch 2.x and 3.x.
const DefaultGCDeletes = 60 * time.Second

// ClusterInfo asks the cluster for its version.
func ClusterInfo(ctx context.Context, c *opensearchapi.Client) (Cluster, error) {
	resp, err := c.Info(ctx, nil)
	if err != nil {
		return Cluster{}, fmt.Errorf("opensearch info: %w", err)
	}
	v := resp.Version.Number
	major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	dist := resp.Version.Distribution
	if dist == "" {
		dist = "elasticsearch"
	}
	return Cluster{Distribution: dist, Version: v, Major: major}, nil
}

// Supported reports whether the reindexer supports this cluster, with the
// reason if not.
func (c Cluster) Supported() (bool, string) {
	if c.Distribution != "opensearch" {
		return false, fmt.Sprintf("%s %s is not OpenSearch; the reindexer is tested against OpenSearch 2.x and 3.x", c.Distribution, c.Version)
	}
	if c.Major < 2 || c.Major > 3 {
		return false, fmt.Sprintf("OpenSearch %s is outside the supported range 2.x-3.x", c.Version)
	}
	return true, ""
}

// IndexSettings are the settings of the target index the reindexer cares
// about. For an alias, the values of its first concrete index.
type IndexSettings struct {
	Exists    bool
	Concrete  []string      // concrete indices behind the name
	GCDeletes time.Duration // index.gc_deletes, explicit or default
}

// ReadIndexSettings reads index.gc_deletes (explicit or the default) of
// index, which may be an alias. A missing index is not an error.
func ReadIndexSettings(ctx context.Context, c *opensearchapi.Client, index string) (IndexSettings, error) {
	// Nested (not flat) settings: filter_path cannot match the dotted keys
	// of flat_settings, and would silently return {}.
	q := url.Values{"include_defaults": {"true"}, "filter_path": {"*.settings.index.gc_deletes,*.defaults.index.gc_deletes"}}
	body, err := osreq.Do(ctx, c, http.MethodGet, "/"+url.PathEscape(index)+"/_settings?"+q.Encode(), nil)
	if osreq.IsNotFound(err) {
		return IndexSettings{}, nil
	}
	if err != nil {
		return IndexSettings{}, fmt.Errorf("read settings of %s: %w", index, err)
	}
	type gc struct {
		Index struct {
			GCDeletes string `json:"gc_deletes"`
		} `json:"index"`
	}
	var parsed map[string]struct {
		Settings gc `json:"settings"`
		Defaults gc `json:"defaults"`
	}
	if err := json.Unmarshal(body, &parsed); err != nil {
		return IndexSettings{}, fmt.Errorf("read settings of %s: %w", index, err)
	}
	out := IndexSettings{Exists: true, GCDeletes: DefaultGCDeletes}
	first := true
	for name, s := range parsed {
		out.Concrete = append(out.Concrete, name)
		v := s.Settings.Index.GCDeletes
		if v == "" {
			v = s.Defaults.Index.GCDeletes
		}
		if d, err := parseOSDuration(v); err == nil && (first || d < out.GCDeletes) {
			out.GCDeletes = d
			first = false
		}
	}
	return out, nil
}

// parseOSDuration parses OpenSearch time values: "60s", "1m", "500ms",
// "7d", "-1".
func parseOSDuration(v string) (time.Duration, error) {
	switch {
	case v == "":
		return 0, fmt.Errorf("empty duration")
	case v == "-1" || v == "0":
		return 0, nil
	case strings.HasSuffix(v, "d"):
		n, err := strconv.ParseFloat(strings.TrimSuffix(v, "d"), 64)
		return time.Duration(n * float64(24*time.Hour)), err
	case strings.HasSuffix(v, "nanos"):
		n, err := strconv.ParseInt(strings.TrimSuffix(v, "nanos"), 10, 64)
		return time.Duration(n), err
	case strings.HasSuffix(v, "micros"):
		n, err := strconv.ParseInt(strings.TrimSuffix(v, "micros"), 10, 64)
		return time.Duration(n) * time.Microsecond, err
	}
	return time.ParseDuration(v)
}

// DeleteRisk returns a warning when deletes written in mode can be undone
// by a later replay of older upserts, or "" when they cannot. bounded is true
// for a replay that stops at fixed end offsets (and so may run beside another
// writer of the same index).
func DeleteRisk(mode DeleteMode, s IndexSettings, bounded bool) string {
	if mode == Tombstone {
		return ""
	}
	remedy := "use --delete-mode tombstone (deletes become versioned marker documents that no older write can replace), " +
		"or raise index.gc_deletes above the longest replay (PUT <index>/_settings {\"index.gc_deletes\":\"7d\"}; costs heap per delete)"
	gc := s.GCDeletes
	if !s.Exists {
		gc = DefaultGCDeletes
	}
	switch {
	case gc <= 0:
		return fmt.Sprintf("index.gc_deletes is %s: OpenSearch forgets deletes at once, so any older upsert replayed later resurrects deleted documents; %s", gc, remedy)
	case gc < DefaultGCDeletes:
		return fmt.Sprintf("index.gc_deletes is %s, below the default %s: OpenSearch forgets a delete after that long, so a duplicate or late older upsert arriving later brings the document back; %s", gc, DefaultGCDeletes, remedy)
	case bounded:
		return fmt.Sprintf("delete mode with a bounded replay: OpenSearch remembers a deleted document's version for index.gc_deletes=%s (and forgets it on a node restart); "+
			"if another writer deletes a document and this replay re-sends an older upsert of it more than %s later, the document comes back. "+
			"Safe if nothing else writes this index during the replay, or if the replay continues as the live indexer (reindexer run --start snapshot:...); otherwise %s", gc, gc, remedy)
	}
	return ""
}
