package dedupe

import (
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Batch is everything one step of one stream changes, applied by Commit in
// one transaction.
type Batch struct {
	Stream    string
	Seen      []Key      // mark seen (bucket seen/YYYYMMDD of CallEnd); each Key.Stream must be Stream
	Pending   []Pending  // upsert into the stream's pending set (FirstSeen of a known call is kept)
	Resolved  []string   // call ids removed from pending (seen call ids are removed too)
	Cursor    *time.Time // move the cursor (nil: unchanged)
	LastSweep *time.Time // nil: unchanged
	SealedDay string     // "YYYYMMDD"; "": unchanged
	Gaps      []Gap      // appended to the gap log; an empty Gap.Stream means Stream
}

// Commit applies b in one read-write transaction: seen-marks, pending
// upserts and removals, cursor, last sweep, sealed day and gaps land
// together or not at all. Call it only after Kafka acknowledged every event
// of b.Seen. The stream's cursor record is written even when b moves
// nothing, so the stream is listed by Streams.
//
// When other commits are in flight, b may share a transaction with them
// (bbolt's DB.Batch); the work is prepared up front and writing it twice
// gives the same result. An invalid batch is a *BatchError and touches
// nothing.
func (s *Store) Commit(b Batch) error {
	p, err := s.prepare(b)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch {
	case s.closed:
		return fmt.Errorf("commit %s: %w", b.Stream, ErrClosed)
	case s.readOnly:
		return fmt.Errorf("commit %s: %w", b.Stream, ErrReadOnly)
	}
	// A lone commit runs at once; only concurrent ones wait to be grouped.
	if s.inflight.Add(1) > 1 && !s.noGrouping {
		err = s.db.Batch(p.apply)
	} else {
		err = s.db.Update(p.apply)
	}
	s.inflight.Add(-1)
	if err != nil {
		return fmt.Errorf("commit %s (%d seen, %d pending, %d gaps): %w",
			b.Stream, len(b.Seen), len(b.Pending), len(b.Gaps), err)
	}
	return nil
}

// prepared is a validated batch, encoded into the bytes it writes. apply
// only reads it, so it can run any number of times.
type prepared struct {
	stream     []byte
	seen       []seenOp
	pendingPut []pendingOp
	pendingDel [][]byte
	cursor     *int64
	lastSweep  *int64
	sealedDay  string
	gaps       [][2][]byte
}

type seenOp struct {
	bucket, key, value []byte
	stale              [][]byte // neighbour day buckets an updated call may sit in
}

type pendingOp struct {
	key              []byte
	filter, firstSee int64
}

func (s *Store) prepare(b Batch) (*prepared, error) {
	bad := func(format string, a ...any) error {
		return &BatchError{Stream: b.Stream, Reason: fmt.Sprintf(format, a...)}
	}
	if b.Stream == "" {
		return nil, bad("empty stream")
	}
	if strings.Contains(b.Stream, pendingSep) {
		return nil, bad("stream contains a NUL byte")
	}
	p := &prepared{stream: []byte(b.Stream), sealedDay: b.SealedDay}
	seen := make(map[string]bool, len(b.Seen))
	for _, k := range b.Seen {
		if err := k.validate(); err != nil {
			return nil, bad("seen: %v", err)
		}
		if k.Stream != b.Stream {
			return nil, bad("seen key %s/%s belongs to another stream", k.Stream, k.CallID)
		}
		seen[k.CallID] = true
		op := seenOp{
			bucket: dayBucket(dayName(k.CallEnd, s.loc)),
			key:    seenKey(k.Stream, k.CallID),
			value:  seenValue(k.CallEnd, k.Hash),
		}
		if k.Update {
			y, m, d := k.CallEnd.In(s.loc).Date()
			for _, off := range []int{-1, 1} {
				op.stale = append(op.stale, dayBucket(time.Date(y, m, d+off, 12, 0, 0, 0, s.loc).Format(dayLayout)))
			}
		}
		p.seen = append(p.seen, op)
	}
	resolved := make(map[string]bool, len(b.Resolved))
	for _, id := range b.Resolved {
		if id == "" {
			return nil, bad("resolved: empty call id")
		}
		resolved[id] = true
	}
	for _, pc := range b.Pending {
		switch {
		case pc.CallID == "":
			return nil, bad("pending: empty call id")
		case pc.FilterTime.IsZero():
			return nil, bad("pending %s: zero filter time", pc.CallID)
		case resolved[pc.CallID]:
			return nil, bad("call %s is both pending and resolved", pc.CallID)
		case seen[pc.CallID]:
			return nil, bad("call %s is both pending and seen", pc.CallID)
		}
		p.pendingPut = append(p.pendingPut, pendingOp{
			key:    pendingKey(b.Stream, pc.CallID),
			filter: unixNano(pc.FilterTime), firstSee: unixNano(pc.FirstSeen),
		})
	}
	for id := range resolved {
		p.pendingDel = append(p.pendingDel, pendingKey(b.Stream, id))
	}
	for id := range seen {
		if !resolved[id] {
			p.pendingDel = append(p.pendingDel, pendingKey(b.Stream, id))
		}
	}
	if b.Cursor != nil {
		n := unixNano(*b.Cursor)
		p.cursor = &n
	}
	if b.LastSweep != nil {
		n := unixNano(*b.LastSweep)
		p.lastSweep = &n
	}
	if b.SealedDay != "" {
		if _, err := time.Parse(dayLayout, b.SealedDay); err != nil || len(b.SealedDay) != len(dayLayout) {
			return nil, bad("sealed day %q is not YYYYMMDD", b.SealedDay)
		}
	}
	for _, g := range b.Gaps {
		if g.Stream == "" {
			g.Stream = b.Stream
		}
		switch {
		case g.Stream != b.Stream:
			return nil, bad("gap of another stream %q", g.Stream)
		case g.Start.IsZero() || g.End.IsZero() || !g.Start.Before(g.End):
			return nil, bad("gap [%v, %v) is empty or unbounded", g.Start, g.End)
		}
		v := make([]byte, 8)
		putInt(v, unixNano(g.DetectedAt))
		p.gaps = append(p.gaps, [2][]byte{gapKey(g), v})
	}
	return p, nil
}

// apply writes p in tx. It is idempotent: puts of fixed bytes, deletes, and
// a pending FirstSeen that keeps the earliest value.
func (p *prepared) apply(tx *bolt.Tx) error {
	for _, op := range p.seen {
		b, err := tx.CreateBucketIfNotExists(op.bucket)
		if err != nil {
			return fmt.Errorf("day bucket %s: %w", op.bucket, err)
		}
		if err := b.Put(op.key, op.value); err != nil {
			return fmt.Errorf("mark %s seen: %w", op.key, err)
		}
		for _, stale := range op.stale {
			if sb := tx.Bucket(stale); sb != nil {
				if err := sb.Delete(op.key); err != nil {
					return fmt.Errorf("drop %s from %s: %w", op.key, stale, err)
				}
			}
		}
	}
	pb := tx.Bucket(bucketPending)
	for _, op := range p.pendingPut {
		first := op.firstSee
		if _, old, ok := decodePending(pb.Get(op.key)); ok && old != 0 && (first == 0 || old < first) {
			first = old
		}
		if err := pb.Put(op.key, pendingValue(op.filter, first)); err != nil {
			return fmt.Errorf("pending %q: %w", op.key, err)
		}
	}
	for _, k := range p.pendingDel {
		if err := pb.Delete(k); err != nil {
			return fmt.Errorf("resolve %q: %w", k, err)
		}
	}
	cb := tx.Bucket(bucketCursors)
	r := cursorRecord{}
	if v := cb.Get(p.stream); v != nil {
		var ok bool
		if r, ok = decodeCursor(v); !ok {
			return fmt.Errorf("cursor of %s: malformed value: %w", p.stream, ErrFormat)
		}
	}
	if p.cursor != nil {
		r.cursor = *p.cursor
	}
	if p.lastSweep != nil {
		r.lastSweep = *p.lastSweep
	}
	if p.sealedDay != "" {
		r.sealedDay = p.sealedDay
	}
	if err := cb.Put(p.stream, r.encode()); err != nil {
		return fmt.Errorf("cursor of %s: %w", p.stream, err)
	}
	gb := tx.Bucket(bucketGaps)
	for _, g := range p.gaps {
		if err := gb.Put(g[0], g[1]); err != nil {
			return fmt.Errorf("gap: %w", err)
		}
	}
	return nil
}
