package dedupe_test

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/callpub/callpub/dedupe"
)

func TestPruneByDayDropsOldDaysOldestFirstAcrossDST(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	o := options(t)
	o.Location = berlin
	s := open(t, o)
	local := func(d, h int) time.Time { return time.Date(2026, 3, d, h, 30, 0, 0, berlin) }
	var seen []dedupe.Key
	for i, end := range []time.Time{local(27, 12), local(28, 23), local(29, 0), local(29, 23), local(30, 0), local(31, 9)} {
		seen = append(seen, key(string(rune('a'+i)), end, 1))
	}
	commit(t, s, dedupe.Batch{Stream: testStream, Seen: seen})

	steps := []struct {
		name   string
		before time.Time
		want   []string
	}{
		{"nothing is older than the oldest day", local(27, 23), nil},
		{"the days before the 23-hour day's successor go, oldest first", local(30, 0), []string{"20260327", "20260328", "20260329"}},
		{"pruning again before the same day drops nothing", local(30, 23), nil},
		{"a day far ahead drops every day before it", local(31, 0).AddDate(0, 1, 0), []string{"20260330", "20260331"}},
	}
	for _, step := range steps {
		got, err := s.PruneByDay(step.before)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if diff := cmp.Diff(step.want, got); diff != "" {
			t.Errorf("%s: dropped days (-want +got):\n%s", step.name, diff)
		}
	}
	if unseen, err := s.Unseen(seen[:1]); err != nil || len(unseen) != 1 {
		t.Errorf("a call of a dropped day: Unseen = %v, %v; want it unseen", unseen, err)
	}
}

func TestPruneByDayKeepsTheDayOfBefore(t *testing.T) {
	s := open(t, options(t))
	commit(t, s, dedupe.Batch{Stream: testStream, Seen: []dedupe.Key{key("a", at(0, 0), 1), key("b", at(23, 59), 1)}})
	got, err := s.PruneByDay(at(0, 0))
	if err != nil || len(got) != 0 {
		t.Fatalf("PruneByDay at the day's first instant = %v, %v; want nothing dropped", got, err)
	}
	if n, _ := s.CountSeen(testStream, at(12, 0)); n != 2 {
		t.Errorf("CountSeen = %d, want 2", n)
	}
}

func TestPruneByDayOnAClosedStore(t *testing.T) {
	s := open(t, options(t))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PruneByDay(at(0, 0)); !errors.Is(err, dedupe.ErrClosed) {
		t.Errorf("PruneByDay after Close: %v, want ErrClosed", err)
	}
}

func TestStoreSizeAndVolumeFree(t *testing.T) {
	o := options(t)
	s := open(t, o)
	size, err := s.Size()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(o.Path)
	if err != nil {
		t.Fatal(err)
	}
	if size != fi.Size() || size == 0 {
		t.Errorf("Size = %d, file has %d bytes", size, fi.Size())
	}
	free, err := s.VolumeFree()
	switch {
	case runtime.GOOS != "linux":
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("VolumeFree on %s = %d, %v; want ErrUnsupported", runtime.GOOS, free, err)
		}
	case err != nil || free <= 0:
		t.Errorf("VolumeFree = %d, %v; want the free bytes of the test's volume", free, err)
	}
}

// PruneByDay leaves exactly what Prune leaves, quarantined rows included
// (those detected on before's day but before before go, later ones stay).
func TestPruneByDayLeavesWhatPruneLeaves(t *testing.T) {
	before := at(6, 0).AddDate(0, 0, 3)
	var seen []dedupe.Key
	var bad []dedupe.Quarantined
	var sums []string
	for i := range 6 {
		end := at(9, 0).AddDate(0, 0, i)
		seen = append(seen, key(string(rune('a'+i)), end, 1))
		for _, h := range []int{4, 10} { // quarantined at 04:00 and 10:00 of each day
			sum := fmt.Sprintf("%s-%d", seen[i].CallID, h)
			bad = append(bad, dedupe.Quarantined{Sum: sum, DetectedAt: at(h, 0).AddDate(0, 0, i)})
			sums = append(sums, sum)
		}
	}
	type left struct {
		Days  []dedupe.DayStats
		Sums  []string // not quarantined any more
		Count int
	}
	results := map[string]left{}
	for _, how := range []string{"Prune", "PruneByDay"} {
		s := open(t, options(t))
		commit(t, s, dedupe.Batch{Stream: testStream, Seen: seen, Quarantined: bad})
		var n int
		var err error
		if how == "Prune" {
			n, err = s.Prune(before)
		} else {
			var days []string
			days, err = s.PruneByDay(before)
			n = len(days)
		}
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		st, err := s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		gone, err := s.NewlyBad(testStream, sums)
		if err != nil {
			t.Fatal(err)
		}
		results[how] = left{Days: st.Days, Sums: gone, Count: n}
	}
	want := results["Prune"]
	if want.Count != 3 || len(want.Sums) != 7 {
		t.Fatalf("Prune dropped %d days and %d quarantined rows; the test expects 3 and 7", want.Count, len(want.Sums))
	}
	if diff := cmp.Diff(want, results["PruneByDay"]); diff != "" {
		t.Errorf("PruneByDay differs from Prune (-Prune +PruneByDay):\n%s", diff)
	}
}
