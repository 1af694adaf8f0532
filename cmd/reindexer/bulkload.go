package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/reindexer/reindexer/checkpoint"
	"github.com/reindexer/reindexer/indexer"
)

// bulkLoadUsage documents --bulk-load (replay).
const bulkLoadUsage = "for a replay into an index that serves no searches yet (a restored new cluster before cutover): set its refresh_interval to -1 " +
	"(and, with --bulk-load-replicas, number_of_replicas to 0) for the replay and restore the original settings at the end, also after a kill -9 " +
	"(the originals are kept in the checkpoint index until restored); never used on an index the flag was not given for"

// bulkLoadState is what the checkpoint index keeps while a bulk load runs.
type bulkLoadState struct {
	ReplicasChanged bool                            `json:"replicas_changed"`
	Indices         map[string]indexer.LoadSettings `json:"indices"`
}

// bulkLoad applies (on) or cleans up (!on) the bulk-load settings of the
// replay of group from topic into index, and returns the function that
// restores the originals when the replay stops. A record left by a killed
// run is honoured: its originals are the ones restored, whether or not
// this run asks for a bulk load.
func bulkLoad(ctx context.Context, admin *opensearchapi.Client, store *checkpoint.Store, log *slog.Logger,
	group, topic, index string, on, replicas bool) (restore func(), err error) {
	noop := func() {}
	if store == nil {
		if on {
			return noop, usageError{fmt.Errorf("flag --bulk-load needs the checkpoint index (it keeps the original settings until they are restored); do not combine it with --checkpoint-index none")}
		}
		return noop, nil
	}
	rec, found, err := store.LoadBulkLoad(ctx, group, topic, index)
	if err != nil {
		return noop, err
	}
	var st bulkLoadState
	if found {
		if err := json.Unmarshal(rec.Originals, &st); err != nil {
			return noop, fmt.Errorf("bulk load: stored settings of %s: %w", index, err)
		}
	}
	restoreNow := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := indexer.RestoreLoadSettings(rctx, admin, st.Indices, st.ReplicasChanged); err != nil {
			log.Error("could not restore the index settings --bulk-load changed; they stay recorded in the checkpoint index and the next replay with this --group restores them",
				"index", index, "settings", st.Indices, "err", err)
			return
		}
		if err := store.DeleteBulkLoad(rctx, group, topic, index); err != nil {
			log.Warn("index settings restored, but their record could not be removed", "err", err)
		}
		log.Info("bulk load: index settings restored", "index", index, "settings", st.Indices)
	}
	if !on {
		if found {
			log.Info("an earlier --bulk-load run of this replay left index settings changed; restoring them", "index", index, "since", rec.Time)
			restoreNow()
		}
		return noop, nil
	}
	if !found {
		cur, err := indexer.ReadLoadSettings(ctx, admin, index)
		if err != nil {
			return noop, fmt.Errorf("bulk load: %w", err)
		}
		st = bulkLoadState{ReplicasChanged: replicas, Indices: cur}
		raw, _ := json.Marshal(st)
		// Recorded before anything changes: a kill at any later moment
		// leaves what the next run needs to restore.
		if err := store.SaveBulkLoad(ctx, checkpoint.BulkLoad{Group: group, Topic: topic, Index: index, Originals: raw}); err != nil {
			return noop, fmt.Errorf("bulk load: %w", err)
		}
	}
	for name := range st.Indices {
		if err := indexer.PutLoadSettings(ctx, admin, name, indexer.LoadSettings{RefreshInterval: "-1", Replicas: "0"}, !st.ReplicasChanged); err != nil {
			restoreNow()
			return noop, fmt.Errorf("bulk load: %w", err)
		}
	}
	log.Info("bulk load: refresh disabled for the replay", "index", index, "replicas_to_0", st.ReplicasChanged, "originals", st.Indices)
	return restoreNow, nil
}
