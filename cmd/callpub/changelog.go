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

// startChangelog, with a state topic, brings the store up to it (rebuild)
// and returns the changelog the poller writes; nil without one. A stop
// during the rebuild returns nil, nil: the caller sees ctx.Err().
func startChangelog(ctx context.Context, cfg config, store *dedupe.Store, pub *publisher.Publisher, sh shard,
	reach ccms.Reach, logger *slog.Logger) (poller.Changelog, error) {
	if cfg.Kafka.StateTopic == "" {
		return nil, nil
	}
	owned := map[string]bool{}
	for _, s := range poller.Streams(cfg.Poll.CCID, cfg.Poll.VDNs, cfg.Poll.Directions) {
		if sh.owns(s) {
			owned[s.Key()] = true
		}
	}
	if _, err := rebuild(ctx, cfg.Kafka, store, owned, poller.Horizon(time.Now(), reach), logger); err != nil {
		if ctx.Err() != nil {
			return nil, nil
		}
		return nil, fmt.Errorf("kafka: state changelog: %w", err)
	}
	owner, err := os.Hostname()
	if err != nil {
		owner = "unknown"
	}
	return kafkaChangelog{pub: pub, owner: owner}, nil
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
