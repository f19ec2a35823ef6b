package dedupe_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller/pollertest"
)

// TestStateAfterCommitIsApply holds the in-memory rule (StreamState.Apply)
// to what the store does: after every one of many random valid batches, the
// state read back from the file equals the state advanced by Apply.
func TestStateAfterCommitIsApply(t *testing.T) {
	s := open(t, options(t))
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC)
	mem := dedupe.StreamState{Stream: testStream}
	for i := range 300 {
		b := randomBatch(rng, base.Add(time.Duration(i)*time.Minute), mem)
		if err := s.Commit(b); err != nil {
			t.Fatalf("batch %d: Commit: %v", i, err)
		}
		mem = mem.Apply(b)
		got, err := s.State(testStream)
		if err != nil {
			t.Fatal(err)
		}
		if d := stateDiff(got, mem); d != "" {
			t.Fatalf("batch %d %+v: store and Apply disagree: %s", i, b, d)
		}
	}
}

func TestApplyDoesNotChangeItsReceiver(t *testing.T) {
	at := time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC)
	st := dedupe.StreamState{Stream: testStream, Pending: []dedupe.Pending{{CallID: "a", FilterTime: at, FirstSeen: at}}}
	next := st.Apply(dedupe.Batch{Stream: testStream, Resolved: []string{"a"},
		Pending: []dedupe.Pending{{CallID: "b", FilterTime: at.Add(-time.Minute), FirstSeen: at}}})
	if len(st.Pending) != 1 || st.Pending[0].CallID != "a" {
		t.Errorf("the receiver's pending changed: %+v", st.Pending)
	}
	if len(next.Pending) != 1 || next.Pending[0].CallID != "b" {
		t.Errorf("pending after Apply = %+v, want only b", next.Pending)
	}
}

// randomBatch makes a valid batch for a stream in state st: new and known
// calls going pending (with and without FirstSeen), known calls resolved or
// seen, and sometimes a cursor, a last sweep or a sealed day.
func randomBatch(rng *rand.Rand, now time.Time, st dedupe.StreamState) dedupe.Batch {
	b := dedupe.Batch{Stream: testStream}
	used := map[string]bool{}
	id := func() string {
		if len(st.Pending) > 0 && rng.IntN(2) == 0 {
			return st.Pending[rng.IntN(len(st.Pending))].CallID
		}
		return fmt.Sprintf("c%d", rng.IntN(40))
	}
	for range rng.IntN(6) {
		c := id()
		if used[c] {
			continue
		}
		used[c] = true
		at := now.Add(-time.Duration(rng.IntN(7200)) * time.Second)
		switch rng.IntN(3) {
		case 0:
			p := dedupe.Pending{CallID: c, FilterTime: at}
			if rng.IntN(4) > 0 {
				p.FirstSeen = now.Add(-time.Duration(rng.IntN(600)) * time.Second)
			}
			b.Pending = append(b.Pending, p)
		case 1:
			b.Resolved = append(b.Resolved, c)
		default:
			b.Seen = append(b.Seen, dedupe.Key{Stream: testStream, CallID: c, CallEnd: at, Hash: rng.Uint64()})
		}
	}
	if rng.IntN(2) == 0 {
		c := now.Add(-time.Duration(rng.IntN(60)) * time.Second)
		b.Cursor = &c
	}
	if rng.IntN(4) == 0 {
		b.LastSweep = &now
	}
	if rng.IntN(8) == 0 {
		b.SealedDay = now.AddDate(0, 0, -1).Format("20060102")
	}
	if rng.IntN(8) == 0 {
		b.LastChanceDay = now.AddDate(0, 0, -2).Format("20060102")
	}
	return b
}

// stateDiff describes how two states differ, comparing instants with Equal.
func stateDiff(a, b dedupe.StreamState) string {
	switch {
	case a.Stream != b.Stream:
		return fmt.Sprintf("stream %q vs %q", a.Stream, b.Stream)
	case !a.Cursor.Equal(b.Cursor):
		return fmt.Sprintf("cursor %v vs %v", a.Cursor, b.Cursor)
	case !a.LastSweep.Equal(b.LastSweep):
		return fmt.Sprintf("last sweep %v vs %v", a.LastSweep, b.LastSweep)
	case a.SealedDay != b.SealedDay:
		return fmt.Sprintf("sealed day %q vs %q", a.SealedDay, b.SealedDay)
	case a.LastChanceDay != b.LastChanceDay:
		return fmt.Sprintf("last-chance day %q vs %q", a.LastChanceDay, b.LastChanceDay)
	case len(a.Pending) != len(b.Pending):
		return fmt.Sprintf("pending %+v vs %+v", a.Pending, b.Pending)
	}
	for i := range a.Pending {
		x, y := a.Pending[i], b.Pending[i]
		if x.CallID != y.CallID || !x.FilterTime.Equal(y.FilterTime) || !x.FirstSeen.Equal(y.FirstSeen) {
			return fmt.Sprintf("pending[%d] %+v vs %+v", i, x, y)
		}
	}
	return ""
}

// The store keeps the poller's Store contract (poller/pollertest).
func TestStoreKeepsThePollerContract(t *testing.T) {
	pollertest.Store(t, open(t, options(t)))
}

// A quarantined row is reported once: after the commit that records it,
// NewlyBad no longer returns it, for that stream only, and a prune past its
// detection forgets it.
func TestAQuarantinedRowIsNewOnlyUntilCommitted(t *testing.T) {
	s := open(t, options(t))
	at := time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC)
	if got, err := s.NewlyBad(testStream, []string{"aa", "bb"}); err != nil || len(got) != 2 {
		t.Fatalf("NewlyBad before any commit = %v, %v; want both", got, err)
	}
	if err := s.Commit(dedupe.Batch{Stream: testStream, Quarantined: []dedupe.Quarantined{{Sum: "aa", DetectedAt: at}}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.NewlyBad(testStream, []string{"aa", "bb"}); len(got) != 1 || got[0] != "bb" {
		t.Errorf("NewlyBad after the commit = %v, want [bb]", got)
	}
	if got, _ := s.NewlyBad("1/25/out", []string{"aa"}); len(got) != 1 {
		t.Errorf("another stream's NewlyBad = %v, want [aa]", got)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	if _, err := s.Prune(at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.NewlyBad(testStream, []string{"aa"}); len(got) != 1 {
		t.Errorf("NewlyBad after a prune past the detection = %v, want [aa]", got)
	}
	if err := s.Commit(dedupe.Batch{Stream: testStream, Quarantined: []dedupe.Quarantined{{Sum: ""}}}); err == nil {
		t.Error("a quarantined row without a sum was accepted")
	}
}

func TestGapsInListsOnlyTheStreamsGapsThatOverlapTheSpan(t *testing.T) {
	s := open(t, options(t))
	day := time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC)
	gaps := []dedupe.Gap{
		{Stream: testStream, Start: day.Add(-2 * time.Hour), End: day.Add(time.Hour)},
		{Stream: testStream, Start: day.Add(25 * time.Hour), End: day.Add(26 * time.Hour)},
		{Stream: "1/26/in", Start: day.Add(time.Hour), End: day.Add(2 * time.Hour)},
	}
	for _, g := range gaps {
		if err := s.Commit(dedupe.Batch{Stream: g.Stream, Gaps: []dedupe.Gap{g}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GapsIn(testStream, day, day.Add(24*time.Hour))
	if err != nil || len(got) != 1 || !got[0].Start.Equal(gaps[0].Start) {
		t.Errorf("GapsIn = %+v, %v; want only the gap reaching into the day", got, err)
	}
}
