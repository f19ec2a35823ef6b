package dedupe

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Snapshot is one stream's whole durable state apart from its seen marks:
// what a changelog record carries, so that a lost disk can be rebuilt with
// Restore (and the seen marks with MarkSeen, from the published events).
type Snapshot struct {
	// State is the cursor record (cursor, last sweep, sealed day,
	// last-chance day) and the pending calls.
	State StreamState
	// Gaps are the stream's entries in the gap log, ordered by Start, then
	// End; each has Stream set.
	Gaps []Gap
	// Quarantined are the stream's quarantined rows, ordered by Sum.
	Quarantined []Quarantined
	// Seq is the changelog sequence number of this state (0: never logged).
	Seq uint64
}

// Snapshot returns stream's snapshot, read in one transaction. A stream the
// store has never seen has a zero snapshot and no error. The gap log is
// read whole (it holds few entries); the pending calls and quarantined rows
// are prefix scans of the stream's keys.
func (s *Store) Snapshot(stream string) (Snapshot, error) {
	if stream == "" {
		return Snapshot{}, errors.New("snapshot: empty stream")
	}
	sn := Snapshot{State: StreamState{Stream: stream}}
	err := s.view("snapshot", func(tx *bolt.Tx) error {
		var err error
		if sn.Seq, err = s.readCursor(tx, &sn.State); err != nil {
			return err
		}
		if sn.State.Pending, err = s.readPending(tx, stream); err != nil {
			return err
		}
		if sn.Gaps, err = s.readStreamGaps(tx, stream); err != nil {
			return err
		}
		sn.Quarantined, err = s.readQuarantined(tx, stream)
		return err
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot of %s: %w", stream, err)
	}
	return sn, nil
}

// readStreamGaps returns the gaps of stream, ordered by Start, then End.
func (s *Store) readStreamGaps(tx *bolt.Tx, stream string) ([]Gap, error) {
	var out []Gap
	err := tx.Bucket(bucketGaps).ForEach(func(k, v []byte) error {
		if len(k) < 16 || len(v) != 8 {
			return fmt.Errorf("gap %x: malformed entry: %w", k, ErrFormat)
		}
		if string(k[16:]) != stream {
			return nil
		}
		out = append(out, Gap{
			Stream:     stream,
			Start:      fromNano(getInt(k[:8]), s.loc),
			End:        fromNano(getInt(k[8:16]), s.loc),
			DetectedAt: fromNano(getInt(v), s.loc),
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, compareGaps) // key order differs for instants before 1970
	return out, nil
}

// readQuarantined returns the quarantined rows of stream, ordered by Sum.
func (s *Store) readQuarantined(tx *bolt.Tx, stream string) ([]Quarantined, error) {
	b := tx.Bucket(bucketQuarantined)
	if b == nil {
		return nil, nil
	}
	prefix := quarantineKey(stream, "")
	var out []Quarantined
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(v) != 8 {
			return nil, fmt.Errorf("quarantined %q: malformed value: %w", k, ErrFormat)
		}
		out = append(out, Quarantined{Sum: string(k[len(prefix):]), DetectedAt: fromNano(getInt(v), s.loc)})
	}
	return out, nil
}

// Apply returns the snapshot after b was committed, the way Commit applies
// it: the store's Snapshot after Commit(b) equals sn.Apply(b)
// (TestSnapshotAfterCommitsIsApply). b must be valid (Commit accepted it)
// and of sn's stream. The result shares no slice with sn or b.
//
//   - State: StreamState.Apply.
//   - Gaps: b.Gaps added (an empty Gap.Stream means b.Stream). A gap with
//     the Start, End and Stream of one already there replaces it: the gap
//     log keeps one entry per span, with the DetectedAt written last.
//   - Quarantined: b.Quarantined added. A sum already there takes the new
//     DetectedAt, as Commit overwrites the record.
//   - Seq: b.Seq when it is not 0.
func (sn Snapshot) Apply(b Batch) Snapshot {
	next := Snapshot{
		State:       sn.State.Apply(b),
		Gaps:        withGaps(sn.Gaps, b.Stream, b.Gaps),
		Quarantined: withQuarantined(sn.Quarantined, b.Quarantined),
		Seq:         sn.Seq,
	}
	if b.Seq != 0 {
		next.Seq = b.Seq
	}
	return next
}

// withGaps is a new slice of old and add, one gap per span, ordered by
// Start, then End.
func withGaps(old []Gap, stream string, add []Gap) []Gap {
	out := slices.Clone(old)
	for _, g := range add {
		if g.Stream == "" {
			g.Stream = stream
		}
		i := slices.IndexFunc(out, func(o Gap) bool {
			return o.Stream == g.Stream && o.Start.Equal(g.Start) && o.End.Equal(g.End)
		})
		if i < 0 {
			out = append(out, g)
		} else {
			out[i] = g
		}
	}
	slices.SortStableFunc(out, compareGaps)
	return out
}

func compareGaps(a, b Gap) int {
	if c := a.Start.Compare(b.Start); c != 0 {
		return c
	}
	if c := a.End.Compare(b.End); c != 0 {
		return c
	}
	return cmp.Compare(a.Stream, b.Stream)
}

// withQuarantined is a new slice of old and add, one row per sum (the last
// written), ordered by Sum.
func withQuarantined(old, add []Quarantined) []Quarantined {
	out := slices.Clone(old)
	for _, q := range add {
		i := slices.IndexFunc(out, func(o Quarantined) bool { return o.Sum == q.Sum })
		if i < 0 {
			out = append(out, q)
		} else {
			out[i] = q
		}
	}
	slices.SortStableFunc(out, func(a, b Quarantined) int { return cmp.Compare(a.Sum, b.Sum) })
	return out
}

// Restore replaces the durable state of sn.State.Stream by sn in one
// transaction: the cursor record (cursor, last sweep, sealed day,
// last-chance day and Seq, even a Seq below the recorded one: Restore is
// how a state is rebuilt or rewound), the pending set, the stream's gaps and
// its quarantined rows become exactly sn's. Other streams and every seen
// mark are untouched. sn is validated the way Commit validates a batch
// (empty stream, empty call ids, zero filter times, gaps of another stream,
// bad days…) and an invalid one is a *BatchError that touches nothing.
// Duplicates in sn collapse as they would in one Commit.
func (s *Store) Restore(sn Snapshot) error {
	b := Batch{
		Stream:        sn.State.Stream,
		Pending:       sn.State.Pending,
		SealedDay:     sn.State.SealedDay,
		LastChanceDay: sn.State.LastChanceDay,
		Gaps:          sn.Gaps,
		Quarantined:   sn.Quarantined,
	}
	p, err := s.prepare(b)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	rec := streamRecord{seq: sn.Seq, cursorRecord: cursorRecord{
		cursor:        unixNano(sn.State.Cursor),
		lastSweep:     unixNano(sn.State.LastSweep),
		sealedDay:     sn.State.SealedDay,
		lastChanceDay: sn.State.LastChanceDay,
	}}
	err = s.update("restore", func(tx *bolt.Tx) error {
		if err := clearStream(tx, b.Stream); err != nil {
			return err
		}
		if err := tx.Bucket(bucketCursors).Put(p.stream, rec.encode()); err != nil {
			return fmt.Errorf("cursor: %w", err)
		}
		if err := p.applyPending(tx.Bucket(bucketPending)); err != nil {
			return err
		}
		if err := p.applyGaps(tx.Bucket(bucketGaps)); err != nil {
			return err
		}
		return p.applyQuarantined(tx)
	})
	if err != nil {
		return fmt.Errorf("restore %s (%d pending, %d gaps, %d quarantined, seq %d): %w",
			b.Stream, len(sn.State.Pending), len(sn.Gaps), len(sn.Quarantined), sn.Seq, err)
	}
	return nil
}

// clearStream deletes stream's pending calls, gaps and quarantined rows.
// The cursor record is overwritten by the caller; seen marks stay.
func clearStream(tx *bolt.Tx, stream string) error {
	if err := deletePending(tx.Bucket(bucketPending), stream); err != nil {
		return fmt.Errorf("clear pending: %w", err)
	}
	var gaps [][]byte
	err := tx.Bucket(bucketGaps).ForEach(func(k, _ []byte) error {
		if len(k) >= 16 && string(k[16:]) == stream {
			gaps = append(gaps, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("clear gaps: %w", err)
	}
	if err := deleteKeys(tx.Bucket(bucketGaps), gaps); err != nil {
		return fmt.Errorf("clear gaps: %w", err)
	}
	if qb := tx.Bucket(bucketQuarantined); qb != nil {
		var rows [][]byte
		prefix := quarantineKey(stream, "")
		c := qb.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			rows = append(rows, bytes.Clone(k))
		}
		if err := deleteKeys(qb, rows); err != nil {
			return fmt.Errorf("clear quarantined: %w", err)
		}
	}
	return nil
}

// deleteKeys deletes keys from b. The keys are copies: a key still in the
// memory map must not be held across a Delete.
func deleteKeys(b *bolt.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// markSeenChunk caps the keys one MarkSeen transaction writes, so a commit
// running alongside waits for one chunk at most.
const markSeenChunk = 10_000

// mark is one key's seen-mark and the pending key it resolves.
type mark struct {
	op      seenOp
	pending []byte
	i       int // position in MarkSeen's keys
}

// MarkSeen records keys as seen, for rebuilding the seen set from the
// published events: nothing else of the streams' state changes, except
// that, as in Commit, a pending call whose key is marked seen is removed
// from pending (its completed row was published, so it no longer holds the
// cursor back). Keys are validated like Commit's seen keys, all before
// anything is written; an invalid one is a *BatchError. MarkSeen is
// idempotent. It writes keys sorted by day bucket and key, in transactions
// of at most 10,000 keys; after an error some chunks may have been written,
// and calling MarkSeen again with the same keys is safe.
func (s *Store) MarkSeen(keys []Key) error {
	marks, err := s.prepareMarks(keys)
	if err != nil {
		return fmt.Errorf("mark seen: %w", err)
	}
	for start := 0; start < len(marks); start += markSeenChunk {
		chunk := marks[start:min(start+markSeenChunk, len(marks))]
		p := &prepared{}
		for _, m := range chunk {
			p.seen = append(p.seen, m.op)
			p.pendingDel = append(p.pendingDel, m.pending)
		}
		err := s.update("mark seen", func(tx *bolt.Tx) error {
			if err := p.applySeen(tx); err != nil {
				return err
			}
			return p.applyPending(tx.Bucket(bucketPending))
		})
		if err != nil {
			return fmt.Errorf("mark %d keys seen (%d written before): %w", len(keys), start, err)
		}
	}
	return nil
}

// prepareMarks validates keys and encodes them, sorted by bucket and key.
func (s *Store) prepareMarks(keys []Key) ([]mark, error) {
	marks := make([]mark, len(keys))
	for i, k := range keys {
		if err := k.validate(); err != nil {
			return nil, badBatch(k.Stream, "seen: %v", err)
		}
		if strings.Contains(k.Stream, pendingSep) {
			return nil, badBatch(k.Stream, "stream contains a NUL byte")
		}
		marks[i] = mark{op: s.seenOp(k), pending: pendingKey(k.Stream, k.CallID), i: i}
	}
	// Ties keep the keys' order, so the same key given twice ends as the
	// later one, as in Commit (and faster than a stable sort).
	slices.SortFunc(marks, func(a, b mark) int {
		if c := bytes.Compare(a.op.bucket, b.op.bucket); c != 0 {
			return c
		}
		if c := bytes.Compare(a.op.key, b.op.key); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	return marks, nil
}
