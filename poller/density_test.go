package poller

import (
	"testing"
	"time"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller/ccms"
)

// testPlanner is a planner with the service's defaults, in UTC.
func testPlanner() planner {
	cfg := Config{Lookback: 15 * time.Minute, Lag: 5 * time.Second, MaxSpan: 48 * time.Hour, WindowRows: 1000,
		SweepInterval: 15 * time.Minute, SweepLookback: 6 * time.Hour, ReconcileDelay: 4 * time.Hour,
		LastChanceBefore: time.Hour, PollInterval: 30 * time.Second, StartAt: "horizon"}
	return planner{cfg: cfg, reach: ccms.Reach{Loc: time.UTC, Boundary: ccms.BoundaryUTC}, pageSize: 100,
		wc: WindowConfig{Lookback: cfg.Lookback, Lag: cfg.Lag, MaxSpan: cfg.MaxSpan}}
}

// known is a density of rows per hour learned from one read of an hour.
func known(rowsPerHour int) density {
	var d density
	d.observe(rowsPerHour, time.Hour)
	return d
}

func TestWindowSizeRule(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	horizon := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		cursor    time.Time
		d         density
		wantStart time.Time
		wantEnd   time.Time
		behind    bool
	}{
		{name: "a new stream with nothing known reads the whole reach in one window",
			d: density{}, wantStart: horizon, wantEnd: now.Add(-5 * time.Second)},
		{name: "a stream known to be quiet reads from its cursor to now in one window",
			cursor: horizon.Add(time.Hour), d: known(0), wantStart: horizon.Add(45 * time.Minute), wantEnd: now.Add(-5 * time.Second)},
		{name: "a busy stream catching up reads a span expected to hold WindowRows rows",
			cursor: horizon, d: known(500), wantStart: horizon, wantEnd: horizon.Add(2 * time.Hour), behind: true},
		{name: "a very busy stream's span shrinks with its density but never below a second",
			cursor: horizon, d: known(100_000_000), wantStart: horizon, wantEnd: horizon.Add(time.Second), behind: true},
		{name: "a busy stream near now reads up to now",
			cursor: now.Add(-time.Minute), d: known(500), wantStart: now.Add(-16 * time.Minute), wantEnd: now.Add(-5 * time.Second)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := testPlanner().fresh(dedupe.StreamState{Cursor: tc.cursor}, tc.d, now)
			if !p.read.Start.Equal(tc.wantStart) || !p.read.End.Equal(tc.wantEnd) || p.behind != tc.behind {
				t.Errorf("read %v behind %v, want %v behind %v", p.read, p.behind, Window{Start: tc.wantStart, End: tc.wantEnd}, tc.behind)
			}
			if p.maxRows != 1500 {
				t.Errorf("maxRows = %d, want 1.5 × WindowRows", p.maxRows)
			}
		})
	}
}

func TestAWindowsCountTeachesANarrowerWindow(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	pl := testPlanner()
	st := dedupe.StreamState{Cursor: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}
	var d density
	first := pl.fresh(st, d, now)
	d.learn(36_000, first.read.End.Sub(first.read.Start)) // the first page counted 36,000 rows
	second := pl.fresh(st, d, now)
	span := second.read.End.Sub(second.read.Start)
	if want := first.read.End.Sub(first.read.Start) / 36; (span - want).Abs() > time.Second {
		t.Errorf("after a count of 36,000 the window spans %v, want about %v (1,000 rows)", span, want)
	}
}

func TestTheSweepIsFoldedIntoAFreshReadOnlyWhenItFitsInHalfAPage(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	cursor := now.Add(-time.Minute)
	end := now.Add(-5 * time.Second) // the lag
	tests := []struct {
		name      string
		d         density
		folded    bool
		wantStart time.Time
		// wantMax: the most rows the read may find before it is planned
		// again; a widened window is capped at a page over what the
		// unwidened one is expected to hold.
		wantMax int
	}{
		{name: "a stream of 5 rows an hour reads the sweep span at every poll", d: known(5), folded: true,
			wantStart: now.Add(-6 * time.Hour), wantMax: 1500},
		{name: "a stream of 20 rows an hour sweeps apart and reads back the 3 h 45 m that three quarters of a page hold",
			d: known(20), wantStart: end.Add(-75 * time.Hour / 20), wantMax: 105}, // a page + the 5 rows of 16 minutes
		{name: "a stream of 6,000 rows an hour reads back no less than the lookback", d: known(6000),
			wantStart: cursor.Add(-15 * time.Minute), wantMax: 1500},
		{name: "a stream with nothing known sweeps apart", d: density{}, wantStart: cursor.Add(-15 * time.Minute), wantMax: 1500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := testPlanner().fresh(dedupe.StreamState{Cursor: cursor}, tc.d, now)
			gotFolded := p.batch.LastSweep != nil
			if gotFolded != tc.folded {
				t.Fatalf("folded = %v, want %v (read %v)", gotFolded, tc.folded, p.read)
			}
			if !p.read.Start.Equal(tc.wantStart) {
				t.Errorf("read starts %v, want %v", p.read.Start, tc.wantStart)
			}
			if p.maxRows != tc.wantMax {
				t.Errorf("maxRows %d, want %d", p.maxRows, tc.wantMax)
			}
		})
	}
}

