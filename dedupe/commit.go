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
	// LastChanceDay is the day whose last-chance read this batch completes
	// ("YYYYMMDD"; "": unchanged).
	LastChanceDay string
	Gaps          []Gap // appended to the gap log; an empty Gap.Stream means Stream
	// Quarantined records rows of the stream that were reported as unusable,
	// so a re-read does not report them again (NewlyBad).
	Quarantined []Quarantined
	// Seq is the changelog sequence number of the state this batch leaves
	// (0: unchanged). Commit records it in the stream's cursor record; one
	// lower than the recorded seq is a *BatchError, as a changelog never
	// goes backwards (an equal one is accepted, so a batch can be retried).
	Seq uint64
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
// nothing; so is a b.Seq below the stream's recorded seq, found inside the
// transaction, which is then rolled back.
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
	stream      []byte
	seen        []seenOp
	pendingPut  []pendingOp
	pendingDel  [][]byte
	cursor      *int64
	lastSweep   *int64
	sealedDay   string
	lastChance  string
	gaps        [][2][]byte
	quarantined [][2][]byte
	seq         uint64 // 0: unchanged
}

type seenOp struct {
	bucket, key, value []byte
	stale              [][]byte // neighbour day buckets an updated call may sit in
}

type pendingOp struct {
	key              []byte
	filter, firstSee int64
}

// prepare validates b and encodes it into the writes apply makes. The checks
// run in a fixed order (stream, seen, resolved, pending, sealed day, gaps,
// quarantined rows),
// so a batch with several faults always reports the same first one.
func (s *Store) prepare(b Batch) (*prepared, error) {
	if b.Stream == "" {
		return nil, badBatch(b.Stream, "empty stream")
	}
	if strings.Contains(b.Stream, pendingSep) {
		return nil, badBatch(b.Stream, "stream contains a NUL byte")
	}
	seen, seenIDs, err := s.prepareSeen(b)
	if err != nil {
		return nil, err
	}
	resolvedIDs, err := resolvedSet(b)
	if err != nil {
		return nil, err
	}
	pendingPut, err := preparePending(b, seenIDs, resolvedIDs)
	if err != nil {
		return nil, err
	}
	if err := checkSealedDay(b); err != nil {
		return nil, err
	}
	gaps, err := prepareGaps(b)
	if err != nil {
		return nil, err
	}
	quarantined, err := prepareQuarantined(b)
	if err != nil {
		return nil, err
	}
	return &prepared{
		stream:      []byte(b.Stream),
		seen:        seen,
		pendingPut:  pendingPut,
		pendingDel:  pendingDeletes(b.Stream, seenIDs, resolvedIDs),
		cursor:      optionalNano(b.Cursor),
		lastSweep:   optionalNano(b.LastSweep),
		sealedDay:   b.SealedDay,
		lastChance:  b.LastChanceDay,
		gaps:        gaps,
		quarantined: quarantined,
		seq:         b.Seq,
	}, nil
}

// badBatch is the *BatchError that refuses a batch of stream.
func badBatch(stream, format string, a ...any) error {
	return &BatchError{Stream: stream, Reason: fmt.Sprintf(format, a...)}
}

// prepareSeen validates b.Seen in order and encodes a seen-mark for each key.
// It also returns the set of call ids marked seen.
func (s *Store) prepareSeen(b Batch) ([]seenOp, map[string]bool, error) {
	var ops []seenOp
	seen := make(map[string]bool, len(b.Seen))
	for _, k := range b.Seen {
		if err := k.validate(); err != nil {
			return nil, nil, badBatch(b.Stream, "seen: %v", err)
		}
		if k.Stream != b.Stream {
			return nil, nil, badBatch(b.Stream, "seen key %s/%s belongs to another stream", k.Stream, k.CallID)
		}
		seen[k.CallID] = true
		ops = append(ops, s.seenOp(k))
	}
	return ops, seen, nil
}

// seenOp encodes the seen-mark of k in the bucket of its CallEnd's day. An
// update also drops k from the days either side, where its previous CallEnd
// may have put it.
func (s *Store) seenOp(k Key) seenOp {
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
	return op
}

// resolvedSet is the set of call ids in b.Resolved, none of them empty.
func resolvedSet(b Batch) (map[string]bool, error) {
	resolved := make(map[string]bool, len(b.Resolved))
	for _, id := range b.Resolved {
		if id == "" {
			return nil, badBatch(b.Stream, "resolved: empty call id")
		}
		resolved[id] = true
	}
	return resolved, nil
}

