package dedupe_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/callpub/callpub/dedupe"
)

func TestPruneDropsWholeDayBucketsAcrossDST(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	o := options(t)
	o.Location = berlin
	s := open(t, o)
	local := func(mo time.Month, d, h, mi int) time.Time { return time.Date(2026, mo, d, h, mi, 0, 0, berlin) }
	fallBack := local(10, 25, 2, 30) // the first 02:30 (CEST); the second is an hour later (CET)
	calls := []time.Time{
		local(3, 28, 23, 30),
		local(3, 29, 0, 30),  // 23:30 UTC on the 28th: cutting days at UTC midnight would misfile it
		local(3, 29, 23, 30), // a 23-hour day
		local(3, 30, 0, 30),
		fallBack,
		fallBack.Add(time.Hour), // a 25-hour day
		local(10, 25, 23, 30),
		local(10, 26, 0, 15),
	}
	var seen []dedupe.Key
	for i, end := range calls {
		seen = append(seen, key(string(rune('a'+i)), end, 1))
	}
	commit(t, s, dedupe.Batch{Stream: testStream, Seen: seen})
	days := func() []dedupe.DayStats {
		t.Helper()
		st, err := s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st.Days
	}
	if diff := cmp.Diff([]dedupe.DayStats{
		{"20260328", 1}, {"20260329", 2}, {"20260330", 1}, {"20261025", 3}, {"20261026", 1},
	}, days()); diff != "" {
		t.Fatalf("day buckets before pruning (-want +got):\n%s", diff)
	}

	steps := []struct {
		name        string
		before      time.Time
		wantDropped int
		wantDays    []dedupe.DayStats
	}{
		{"pruning just after midnight following the 23-hour day drops both March days before it",
			local(3, 30, 0, 1), 2,
			[]dedupe.DayStats{{"20260330", 1}, {"20261025", 3}, {"20261026", 1}}},
		{"pruning again before the same day drops nothing",
			local(3, 30, 23, 59), 0,
			[]dedupe.DayStats{{"20260330", 1}, {"20261025", 3}, {"20261026", 1}}},
		{"pruning in the last minute of the 25-hour day keeps that day whole",
			local(10, 25, 23, 59), 1,
			[]dedupe.DayStats{{"20261025", 3}, {"20261026", 1}}},
		{"pruning at the midnight after the 25-hour day drops it whole",
			local(10, 26, 0, 0), 1,
			[]dedupe.DayStats{{"20261026", 1}}},
	}
	for _, step := range steps {
		n, err := s.Prune(step.before)
		if err != nil {
			t.Fatalf("%s: Prune: %v", step.name, err)
		}
		if n != step.wantDropped {
			t.Errorf("%s: dropped %d buckets, want %d", step.name, n, step.wantDropped)
		}
		if diff := cmp.Diff(step.wantDays, days()); diff != "" {
			t.Errorf("%s: day buckets (-want +got):\n%s", step.name, diff)
		}
	}
	if n, _ := s.CountSeen(testStream, local(10, 26, 12, 0)); n != 1 {
		t.Errorf("CountSeen of the remaining day = %d, want 1", n)
	}
	if unseen, _ := s.Unseen([]dedupe.Key{seen[1]}); len(unseen) != 1 {
		t.Errorf("a call of a pruned day is still seen: %v", unseen)
	}
}