func TestASweepRecentlyFoldedIntoAFreshReadIsSkipped(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	pl := testPlanner()
	st := dedupe.StreamState{Cursor: now.Add(-time.Minute), LastSweep: now.Add(-5 * time.Minute)}
	if p := pl.sweep(st, now); !p.skip || !p.wait.Equal(st.LastSweep.Add(15*time.Minute)) {
		t.Errorf("sweep 5 minutes after a folded one: skip %v wait %v, want a skip until %v", p.skip, p.wait, st.LastSweep.Add(15*time.Minute))
	}
	st.LastSweep = now.Add(-20 * time.Minute)
	if p := pl.sweep(st, now); p.skip {
		t.Error("a sweep 20 minutes after the last was skipped")
	}
}

func TestAFreshReadOverAllOfClosedYesterdaySealsIt(t *testing.T) {
	horizon := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		now    time.Time
		st     dedupe.StreamState
		d      density
		sealed bool
	}{
		{name: "a first start after the reconciliation time reads all of yesterday and seals it",
			now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC), sealed: true},
		{name: "a first start before the reconciliation time leaves the day to the reconciliation",
			now: time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)},
		{name: "a window over part of yesterday does not seal it",
			now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC), st: dedupe.StreamState{Cursor: horizon}, d: known(500)},
		{name: "a day already sealed is not sealed again",
			now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC), st: dedupe.StreamState{SealedDay: "20261202"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := testPlanner().fresh(tc.st, tc.d, tc.now)
			if got := !p.seal.Empty(); got != tc.sealed || (got && p.batch.SealedDay != "20261202") {
				t.Errorf("seal %v (day %q), want sealed %v", p.seal, p.batch.SealedDay, tc.sealed)
			}
		})
	}
}

func TestAFirstStartInModeBothRecordsWhatItSkipsAsAGap(t *testing.T) {
	shanghai := mustLoc(t, "Asia/Shanghai")
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC) // 20:00 in Shanghai
	tests := []struct {
		name    string
		mode    ccms.DayBoundary
		st      dedupe.StreamState
		wantGap Window
	}{
		{name: "mode both east of UTC skips from Shanghai's 00:00 of yesterday to UTC's, and says so",
			mode: ccms.BoundaryBoth, wantGap: Window{Start: time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}},
		{name: "auto before an answer is both, and says so too",
			mode: ccms.BoundaryAuto, wantGap: Window{Start: time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}},
		{name: "mode tenant starts at Shanghai's midnight and skips nothing", mode: ccms.BoundaryTenant},
		{name: "a stream that already started records no such gap", mode: ccms.BoundaryBoth, st: dedupe.StreamState{Cursor: now.Add(-time.Minute)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl := testPlanner()
			pl.reach = ccms.Reach{Loc: shanghai, Boundary: tc.mode}
			p := pl.fresh(tc.st, density{}, now)
			var got Window
			for _, g := range p.batch.Gaps {
				got = Window{Start: g.Start, End: g.End}
			}
			if !got.Start.Equal(tc.wantGap.Start) || !got.End.Equal(tc.wantGap.End) {
				t.Errorf("gap %v, want %v", got, tc.wantGap)
			}
		})
	}
}

// A stream whose reads decayed to a trace of a row over half a day asks for
// a span no Duration holds: that is no limit, not an overflow to a second.
func TestATraceOfARowOverLongReadsIsNoLimit(t *testing.T) {
	d := density{rows: 0.0037, secs: 43187}
	if s := d.span(1000); s != 0 {
		t.Errorf("span %v, want 0 (no limit)", s)
	}
	if s := known(500).span(1000); s != 2*time.Hour {
		t.Errorf("500 rows an hour: span %v for 1000 rows, want 2h", s)
	}
}
