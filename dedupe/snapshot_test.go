package dedupe_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	bolt "go.etcd.io/bbolt"

	"github.com/callpub/callpub/dedupe"
)

// sameInstants compares times with Equal (the store returns its own zone)
// and treats nil and empty slices alike.
var sameInstants = cmp.Options{
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmpopts.EquateEmpty(),
}

func snapshot(t *testing.T, s *dedupe.Store, stream string) dedupe.Snapshot {
	t.Helper()
	sn, err := s.Snapshot(stream)
	if err != nil {
		t.Fatalf("Snapshot(%s): %v", stream, err)
	}
	return sn
}

func gap(stream string, startHour, endHour int, detected time.Time) dedupe.Gap {
	return dedupe.Gap{Stream: stream, Start: at(startHour, 0), End: at(endHour, 0), DetectedAt: detected}
}

// TestSnapshotAfterCommitsIsApply holds Snapshot.Apply to what Commit does:
// after each batch of a sequence, the snapshot read back from the file
// equals the one advanced in memory. Each case is one more batch on top of
// the ones before it; another stream's batches are committed in between and
// must not show.
func TestSnapshotAfterCommitsIsApply(t *testing.T) {
	const other = "1/26/out"
	steps := []struct {
		name string
		b    dedupe.Batch
	}{
		{"a first batch sets a cursor and two pending calls", dedupe.Batch{Stream: testStream, Cursor: ptr(at(8, 0)),
			Pending: []dedupe.Pending{{CallID: "p1", FilterTime: at(7, 0), FirstSeen: at(7, 1)}, {CallID: "p2", FilterTime: at(7, 30)}}}},
		{"a seen call and a resolved call leave pending", dedupe.Batch{Stream: testStream, Cursor: ptr(at(9, 0)),
			Seen: []dedupe.Key{key("p1", at(8, 30), 1)}, Resolved: []string{"p2"},
			Pending: []dedupe.Pending{{CallID: "p3", FilterTime: at(8, 45), FirstSeen: at(8, 50)}}, Seq: 1}},
		{"a gap without a stream belongs to the batch's stream", dedupe.Batch{Stream: testStream,
			Gaps: []dedupe.Gap{{Start: at(1, 0), End: at(2, 0), DetectedAt: at(9, 1)}}, Seq: 2}},
		{"an identical gap again is one entry", dedupe.Batch{Stream: testStream,
			Gaps: []dedupe.Gap{gap(testStream, 1, 2, at(9, 1)), gap(testStream, 0, 1, at(9, 2))}}},
		{"the same span detected again keeps one entry with the later detection", dedupe.Batch{Stream: testStream,
			Gaps: []dedupe.Gap{gap(testStream, 1, 2, at(9, 3))}, Seq: 4}},
		{"quarantined rows are kept ordered by sum", dedupe.Batch{Stream: testStream,
			Quarantined: []dedupe.Quarantined{{Sum: "bb", DetectedAt: at(9, 5)}, {Sum: "aa", DetectedAt: at(9, 6)}}}},
		{"a quarantined sum recorded again takes the new detection time", dedupe.Batch{Stream: testStream,
			Quarantined: []dedupe.Quarantined{{Sum: "bb", DetectedAt: at(9, 7)}, {Sum: "cc", DetectedAt: at(9, 7)}}, Seq: 6}},
		{"a seal, a last-chance read and a sweep", dedupe.Batch{Stream: testStream, SealedDay: "20260309",
			LastChanceDay: "20260308", LastSweep: ptr(at(9, 30)), Cursor: ptr(at(9, 30)), Seq: 7}},
		{"a known pending call keeps its first sighting", dedupe.Batch{Stream: testStream,
			Pending: []dedupe.Pending{{CallID: "p3", FilterTime: at(8, 46), FirstSeen: at(9, 40)}}, Seq: 7}},
		{"an empty batch changes nothing but is recorded", dedupe.Batch{Stream: testStream}},
	}
	s := open(t, options(t))
	mem := dedupe.Snapshot{State: dedupe.StreamState{Stream: testStream}}
	for i, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			commit(t, s, step.b, dedupe.Batch{Stream: other, Cursor: ptr(at(10, i)),
				Gaps:        []dedupe.Gap{gap("", 3, 4, at(10, i))},
				Pending:     []dedupe.Pending{{CallID: "o" + strconv.Itoa(i), FilterTime: at(6, i)}},
				Quarantined: []dedupe.Quarantined{{Sum: "aa" + strconv.Itoa(i), DetectedAt: at(10, i)}}})
			mem = mem.Apply(step.b)
			if d := cmp.Diff(mem, snapshot(t, s, testStream), sameInstants); d != "" {
				t.Fatalf("Apply and the store disagree (-apply +store):\n%s", d)
			}
		})
	}
}

