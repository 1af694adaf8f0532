package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/reindexer/reindexer/parity"
)

// checkFlags are the settings of one parity check: the same flags, meaning
// and validation for `reindexer parity` and for the check `reindexer
// cutover` makes before it moves an alias.
type checkFlags struct {
	mode           string
	sample         int
	tolerance      int64
	tombstoneField string
	bucket         string
	settle         time.Duration
	timeField      string
}

func (f *checkFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.mode, "mode", string(parity.ModeCount), "count (live-document counts), sample (counts and --sample random ids looked up on the right) or full (every id and version)")
	fs.IntVar(&f.sample, "sample", parity.DefaultSample, "how many ids --mode sample draws from the left side")
	fs.Int64Var(&f.tolerance, "tolerance", 0, "how many differing documents still count as equal")
	fs.StringVar(&f.tombstoneField, "tombstone-field", parity.DefaultTombstoneField, "marker field of tombstone documents: they are not live, and equal to no document")
	fs.StringVar(&f.bucket, "bucket", "", "break the counts down: FIELD (terms, e.g. room_id) or FIELD:INTERVAL (date histogram, e.g. created_at:1d); index sides only")
	fs.DurationVar(&f.settle, "settle", 0, "leave out documents whose --time-field is newer than this (e.g. 5m), so indexing lag is not drift")
	fs.StringVar(&f.timeField, "time-field", "", "date field --settle filters on (e.g. updated_at); documents without it are kept")
}

// config checks the flags and returns the check's part of a parity.Config
// (the caller sets the sides and the rest). Errors are usageErrors naming
// the flag.
func (f *checkFlags) config() (parity.Config, error) {
	mode, err := parity.ParseMode(f.mode)
	if err != nil {
		return parity.Config{}, usageError{fmt.Errorf("flag --mode: %v", err)}
	}
	switch {
	case f.sample <= 0:
		return parity.Config{}, usageError{fmt.Errorf("flag --sample must be positive, got %d", f.sample)}
	case f.tolerance < 0:
		return parity.Config{}, usageError{fmt.Errorf("flag --tolerance must not be negative, got %d", f.tolerance)}
	case f.settle < 0:
		return parity.Config{}, usageError{fmt.Errorf("flag --settle must not be negative, got %s", f.settle)}
	case (f.settle > 0) != (f.timeField != ""):
		return parity.Config{}, usageError{errors.New("flags --settle and --time-field go together: give both or neither")}
	case f.tombstoneField == "":
		return parity.Config{}, usageError{errors.New("flag --tombstone-field must not be empty")}
	}
	if f.bucket != "" {
		if err := parity.ParseBucket(f.bucket); err != nil {
			return parity.Config{}, usageError{fmt.Errorf("flag --bucket: %v", err)}
		}
	}
	return parity.Config{Mode: mode, Sample: f.sample, Tolerance: f.tolerance, TombstoneField: f.tombstoneField,
		Bucket: f.bucket, Settle: f.settle, TimeField: f.timeField}, nil
}