// preparePending validates b.Pending in order and encodes an upsert for each
// call. A pending call may be neither resolved nor seen in the same batch.
func preparePending(b Batch, seen, resolved map[string]bool) ([]pendingOp, error) {
	var ops []pendingOp
	for _, pc := range b.Pending {
		switch {
		case pc.CallID == "":
			return nil, badBatch(b.Stream, "pending: empty call id")
		case pc.FilterTime.IsZero():
			return nil, badBatch(b.Stream, "pending %s: zero filter time", pc.CallID)
		case resolved[pc.CallID]:
			return nil, badBatch(b.Stream, "call %s is both pending and resolved", pc.CallID)
		case seen[pc.CallID]:
			return nil, badBatch(b.Stream, "call %s is both pending and seen", pc.CallID)
		}
		ops = append(ops, pendingOp{
			key:    pendingKey(b.Stream, pc.CallID),
			filter: unixNano(pc.FilterTime), firstSee: unixNano(pc.FirstSeen),
		})
	}
	return ops, nil
}

// pendingDeletes are the pending keys of stream to remove: every resolved
// call, then every seen call that was not also resolved.
func pendingDeletes(stream string, seen, resolved map[string]bool) [][]byte {
	var keys [][]byte
	for id := range resolved {
		keys = append(keys, pendingKey(stream, id))
	}
	for id := range seen {
		if !resolved[id] {
			keys = append(keys, pendingKey(stream, id))
		}
	}
	return keys
}

// optionalNano encodes *t, or returns nil when t is nil (unchanged).
func optionalNano(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	n := unixNano(*t)
	return &n
}

// checkSealedDay refuses a b.SealedDay or b.LastChanceDay that is set but
// not a YYYYMMDD day.
func checkSealedDay(b Batch) error {
	for _, d := range []struct{ name, day string }{{"sealed day", b.SealedDay}, {"last-chance day", b.LastChanceDay}} {
		if d.day == "" {
			continue
		}
		if _, err := time.Parse(dayLayout, d.day); err != nil || len(d.day) != len(dayLayout) {
			return badBatch(b.Stream, "%s %q is not YYYYMMDD", d.name, d.day)
		}
	}
	return nil
}

// prepareGaps validates b.Gaps in order and encodes each as a gap-log entry
// (key and detected-at value). A gap without a stream belongs to b.Stream.
func prepareGaps(b Batch) ([][2][]byte, error) {
	var gaps [][2][]byte
	for _, g := range b.Gaps {
		if g.Stream == "" {
			g.Stream = b.Stream
		}
		switch {
		case g.Stream != b.Stream:
			return nil, badBatch(b.Stream, "gap of another stream %q", g.Stream)
		case g.Start.IsZero() || g.End.IsZero() || !g.Start.Before(g.End):
			return nil, badBatch(b.Stream, "gap [%v, %v) is empty or unbounded", g.Start, g.End)
		}
		v := make([]byte, 8)
		putInt(v, unixNano(g.DetectedAt))
		gaps = append(gaps, [2][]byte{gapKey(g), v})
	}
	return gaps, nil
}

// apply writes p in tx. It is idempotent: puts of fixed bytes, deletes, and
// a pending FirstSeen that keeps the earliest value.
func (p *prepared) apply(tx *bolt.Tx) error {
	if err := p.applySeen(tx); err != nil {
		return err
	}
	if err := p.applyPending(tx.Bucket(bucketPending)); err != nil {
		return err
	}
	if err := p.applyCursor(tx.Bucket(bucketCursors)); err != nil {
		return err
	}
	if err := p.applyGaps(tx.Bucket(bucketGaps)); err != nil {
		return err
	}
	return p.applyQuarantined(tx)
}

// applySeen puts each seen-mark in its day bucket, creating the bucket if
// needed, and drops an updated call from its stale neighbour days.
func (p *prepared) applySeen(tx *bolt.Tx) error {
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
	return nil
}

// applyPending upserts the pending calls in pb, keeping the earliest known
// FirstSeen, then deletes the resolved and seen ones.
func (p *prepared) applyPending(pb *bolt.Bucket) error {
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
	return nil
}

// applyCursor rewrites the stream's cursor record in cb, changing only the
// fields p sets. The record is written even when nothing changes. A seq
// below the recorded one is a *BatchError.
func (p *prepared) applyCursor(cb *bolt.Bucket) error {
	r, err := readStreamRecord(cb, p.stream)
	if err != nil {
		return err
	}
	if p.seq != 0 {
		if p.seq < r.seq {
			return badBatch(string(p.stream), "changelog seq %d is below the recorded %d", p.seq, r.seq)
		}
		r.seq = p.seq
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
	if p.lastChance != "" {
		r.lastChanceDay = p.lastChance
	}
	if err := cb.Put(p.stream, r.encode()); err != nil {
		return fmt.Errorf("cursor of %s: %w", p.stream, err)
	}
	return nil
}

// applyGaps appends p's entries to the gap log in gb.
func (p *prepared) applyGaps(gb *bolt.Bucket) error {
	for _, g := range p.gaps {
		if err := gb.Put(g[0], g[1]); err != nil {
			return fmt.Errorf("gap: %w", err)
		}
	}
	return nil
}