// TestSnapshotAfterRandomCommitsIsApply is the same rule over many random
// batches: pending, resolved and seen calls, cursors, seals, gaps (some
// repeated), quarantined rows (some recorded again) and a rising seq.
func TestSnapshotAfterRandomCommitsIsApply(t *testing.T) {
	s := open(t, options(t))
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC)
	mem := dedupe.Snapshot{State: dedupe.StreamState{Stream: testStream}}
	for i := range 200 {
		now := base.Add(time.Duration(i) * time.Minute)
		b := randomBatch(rng, now, mem.State)
		for range rng.IntN(3) {
			start := base.Add(-time.Duration(rng.IntN(5)) * time.Hour)
			b.Gaps = append(b.Gaps, dedupe.Gap{Start: start, End: start.Add(time.Hour), DetectedAt: now})
		}
		for range rng.IntN(3) {
			b.Quarantined = append(b.Quarantined, dedupe.Quarantined{Sum: fmt.Sprintf("s%02d", rng.IntN(20)), DetectedAt: now})
		}
		if rng.IntN(2) == 0 {
			b.Seq = mem.Seq + uint64(rng.IntN(3))
		}
		if err := s.Commit(b); err != nil {
			t.Fatalf("batch %d: Commit: %v", i, err)
		}
		mem = mem.Apply(b)
		if d := cmp.Diff(mem, snapshot(t, s, testStream), sameInstants); d != "" {
			t.Fatalf("batch %d %+v: Apply and the store disagree (-apply +store):\n%s", i, b, d)
		}
	}
}

func TestSnapshotApplySharesNoSliceWithItsInput(t *testing.T) {
	// Spare capacity: an Apply that appended to its receiver's slices would
	// write into the receiver's arrays.
	mk := func() dedupe.Snapshot {
		return dedupe.Snapshot{
			State: dedupe.StreamState{Stream: testStream,
				Pending: append(make([]dedupe.Pending, 0, 8), dedupe.Pending{CallID: "a", FilterTime: at(7, 0)})},
			Gaps:        append(make([]dedupe.Gap, 0, 8), gap(testStream, 1, 2, at(9, 0))),
			Quarantined: append(make([]dedupe.Quarantined, 0, 8), dedupe.Quarantined{Sum: "zz", DetectedAt: at(9, 0)}),
		}
	}
	sn := mk()
	next := sn.Apply(dedupe.Batch{Stream: testStream,
		Pending:     []dedupe.Pending{{CallID: "b", FilterTime: at(6, 0)}},
		Gaps:        []dedupe.Gap{gap(testStream, 0, 1, at(9, 1))},
		Quarantined: []dedupe.Quarantined{{Sum: "aa", DetectedAt: at(9, 1)}}})
	for i := range next.State.Pending {
		next.State.Pending[i].CallID = "changed"
	}
	for i := range next.Gaps {
		next.Gaps[i].Stream = "changed"
	}
	for i := range next.Quarantined {
		next.Quarantined[i].Sum = "changed"
	}
	if d := cmp.Diff(mk(), sn); d != "" {
		t.Errorf("changing Apply's result changed its receiver (-before +after):\n%s", d)
	}
	if len(next.State.Pending) != 2 || len(next.Gaps) != 2 || len(next.Quarantined) != 2 {
		t.Errorf("Apply's result = %+v, want two of each", next)
	}
}

