package poller

import (
	"fmt"
	"testing"
	"time"

	"github.com/callpub/callpub/poller/ccms"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestPlanFresh(t *testing.T) {
	utc := time.UTC
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	wc := WindowConfig{Lookback: 15 * time.Minute, Lag: 5 * time.Second, MaxSpan: 2 * time.Hour}
	cases := []struct {
		name              string
		cursor, now       time.Time
		loc               *time.Location
		wantRead, wantGap Window
		wantCursor        time.Time
		behind, idle      bool
	}{
		{
			name:   "a caught-up stream re-reads the lookback and moves to now minus the lag",
			cursor: at("2026-11-24T10:00:00Z"), now: at("2026-11-24T10:00:30Z"), loc: utc,
			wantRead:   Window{at("2026-11-24T09:45:00Z"), at("2026-11-24T10:00:25Z")},
			wantCursor: at("2026-11-24T10:00:25Z"),
		},
		{
			name:   "the first poll of a new stream starts at the API's horizon, 00:00 of yesterday",
			cursor: time.Time{}, now: at("2026-11-24T10:00:00Z"), loc: utc,
			wantRead:   Window{at("2026-11-23T00:00:00Z"), at("2026-11-23T02:00:00Z")},
			wantCursor: at("2026-11-23T02:00:00Z"), behind: true,
		},
		{
			name:   "a long catch-up advances by the max span per step",
			cursor: at("2026-11-23T12:00:00Z"), now: at("2026-11-24T10:00:00Z"), loc: utc,
			wantRead:   Window{at("2026-11-23T11:45:00Z"), at("2026-11-23T14:00:00Z")},
			wantCursor: at("2026-11-23T14:00:00Z"), behind: true,
		},
		{
			name:   "the lookback is clamped to the horizon",
			cursor: at("2026-11-23T00:05:00Z"), now: at("2026-11-24T00:10:00Z"), loc: utc,
			wantRead:   Window{at("2026-11-23T00:00:00Z"), at("2026-11-23T02:05:00Z")},
			wantCursor: at("2026-11-23T02:05:00Z"), behind: true,
		},
		{
			name:   "at midnight the horizon moves and a cursor behind it is a gap",
			cursor: at("2026-11-22T23:00:00Z"), now: at("2026-11-24T00:00:01Z"), loc: utc,
			wantGap:    Window{at("2026-11-22T23:00:00Z"), at("2026-11-23T00:00:00Z")},
			wantRead:   Window{at("2026-11-23T00:00:00Z"), at("2026-11-23T02:00:00Z")},
			wantCursor: at("2026-11-23T02:00:00Z"), behind: true,
		},
		{
			name:   "a window crossing midnight is read whole",
			cursor: at("2026-11-23T23:59:00Z"), now: at("2026-11-24T00:00:30Z"), loc: utc,
			wantRead:   Window{at("2026-11-23T23:44:00Z"), at("2026-11-24T00:00:25Z")},
			wantCursor: at("2026-11-24T00:00:25Z"),
		},
		{
			name:   "a cursor at now minus the lag has nothing to read",
			cursor: at("2026-11-24T10:00:25Z"), now: at("2026-11-24T10:00:30Z"), loc: utc,
			wantCursor: at("2026-11-24T10:00:25Z"), idle: true,
		},
		{
			name:   "a cursor in the future (clock stepped back) never moves backwards",
			cursor: at("2026-11-24T11:00:00Z"), now: at("2026-11-24T10:00:00Z"), loc: utc,
			wantCursor: at("2026-11-24T11:00:00Z"), idle: true,
		},
		{
			name:   "on a 23-hour day the horizon is local midnight of yesterday (Berlin, spring forward)",
			cursor: time.Time{}, now: time.Date(2026, 3, 30, 9, 0, 0, 0, mustLoc(t, "Europe/Berlin")), loc: mustLoc(t, "Europe/Berlin"),
			wantRead:   Window{at("2026-03-28T23:00:00Z"), at("2026-03-29T01:00:00Z")},
			wantCursor: at("2026-03-29T01:00:00Z"), behind: true,
		},
		{
			name:   "on a 25-hour day the horizon is local midnight of yesterday (Berlin, fall back)",
			cursor: time.Time{}, now: time.Date(2026, 10, 26, 9, 0, 0, 0, mustLoc(t, "Europe/Berlin")), loc: mustLoc(t, "Europe/Berlin"),
			wantRead:   Window{at("2026-10-24T22:00:00Z"), at("2026-10-25T00:00:00Z")},
			wantCursor: at("2026-10-25T00:00:00Z"), behind: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := PlanFresh(c.cursor, c.now, tenant(c.loc), wc)
			if !p.Read.Start.Equal(c.wantRead.Start) || !p.Read.End.Equal(c.wantRead.End) {
				t.Errorf("read %v, want %v", p.Read, c.wantRead)
			}
			if !p.Gap.Start.Equal(c.wantGap.Start) || !p.Gap.End.Equal(c.wantGap.End) {
				t.Errorf("gap %v, want %v", p.Gap, c.wantGap)
			}
			if !p.NewCursor.Equal(c.wantCursor) {
				t.Errorf("cursor %v, want %v", p.NewCursor, c.wantCursor)
			}
			if p.Behind != c.behind || p.Idle != c.idle {
				t.Errorf("behind=%v idle=%v, want %v %v", p.Behind, p.Idle, c.behind, c.idle)
			}
		})
	}
}

