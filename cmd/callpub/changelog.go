package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/publisher"
	"github.com/callpub/callpub/schemas"
)

// kafkaChangelog writes each stream's durable state to
// CALLPUB_KAFKA_STATE_TOPIC (poller.Changelog).
type kafkaChangelog struct {
	pub   *publisher.Publisher
	owner string // the replica, in every record
}

func (c kafkaChangelog) Log(ctx context.Context, sn dedupe.Snapshot) error {
	v, err := schemas.EncodeState(recordOf(sn, c.owner, time.Now()))
	if err != nil {
		return err
	}
	return c.pub.PublishState(ctx, sn.State.Stream, v)
}

// startChangelog, with a state topic, brings the owned streams of the
// store up to it (rebuild) and returns the changelog the poller writes and
// the streams rebuilt from it; nil without one. A stop during the rebuild
// returns nil, nil, nil: the caller sees ctx.Err().
func startChangelog(ctx context.Context, cfg config, store *dedupe.Store, pub *publisher.Publisher, sh shard,
	reach ccms.Reach, logger *slog.Logger) (poller.Changelog, map[string]bool, error) {
	if cfg.Kafka.StateTopic == "" {
		return nil, nil, nil
	}
	owned := map[string]bool{}
	for _, s := range poller.Streams(cfg.Poll.CCID, cfg.Poll.VDNs, cfg.Poll.Directions) {
		if sh.owns(s) {
			owned[s.Key()] = true
		}
	}
	rep, err := rebuild(ctx, cfg.Kafka, store, owned, poller.Horizon(time.Now(), reach), nil, logger)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("kafka: state changelog: %w", err)
	}
	rebuilt := map[string]bool{}
	for _, s := range rep.restored {
		rebuilt[s] = true
	}
	return kafkaChangelog{pub: pub, owner: hostname()}, rebuilt, nil
}

// hostname names this replica in the state records it writes.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

// recordOf is the state record of a snapshot.
func recordOf(sn dedupe.Snapshot, owner string, now time.Time) schemas.StateRecord {
	st := sn.State
	r := schemas.StateRecord{Stream: st.Stream, Seq: sn.Seq, Cursor: st.Cursor, LastSweep: st.LastSweep,
		SealedDay: st.SealedDay, LastChanceDay: st.LastChanceDay, Owner: owner, WrittenAt: now}
	for _, p := range st.Pending {
		r.Pending = append(r.Pending, schemas.StatePending{CallID: p.CallID, FilterTime: p.FilterTime, FirstSeen: p.FirstSeen})
	}
	for _, g := range sn.Gaps {
		r.Gaps = append(r.Gaps, schemas.StateGap{Start: g.Start, End: g.End, DetectedAt: g.DetectedAt})
	}
	for _, q := range sn.Quarantined {
		r.Quarantined = append(r.Quarantined, schemas.StateQuarantined{Sum: q.Sum, DetectedAt: q.DetectedAt})
	}
	return r
}

// snapshotOf is the snapshot a state record holds.
func snapshotOf(r schemas.StateRecord) dedupe.Snapshot {
	sn := dedupe.Snapshot{Seq: r.Seq, State: dedupe.StreamState{Stream: r.Stream, Cursor: r.Cursor, LastSweep: r.LastSweep,
		SealedDay: r.SealedDay, LastChanceDay: r.LastChanceDay}}
	for _, p := range r.Pending {
		sn.State.Pending = append(sn.State.Pending, dedupe.Pending{CallID: p.CallID, FilterTime: p.FilterTime, FirstSeen: p.FirstSeen})
	}
	for _, g := range r.Gaps {
		sn.Gaps = append(sn.Gaps, dedupe.Gap{Stream: r.Stream, Start: g.Start, End: g.End, DetectedAt: g.DetectedAt})
	}
	for _, q := range r.Quarantined {
		sn.Quarantined = append(sn.Quarantined, dedupe.Quarantined{Sum: q.Sum, DetectedAt: q.DetectedAt})
	}
	return sn
}