// committedState commits a stream with everything a snapshot holds, and a
// second stream, and returns the store.
func committedState(t *testing.T) *dedupe.Store {
	t.Helper()
	s := open(t, options(t))
	commit(t, s,
		dedupe.Batch{Stream: testStream, Cursor: ptr(at(9, 0)), LastSweep: ptr(at(8, 0)),
			SealedDay: "20260309", LastChanceDay: "20260308", Seen: []dedupe.Key{key("done", at(8, 30), 7)},
			Pending:     []dedupe.Pending{{CallID: "a", FilterTime: at(7, 0), FirstSeen: at(7, 5)}, {CallID: "b", FilterTime: at(7, 30)}},
			Gaps:        []dedupe.Gap{gap("", 1, 2, at(9, 0)), gap("", 3, 4, at(9, 0))},
			Quarantined: []dedupe.Quarantined{{Sum: "q1", DetectedAt: at(9, 0)}, {Sum: "q2", DetectedAt: at(9, 0)}},
			Seq:         9},
		dedupe.Batch{Stream: "1/26/in", Cursor: ptr(at(9, 10)),
			Pending:     []dedupe.Pending{{CallID: "a", FilterTime: at(7, 0)}},
			Gaps:        []dedupe.Gap{gap("", 1, 2, at(9, 0))},
			Quarantined: []dedupe.Quarantined{{Sum: "q1", DetectedAt: at(9, 0)}}, Seq: 4})
	return s
}

func TestRestoreIntoAnEmptyStoreGivesTheSnapshotBack(t *testing.T) {
	full := snapshot(t, committedState(t), testStream)
	tests := []struct {
		name string
		sn   dedupe.Snapshot
	}{
		{"a stream with cursor, seal, pending calls, gaps, quarantined rows and a seq", full},
		{"a stream with only a cursor", dedupe.Snapshot{State: dedupe.StreamState{Stream: testStream, Cursor: at(9, 0)}}},
		{"a stream never logged and never started", dedupe.Snapshot{State: dedupe.StreamState{Stream: testStream}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, options(t))
			if err := s.Restore(tt.sn); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if d := cmp.Diff(tt.sn, snapshot(t, s, testStream), sameInstants); d != "" {
				t.Errorf("snapshot after Restore (-restored +read):\n%s", d)
			}
		})
	}
}

func TestRestoreReplacesTheStreamsStateAndLeavesOthersAlone(t *testing.T) {
	s := committedState(t)
	other := snapshot(t, s, "1/26/in")
	want := dedupe.Snapshot{
		State: dedupe.StreamState{Stream: testStream, Cursor: at(8, 0), // back, and no seal any more
			Pending: []dedupe.Pending{{CallID: "a", FilterTime: at(6, 0), FirstSeen: at(7, 10)}}},
		Gaps:        []dedupe.Gap{gap(testStream, 1, 2, at(9, 30))},
		Quarantined: []dedupe.Quarantined{{Sum: "q2", DetectedAt: at(9, 30)}},
		Seq:         3, // below the recorded 9: Restore rewinds
	}
	if err := s.Restore(want); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if d := cmp.Diff(want, snapshot(t, s, testStream), sameInstants); d != "" {
		t.Errorf("the stream after Restore (-restored +read):\n%s", d)
	}
	if d := cmp.Diff(other, snapshot(t, s, "1/26/in"), sameInstants); d != "" {
		t.Errorf("Restore changed another stream (-before +after):\n%s", d)
	}
	if got, err := s.Unseen([]dedupe.Key{key("done", at(8, 30), 7)}); err != nil || len(got) != 0 {
		t.Errorf("Unseen of a call seen before Restore = %v, %v; want none (seen marks stay)", got, err)
	}
	if got, _ := s.NewlyBad(testStream, []string{"q1", "q2"}); len(got) != 1 || got[0] != "q1" {
		t.Errorf("NewlyBad after Restore = %v, want [q1]", got)
	}
	gaps, err := s.Gaps()
	if err != nil || len(gaps) != 2 {
		t.Errorf("gap log after Restore = %+v, %v; want the restored gap and the other stream's", gaps, err)
	}
}