func TestHeadroom(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	cases := []struct {
		name   string
		w, now time.Time
		loc    *time.Location
		want   time.Duration
	}{
		{"a cursor at now has until the end of tomorrow", time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), time.UTC, 38 * time.Hour},
		{"a cursor from yesterday has until midnight tonight", time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 24, 22, 0, 0, 0, time.UTC), time.UTC, 2 * time.Hour},
		{"a cursor behind the horizon has negative headroom", time.Date(2026, 11, 22, 23, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC), time.UTC, -time.Hour},
		{"a 23-hour day shortens the headroom by an hour", time.Date(2026, 3, 28, 12, 0, 0, 0, berlin),
			time.Date(2026, 3, 29, 0, 0, 0, 0, berlin), berlin, 23 * time.Hour},
		{"a 25-hour day lengthens it by an hour", time.Date(2026, 10, 24, 12, 0, 0, 0, berlin),
			time.Date(2026, 10, 25, 0, 0, 0, 0, berlin), berlin, 25 * time.Hour},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Headroom(c.w, c.now, tenant(c.loc)); got != c.want {
				t.Errorf("Headroom = %v, want %v", got, c.want)
			}
		})
	}
}

// tenant is the reach of the API's days in loc alone (ccms.BoundaryTenant).
func tenant(loc *time.Location) ccms.Reach {
	return ccms.Reach{Loc: loc, Boundary: ccms.BoundaryTenant}
}

