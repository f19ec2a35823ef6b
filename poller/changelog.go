package poller

import (
	"context"
	"fmt"

	"github.com/callpub/callpub/dedupe"
)

// Changelog keeps each stream's durable state where a replica that lost its
// store finds it again: the compacted Kafka state topic
// (CALLPUB_KAFKA_STATE_TOPIC, cmd/callpub). Log returns nil only once the
// record is acknowledged; after an error assume nothing was written.
type Changelog interface {
	Log(ctx context.Context, sn dedupe.Snapshot) error
}

// Snapshots reads a stream's whole durable state; *dedupe.Store implements
// it. The poller needs it only with a Changelog.
type Snapshots interface {
	Snapshot(stream string) (dedupe.Snapshot, error)
}

// logState writes the state the stream will have after b to the changelog
// and numbers b with that record's sequence. It is the middle of the
// delivery order (DESIGN.md 9): events acknowledged → state record
// acknowledged → local commit. A crash after the record and before the
// commit leaves the changelog one turn ahead of the store, which a start
// repairs from the changelog (the turn's events are then published again,
// with the same ids). Without a changelog it does nothing.
func (p *Poller) logState(ctx context.Context, ls *live, b *dedupe.Batch) error {
	if p.changelog == nil {
		return nil
	}
	sn, err := p.snapshots.Snapshot(ls.key)
	if err != nil {
		return fmt.Errorf("state changelog of %s: %w", ls.key, err)
	}
	b.Seq = sn.Seq + 1
	if err := p.changelog.Log(ctx, sn.Apply(*b)); err != nil {
		return fmt.Errorf("state changelog of %s: %w", ls.key, err)
	}
	return nil
}