func TestRestoreRefusesAnInvalidSnapshotAndTouchesNothing(t *testing.T) {
	valid := func() dedupe.Snapshot {
		return dedupe.Snapshot{State: dedupe.StreamState{Stream: testStream, Cursor: at(1, 0)}, Seq: 1}
	}
	tests := []struct {
		name   string
		change func(*dedupe.Snapshot)
	}{
		{"a snapshot without a stream", func(sn *dedupe.Snapshot) { sn.State.Stream = "" }},
		{"a stream with a NUL byte", func(sn *dedupe.Snapshot) { sn.State.Stream = "1\x00" }},
		{"a pending call without an id", func(sn *dedupe.Snapshot) {
			sn.State.Pending = []dedupe.Pending{{FilterTime: at(1, 0)}}
		}},
		{"a pending call without a filter time", func(sn *dedupe.Snapshot) { sn.State.Pending = []dedupe.Pending{{CallID: "a"}} }},
		{"a sealed day that is not a day", func(sn *dedupe.Snapshot) { sn.State.SealedDay = "2026-03-09" }},
		{"a gap of another stream", func(sn *dedupe.Snapshot) { sn.Gaps = []dedupe.Gap{gap("1/26/in", 1, 2, at(3, 0))} }},
		{"an empty gap", func(sn *dedupe.Snapshot) { sn.Gaps = []dedupe.Gap{gap("", 2, 2, at(3, 0))} }},
		{"a quarantined row without a sum", func(sn *dedupe.Snapshot) { sn.Quarantined = []dedupe.Quarantined{{}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := committedState(t)
			before := snapshot(t, s, testStream)
			sn := valid()
			tt.change(&sn)
			var be *dedupe.BatchError
			if err := s.Restore(sn); !errors.As(err, &be) {
				t.Fatalf("Restore = %v, want a *BatchError", err)
			}
			if d := cmp.Diff(before, snapshot(t, s, testStream), sameInstants); d != "" {
				t.Errorf("a refused Restore changed the stream (-before +after):\n%s", d)
			}
		})
	}
}

func TestSeqPersistsAcrossReopenAndNeverGoesBackwards(t *testing.T) {
	o := options(t)
	s := open(t, o)
	commit(t, s, dedupe.Batch{Stream: testStream, Cursor: ptr(at(9, 0)), SealedDay: "20260309", Seq: 5})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, o)
	if got := snapshot(t, s, testStream).Seq; got != 5 {
		t.Fatalf("Seq after reopen = %d, want 5", got)
	}
	steps := []struct {
		name    string
		b       dedupe.Batch
		refused bool
		want    uint64
	}{
		{"a batch without a seq keeps the recorded one", dedupe.Batch{Stream: testStream, Cursor: ptr(at(9, 5))}, false, 5},
		{"the same seq again is accepted (a retried batch)", dedupe.Batch{Stream: testStream, Seq: 5}, false, 5},
		{"a lower seq is refused and moves nothing", dedupe.Batch{Stream: testStream, Cursor: ptr(at(9, 10)), Seq: 4}, true, 5},
		{"a higher seq is recorded", dedupe.Batch{Stream: testStream, Seq: 6}, false, 6},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := snapshot(t, s, testStream)
			err := s.Commit(st.b)
			var be *dedupe.BatchError
			if st.refused != errors.As(err, &be) || !st.refused && err != nil {
				t.Fatalf("Commit = %v, want refused: %v", err, st.refused)
			}
			after := snapshot(t, s, testStream)
			if after.Seq != st.want {
				t.Errorf("Seq = %d, want %d", after.Seq, st.want)
			}
			if want := before.Apply(st.b); !st.refused && cmp.Diff(want, after, sameInstants) != "" {
				t.Errorf("snapshot after Commit differs from Apply:\n%s", cmp.Diff(want, after, sameInstants))
			} else if st.refused && cmp.Diff(before, after, sameInstants) != "" {
				t.Errorf("a refused batch changed the stream:\n%s", cmp.Diff(before, after, sameInstants))
			}
		})
	}
	if err := s.SetCursor(testStream, at(1, 0)); err != nil {
		t.Fatal(err)
	}
	if got := snapshot(t, s, testStream); got.Seq != 6 || got.State.SealedDay != "20260309" {
		t.Errorf("after SetCursor: seq %d, sealed day %q; want 6 and 20260309 kept", got.Seq, got.State.SealedDay)
	}
}