// In mode both (the default) the horizon is the later of the tenant's and
// UTC's yesterday-midnight, so a tenant east of UTC starts and loses data on
// UTC's schedule for part of the day.
func TestPlanFreshAndHeadroomInModeBoth(t *testing.T) {
	shanghai := mustLoc(t, "Asia/Shanghai")
	both := ccms.Reach{Loc: shanghai}
	wc := WindowConfig{Lookback: 15 * time.Minute, Lag: 5 * time.Second, MaxSpan: 2 * time.Hour}
	cases := []struct {
		name        string
		cursor, now time.Time
		wantStart   time.Time
		wantGap     Window
		headroom    time.Duration
	}{
		{"at 03:00 UTC a new stream starts at UTC's midnight, 8h after Shanghai's",
			time.Time{}, time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Window{},
			13 * time.Hour}, // lost at Shanghai's next midnight, 16:00 UTC
		{"at 20:00 UTC Shanghai's day has turned and its midnight is the later one",
			time.Time{}, time.Date(2025, 1, 2, 20, 0, 0, 0, time.UTC), time.Date(2025, 1, 1, 16, 0, 0, 0, time.UTC), Window{},
			4 * time.Hour},
		{"a cursor that only Shanghai's days would still reach is a gap in mode both",
			time.Date(2024, 12, 31, 20, 0, 0, 0, time.UTC), time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC),
			time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
			Window{time.Date(2024, 12, 31, 20, 0, 0, 0, time.UTC), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}, -3 * time.Hour},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := PlanFresh(c.cursor, c.now, both, wc)
			if !p.Read.Start.Equal(c.wantStart) {
				t.Errorf("read %v, want a start at %v", p.Read, c.wantStart)
			}
			if !p.Gap.Start.Equal(c.wantGap.Start) || !p.Gap.End.Equal(c.wantGap.End) {
				t.Errorf("gap %v, want %v", p.Gap, c.wantGap)
			}
			w := c.cursor
			if w.IsZero() {
				w = p.Read.Start
			}
			if got := Headroom(w, c.now, both); got != c.headroom {
				t.Errorf("headroom of %v = %v, want %v", w, got, c.headroom)
			}
		})
	}
}

func TestYesterdayAcrossDST(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	cases := []struct {
		name string
		now  time.Time
		want time.Duration
	}{
		{"an ordinary day has 24 hours", time.Date(2026, 11, 24, 9, 0, 0, 0, berlin), 24 * time.Hour},
		{"the spring-forward day has 23 hours", time.Date(2026, 3, 30, 9, 0, 0, 0, berlin), 23 * time.Hour},
		{"the fall-back day has 25 hours", time.Date(2026, 10, 26, 9, 0, 0, 0, berlin), 25 * time.Hour},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			y := Yesterday(c.now, berlin)
			if got := y.End.Sub(y.Start); got != c.want {
				t.Errorf("yesterday %v is %v long, want %v", y, got, c.want)
			}
		})
	}
}

func ExampleHorizon() {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	now := time.Date(2026, 3, 30, 9, 0, 0, 0, berlin)                         // the day after clocks went forward
	h := Horizon(now, ccms.Reach{Loc: berlin, Boundary: ccms.BoundaryTenant}) // 00:00 of the previous day
	fmt.Println(h, now.Sub(h))
	// Output: 2026-03-29 00:00:00 +0100 CET 32h0m0s
}

func TestVDNSetParsesRanges(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		{in: "1-200,305", want: "1-200,305"},
		{in: " 7 , 3,4-5", want: "3-5,7"},
		{in: "0-3", err: `"0-3": VDNs are 1..5000 and a range goes low-high`},
		{in: "5-3", err: `"5-3": VDNs are 1..5000 and a range goes low-high`},
		{in: "1,1", err: "VDN 1 is listed twice"},
		{in: "a", err: `"a" is not a VDN or a range like 1-200`},
		{in: "", err: "empty VDN list"},
	}
	for _, c := range cases {
		var v VDNSet
		err := v.UnmarshalText([]byte(c.in))
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%q: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || v.String() != c.want {
			t.Errorf("%q: %v %v, want %s", c.in, v, err, c.want)
		}
	}
}

// Whatever VDN list parses renders to a form that parses to the same set.
func FuzzVDNSet(f *testing.F) {
	for _, s := range []string{"1-200,305", "7", " 3 ,4-5", "5000", "0", "1-", "-3", "1,1", "2-1", "1-5000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v VDNSet
		if err := v.UnmarshalText([]byte(s)); err != nil {
			return
		}
		if len(v) == 0 || v[0] < 1 || v[len(v)-1] > 5000 {
			t.Fatalf("%q parsed to %v", s, v)
		}
		var again VDNSet
		if err := again.UnmarshalText([]byte(v.String())); err != nil || again.String() != v.String() {
			t.Fatalf("%q -> %q -> %v (%v)", s, v.String(), again, err)
		}
	})
}
