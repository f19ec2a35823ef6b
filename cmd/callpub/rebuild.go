package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/publisher"
	"github.com/callpub/callpub/schemas"
)

// restorer is what a rebuild needs of the store; *dedupe.Store implements it.
type restorer interface {
	seenMarker
	Snapshot(stream string) (dedupe.Snapshot, error)
	Restore(sn dedupe.Snapshot) error
}

// rebuildReport is what a start learnt from the state topic.
type rebuildReport struct {
	records  int      // state records read
	bad      int      // records that could not be used (logged)
	local    int      // owned streams whose local state was current
	restored []string // owned streams whose state came from the changelog
	events   int      // event records read to restore seen marks
	marked   int      // seen marks restored
	took     time.Duration
	seenTook time.Duration // of took, restoring the seen marks
}

// rebuild brings the store up to the state topic before any stream starts.
// It reads the latest state record of every owned stream; where the store
// holds an older sequence (a new or lost disk, or a crash between a record
// and its local commit) the record replaces the stream's state, and the seen
// marks of those streams are restored from the event topic, read from the
// API's horizon (only the partitions in parts, nil: all): what was
// published is not published again. A store as far
// as the changelog, or ahead of it (a state topic recreated), is kept.
func rebuild(ctx context.Context, kc publisher.Config, store restorer, owned map[string]bool, horizon time.Time, parts partitionSet,
	logger *slog.Logger) (rebuildReport, error) {
	start := time.Now()
	var rep rebuildReport
	latest, err := readChangelog(ctx, kc, owned, logger, &rep)
	if err != nil {
		return rep, err
	}
	restored := map[string]bool{}
	for stream, sn := range latest {
		local, err := store.Snapshot(stream)
		if err != nil {
			return rep, err
		}
		if sn.Seq <= local.Seq {
			rep.local++
			continue
		}
		if err := store.Restore(sn); err != nil {
			return rep, fmt.Errorf("restore %s: %w", stream, err)
		}
		restored[stream] = true
		rep.restored = append(rep.restored, stream)
	}
	rep.local += len(owned) - len(latest)
	if len(restored) > 0 {
		seenStart := time.Now()
		if rep.events, rep.marked, err = rebuildSeen(ctx, kc, store, restored, horizon, parts); err != nil {
			return rep, fmt.Errorf("seen marks: %w", err)
		}
		rep.seenTook = time.Since(seenStart)
	}
	rep.took = time.Since(start)
	logger.Info("state changelog read", "topic", kc.StateTopic, "records", rep.records, "bad_records", rep.bad,
		"streams_local", rep.local, "streams_rebuilt", len(rep.restored), "event_records_read", rep.events,
		"seen_marks_restored", rep.marked, "took", rep.took.Round(time.Millisecond).String(),
		"seen_marks_took", rep.seenTook.Round(time.Millisecond).String())
	return rep, nil
}

// readChangelog returns the latest snapshot of each owned stream on the
// state topic; a tombstone forgets the stream. A record that cannot be used
// is counted and logged (the first of them) and skipped: its stream keeps
// the latest record before it, or its local state.
func readChangelog(ctx context.Context, kc publisher.Config, owned map[string]bool, logger *slog.Logger, rep *rebuildReport) (map[string]dedupe.Snapshot, error) {
	latest := map[string]dedupe.Snapshot{}
	n, err := publisher.ReadState(ctx, kc, func(key string, value []byte, offset int64, partition int) error {
		if !owned[key] {
			return nil
		}
		if value == nil {
			delete(latest, key)
			return nil
		}
		rec, err := schemas.DecodeState(value)
		if errors.Is(err, schemas.ErrStateVersion) {
			// Written by a newer callpub: rebuilding from the record before
			// it would go back in time without saying so.
			return fmt.Errorf("%s[%d] at %d: %w; run the callpub that wrote it", kc.StateTopic, partition, offset, err)
		}
		if err == nil && rec.Stream != key {
			err = fmt.Errorf("record of stream %q under key %q", rec.Stream, key)
		}
		if err != nil {
			if rep.bad == 0 {
				logger.Error("state changelog: a record cannot be used and is skipped",
					"topic", kc.StateTopic, "partition", partition, "offset", offset, "err", err)
			}
			rep.bad++
			return nil
		}
		latest[key] = snapshotOf(rec)
		return nil
	})
	rep.records = n
	if err != nil {
		return nil, fmt.Errorf("read state topic %s: %w", kc.StateTopic, err)
	}
	return latest, nil
}