// A lower seq is refused also when the commit shares a bbolt transaction
// with others (DB.Batch): only that commit fails, the others land.
func TestALowerSeqInAGroupedCommitFailsOnlyThatCommit(t *testing.T) {
	o := options(t)
	o.BatchDelay = 20 * time.Millisecond
	s := open(t, o)
	commit(t, s, dedupe.Batch{Stream: testStream, Seq: 10})
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			b := dedupe.Batch{Stream: fmt.Sprintf("1/%d/in", 100+i), Seq: 1}
			if i == 0 {
				b = dedupe.Batch{Stream: testStream, Seq: 9}
			}
			errs[i] = s.Commit(b)
		})
	}
	wg.Wait()
	var be *dedupe.BatchError
	if !errors.As(errs[0], &be) {
		t.Errorf("the commit with the lower seq = %v, want a *BatchError", errs[0])
	}
	for i, err := range errs[1:] {
		if err != nil {
			t.Errorf("commit %d = %v", i+1, err)
		} else if got := snapshot(t, s, fmt.Sprintf("1/%d/in", 101+i)).Seq; got != 1 {
			t.Errorf("commit %d: seq %d, want 1", i+1, got)
		}
	}
}

// A cursor record written before Seq existed (cursor, last sweep, sealed
// day, "|", last-chance day) reads as Seq 0 with every field intact, and a
// later Commit with a Seq keeps those fields.
func TestAStoreWrittenBeforeSeqReadsSeqZero(t *testing.T) {
	o := options(t)
	s := open(t, o)
	commit(t, s, dedupe.Batch{Stream: "1/26/in"}) // creates the file and its buckets
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	old := make([]byte, 16)
	binary.BigEndian.PutUint64(old[:8], uint64(at(9, 0).UnixNano()))
	binary.BigEndian.PutUint64(old[8:], uint64(at(8, 0).UnixNano()))
	old = append(old, "20260309|20260308"...)
	putRaw(t, o.Path, "cursors", testStream, old)

	s = open(t, o)
	want := dedupe.Snapshot{State: dedupe.StreamState{Stream: testStream, Cursor: at(9, 0), LastSweep: at(8, 0),
		SealedDay: "20260309", LastChanceDay: "20260308"}}
	if d := cmp.Diff(want, snapshot(t, s, testStream), sameInstants); d != "" {
		t.Fatalf("snapshot of an old record (-want +got):\n%s", d)
	}
	commit(t, s, dedupe.Batch{Stream: testStream, Seq: 7})
	want.Seq = 7
	if d := cmp.Diff(want, snapshot(t, s, testStream), sameInstants); d != "" {
		t.Errorf("snapshot after a commit with a seq (-want +got):\n%s", d)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// putRaw writes one value straight into a closed store's file.
func putRaw(t *testing.T, path, bucket, key string, value []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucket)).Put([]byte(key), value) })
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
}

