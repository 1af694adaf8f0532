package indexer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/reindexer/reindexer/internal/osreq"
)

// LoadSettings are the index settings a bulk load changes, as set
// explicitly on one concrete index; "" means not set (the cluster default
// applies, and restoring sets it back to null).
type LoadSettings struct {
	RefreshInterval string `json:"refresh_interval,omitempty"`
	Replicas        string `json:"number_of_replicas,omitempty"`
}

// ReadLoadSettings returns the explicit refresh_interval and
// number_of_replicas of every concrete index behind index (an index or an
// alias), by name.
func ReadLoadSettings(ctx context.Context, c *opensearchapi.Client, index string) (map[string]LoadSettings, error) {
	q := url.Values{"filter_path": {"*.settings.index.refresh_interval,*.settings.index.number_of_replicas"}}
	var ans map[string]struct {
		Settings struct {
			Index LoadSettings `json:"index"`
		} `json:"settings"`
	}
	if err := osreq.JSON(ctx, c, http.MethodGet, "/"+url.PathEscape(index)+"/_settings?"+q.Encode(), nil, &ans); err != nil {
		return nil, fmt.Errorf("read settings of %s: %w", index, err)
	}
	out := make(map[string]LoadSettings, len(ans))
	for name, s := range ans {
		out[name] = s.Settings.Index
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("read settings of %s: no index answered", index)
	}
	return out, nil
}

// PutLoadSettings sets refresh_interval and number_of_replicas of the
// concrete index name; "" resets a setting to the cluster default (null).
// keepReplicas leaves number_of_replicas alone.
func PutLoadSettings(ctx context.Context, c *opensearchapi.Client, name string, s LoadSettings, keepReplicas bool) error {
	body := map[string]any{"index.refresh_interval": nullable(s.RefreshInterval)}
	if !keepReplicas {
		body["index.number_of_replicas"] = nullable(s.Replicas)
	}
	if err := osreq.JSON(ctx, c, http.MethodPut, "/"+url.PathEscape(name)+"/_settings", body, nil); err != nil {
		return fmt.Errorf("set refresh_interval/number_of_replicas of %s: %w", name, err)
	}
	return nil
}

// RestoreLoadSettings puts back the settings a bulk load replaced, on
// every index of originals, and refreshes them so that what the load wrote
// becomes searchable. It tries every index and returns the first error.
func RestoreLoadSettings(ctx context.Context, c *opensearchapi.Client, originals map[string]LoadSettings, replicasChanged bool) error {
	names := make([]string, 0, len(originals))
	for n := range originals {
		names = append(names, n)
	}
	sort.Strings(names)
	var first error
	for _, n := range names {
		err := PutLoadSettings(ctx, c, n, originals[n], !replicasChanged)
		if err == nil {
			err = osreq.JSON(ctx, c, http.MethodPost, "/"+url.PathEscape(n)+"/_refresh", nil, nil)
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

func nullable(s string) any {
	if s == "" {
		return json.RawMessage("null")
	}
	return s
}
