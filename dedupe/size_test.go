package dedupe

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// daySize is the store at the end of one simulated day.
type daySize struct {
	Day      int           // 1, 2, ...
	File     int64         // bytes on disk (Size)
	Data     int64         // bbolt's high-water mark: the pages of the file, in use or free
	SeenKeys int           // seen calls held
	Buckets  int           // day buckets held
	Dropped  int           // day buckets dropped during the day
	MaxPrune time.Duration // the longest prune of the day (one bucket per transaction)
}

func (d daySize) String() string {
	return fmt.Sprintf("day %d: file %.1f MiB, pages %.1f MiB, %d seen calls in %d day buckets (%.0f bytes each), %d dropped, longest prune %v",
		d.Day, mib(d.File), mib(d.Data), d.SeenKeys, d.Buckets, float64(d.Data)/float64(max(d.SeenKeys, 1)),
		d.Dropped, d.MaxPrune.Round(time.Millisecond))
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// simWeekStart is the first simulated day: a Monday in UTC.
var simWeekStart = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// simulateDays runs days of traffic through s the way `callpub run` does
// with its defaults, with the API's day in UTC. callsPerDay calls a day are
// committed in 100-call batches by streams/2 VDNs in both directions, each
// stream in turn (keys 1/<vdn>/<dir>/<callId>); a batch's calls ended over
// the time since the stream's previous batch, so some fall on the day
// before. Every simulated hour the store is pruned before the horizon
// (00:00 of yesterday) minus a margin of 24 hours. endOfDay gets the store's
// size after each day.
func simulateDays(tb testing.TB, s *Store, days, callsPerDay int, endOfDay func(daySize)) {
	tb.Helper()
	const perBatch = 100
	batches := callsPerDay / perBatch
	streams := max(2, callsPerDay/500) // each stream commits 5 batches a day
	step := 24 * time.Hour / time.Duration(batches)
	since := step * time.Duration(streams) // between two batches of one stream
	seq := 0
	lastPrune := time.Time{}
	for day := 1; day <= days; day++ {
		today := simWeekStart.AddDate(0, 0, day-1)
		stat := daySize{Day: day}
		for i := range batches {
			now := today.Add(time.Duration(i) * step)
			if hour := now.Truncate(time.Hour); hour != lastPrune { // UTC: hours are hours
				lastPrune = hour
				simPrune(tb, s, now, &stat)
			}
			st := (seq / perBatch) % streams
			name := fmt.Sprintf("1/%d/%s", 1000+st/2, [2]string{"in", "out"}[st%2])
			b := Batch{Stream: name, Seen: make([]Key, perBatch), Cursor: &now}
			for j := range b.Seen {
				end := now.Add(-since * time.Duration(perBatch-j) / perBatch)
				id := fmt.Sprintf("%d-%06d", end.Unix()-90, seq%1_000_000) // callId: begin time and a sequence
				b.Seen[j] = Key{Stream: name, CallID: id, CallEnd: end, Hash: uint64(seq) * 0x9e3779b97f4a7c15}
				seq++
			}
			if err := s.Commit(b); err != nil {
				tb.Fatal(err)
			}
		}
		endOfDay(measure(tb, s, stat))
	}
}

// simPrune prunes as the service's retention loop does at now.
func simPrune(tb testing.TB, s *Store, now time.Time, stat *daySize) {
	tb.Helper()
	y, m, d := now.Date()
	horizon := time.Date(y, m, d-1, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	dropped, err := s.PruneByDay(horizon.Add(-24 * time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	if len(dropped) > 0 {
		stat.Dropped += len(dropped)
		stat.MaxPrune = max(stat.MaxPrune, time.Since(start))
	}
}

func measure(tb testing.TB, s *Store, stat daySize) daySize {
	tb.Helper()
	st, err := s.Stats()
	if err != nil {
		tb.Fatal(err)
	}
	if stat.File, err = s.Size(); err != nil {
		tb.Fatal(err)
	}
	stat.Data, stat.SeenKeys, stat.Buckets = st.DataSize, st.SeenKeys, st.DayBuckets
	return stat
}

// simOpen opens a fresh store for a simulation. Without fsync: it changes
// the time a commit takes, not the pages it writes.
func simOpen(tb testing.TB) *Store {
	tb.Helper()
	s, err := Open(Options{Path: filepath.Join(tb.TempDir(), "state.db"), LockTimeout: time.Second, CCID: 1})
	if err != nil {
		tb.Fatal(err)
	}
	s.db.NoSync = true
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestStoreSizeStaysFlatWhilePrunedDaily(t *testing.T) {
	s := simOpen(t)
	var week []daySize
	simulateDays(t, s, 7, 20_000, func(d daySize) {
		t.Log(d)
		week = append(week, d)
	})
	// From day 3 on the store holds three days (the day before yesterday,
	// yesterday and today) and each new day reuses the pages of the day
	// dropped at its start. bbolt never gives pages back, so flat, not
	// shrinking, is the expected shape.
	day3 := week[2]
	for _, d := range week[3:] {
		if d.Buckets > 3 || d.Dropped == 0 {
			t.Errorf("%v: want at most 3 day buckets and one dropped", d)
		}
		if d.File > day3.File+day3.File/8 || d.Data > day3.Data+day3.Data/8 {
			t.Errorf("%v: grew beyond %v", d, day3)
		}
	}
}