func TestMarkSeen(t *testing.T) {
	keys := []dedupe.Key{key("a", at(9, 0), 1), key("b", at(23, 59), 2), {Stream: "1/26/in", CallID: "a", CallEnd: at(1, 0), Hash: 3}}
	tests := []struct {
		name  string
		marks [][]dedupe.Key // MarkSeen calls, in order
	}{
		{"keys not seen before are seen after", [][]dedupe.Key{keys}},
		{"marking the same keys twice is the same as once", [][]dedupe.Key{keys, keys}},
		{"marking them one at a time is the same as all at once", [][]dedupe.Key{keys[2:], keys[:1], keys[1:2]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, options(t))
			commit(t, s, dedupe.Batch{Stream: testStream, Cursor: ptr(at(8, 0)),
				Pending: []dedupe.Pending{{CallID: "a", FilterTime: at(7, 0)}, {CallID: "c", FilterTime: at(7, 0)}}})
			for _, ks := range tt.marks {
				if err := s.MarkSeen(ks); err != nil {
					t.Fatalf("MarkSeen: %v", err)
				}
			}
			if got, err := s.Unseen(keys); err != nil || len(got) != 0 {
				t.Errorf("Unseen after MarkSeen = %+v, %v; want none", got, err)
			}
			if got, _ := s.Unseen([]dedupe.Key{key("a", at(9, 0), 99)}); len(got) != 1 || !got[0].Update {
				t.Errorf("Unseen of a marked call with another hash = %+v, want it as an update", got)
			}
			st, err := s.Stats()
			if err != nil || st.SeenKeys != 3 {
				t.Errorf("seen keys = %d, %v; want 3", st.SeenKeys, err)
			}
			want := dedupe.StreamState{Stream: testStream, Cursor: at(8, 0), Pending: []dedupe.Pending{{CallID: "c", FilterTime: at(7, 0)}}}
			if got, _ := s.State(testStream); cmp.Diff(want, got, sameInstants) != "" {
				t.Errorf("state after MarkSeen (-want +got):\n%s", cmp.Diff(want, got, sameInstants))
			}
		})
	}
}

func TestMarkSeenRefusesAnInvalidKeyAndWritesNothing(t *testing.T) {
	tests := []struct {
		name string
		bad  dedupe.Key
	}{
		{"a key without a stream", dedupe.Key{CallID: "x", CallEnd: at(9, 0)}},
		{"a key without a call id", dedupe.Key{Stream: testStream, CallEnd: at(9, 0)}},
		{"a key without a call end", dedupe.Key{Stream: testStream, CallID: "x"}},
		{"a key whose stream holds a NUL byte", dedupe.Key{Stream: "1\x00", CallID: "x", CallEnd: at(9, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, options(t))
			var be *dedupe.BatchError
			if err := s.MarkSeen([]dedupe.Key{key("good", at(9, 0), 1), tt.bad}); !errors.As(err, &be) {
				t.Fatalf("MarkSeen = %v, want a *BatchError", err)
			}
			if got, _ := s.Unseen([]dedupe.Key{key("good", at(9, 0), 1)}); len(got) != 1 {
				t.Errorf("the valid key next to the invalid one was marked seen")
			}
		})
	}
}

// BenchmarkMarkSeen100k marks 100,000 new keys (10 streams, calls spread
// over 3 days) per op, in random order, fsync on: ns/op is the cost of
// 100,000 keys.
func BenchmarkMarkSeen100k(b *testing.B) {
	s, err := dedupe.Open(dedupe.Options{Path: b.TempDir() + "/state.db", LockTimeout: time.Second, CCID: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	const n = 100_000
	rng := rand.New(rand.NewPCG(5, 6))
	day := time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC)
	keys := make([]dedupe.Key, n)
	round := 0
	for b.Loop() {
		b.StopTimer()
		for i := range keys {
			id := round*n + i
			keys[i] = dedupe.Key{Stream: fmt.Sprintf("1/%d/in", id%10), CallID: strconv.Itoa(id),
				CallEnd: day.Add(time.Duration(rng.IntN(72*3600)) * time.Second), Hash: uint64(id)}
		}
		round++
		b.StartTimer()
		if err := s.MarkSeen(keys); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(round*n)/b.Elapsed().Seconds(), "keys/s")
}
