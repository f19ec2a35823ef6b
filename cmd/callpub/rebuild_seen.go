package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/publisher"
	"github.com/callpub/callpub/schemas"
)

// seenMarker adds seen marks; *dedupe.Store implements it.
type seenMarker interface {
	MarkSeen(keys []dedupe.Key) error
}

// seenFlush is how many marks go to the store in one write.
const seenFlush = 10_000

// rebuildSeen restores the seen marks of streams from the event topic: every
// call-completed event produced since from (less topicReader's margin) of
// one of streams marks its call seen with the content it was published
// with, the last one read winning (a VDN's events are in one partition, in
// order, so that is the last published). Only the partitions in parts are
// read (nil: all). It returns how many events it read and how many marks it
// restored.
func rebuildSeen(ctx context.Context, kc publisher.Config, store seenMarker, streams map[string]bool, from time.Time, parts partitionSet) (read, marked int, err error) {
	dialer, err := kc.Dialer()
	if err != nil {
		return 0, 0, configError(err)
	}
	type call struct{ stream, id string }
	last := map[call]dedupe.Key{}
	// Partitions in parallel: a reader's start costs about half a second.
	tr := topicReader{brokers: kc.Brokers, dialer: dialer, only: parts, parallel: 8}
	res, err := tr.read(ctx, kc.Topic, from, func(ev schemas.Event) error {
		k, ok, err := seenKey(ev)
		if err != nil || !ok || !streams[k.Stream] {
			return err
		}
		last[call{k.Stream, k.CallID}] = k
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", kc.Topic, err)
	}
	keys := make([]dedupe.Key, 0, min(len(last), seenFlush))
	for _, k := range last {
		if keys = append(keys, k); len(keys) == seenFlush {
			if err := store.MarkSeen(keys); err != nil {
				return res.records, marked, err
			}
			marked, keys = marked+len(keys), keys[:0]
		}
	}
	if err := store.MarkSeen(keys); err != nil {
		return res.records, marked, err
	}
	return res.records, marked + len(keys), nil
}

// seenKey is the seen mark an event stands for; ok is false for records that
// are not call-completed events (none are expected on the event topic).
func seenKey(ev schemas.Event) (k dedupe.Key, ok bool, err error) {
	if ev.Type != schemas.TypeCallCompleted {
		return k, false, nil
	}
	d, err := schemas.CallCompletedOf(ev)
	if err != nil {
		return k, false, err
	}
	hash, err := strconv.ParseUint(d.ContentHash, 16, 64)
	if err != nil {
		return k, false, fmt.Errorf("event %s: contentHash %q: %w", ev.ID, d.ContentHash, err)
	}
	s := schemas.Stream{CCID: d.CCID, VDN: d.VDN, Dir: schemas.DirectionOf(d.Direction == "inbound")}
	return dedupe.Key{Stream: s.Key(), CallID: d.CallID, CallEnd: d.CallEnd.Time, Hash: hash}, true, nil
}

// partitionSet is a set of partitions of the event topic; nil means all.
type partitionSet map[int]bool
