package ccms

import (
	"errors"
	"fmt"
	"github.com/callpub/callpub/schemas"
	"strings"
	"testing"
	"time"
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestAllowedRange(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	shanghai := mustLoad(t, "Asia/Shanghai")
	tests := []struct {
		name                   string
		now                    time.Time
		loc                    *time.Location
		wantEarliest, wantLast string // RFC 3339 with ms
		wantSpan               time.Duration
	}{
		{
			name: "a normal UTC day spans 48 hours", now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), loc: time.UTC,
			wantEarliest: "2025-01-01T00:00:00.000Z", wantLast: "2025-01-02T23:59:59.999Z", wantSpan: 48*time.Hour - time.Millisecond,
		},
		{
			name: "the day clocks go forward in Berlin has 23 hours", now: time.Date(2026, 3, 29, 12, 0, 0, 0, berlin), loc: berlin,
			wantEarliest: "2026-03-28T00:00:00.000+01:00", wantLast: "2026-03-29T23:59:59.999+02:00", wantSpan: 47*time.Hour - time.Millisecond,
		},
		{
			name: "the day after clocks go forward starts yesterday's 23-hour day", now: time.Date(2026, 3, 30, 9, 0, 0, 0, berlin), loc: berlin,
			wantEarliest: "2026-03-29T00:00:00.000+01:00", wantLast: "2026-03-30T23:59:59.999+02:00", wantSpan: 47*time.Hour - time.Millisecond,
		},
		{
			name: "the day clocks go back in Berlin has 25 hours", now: time.Date(2026, 10, 25, 12, 0, 0, 0, berlin), loc: berlin,
			wantEarliest: "2026-10-24T00:00:00.000+02:00", wantLast: "2026-10-25T23:59:59.999+01:00", wantSpan: 49*time.Hour - time.Millisecond,
		},
		{
			name: "the day after clocks go back starts yesterday's 25-hour day", now: time.Date(2026, 10, 26, 0, 30, 0, 0, berlin), loc: berlin,
			wantEarliest: "2026-10-25T00:00:00.000+02:00", wantLast: "2026-10-26T23:59:59.999+01:00", wantSpan: 49*time.Hour - time.Millisecond,
		},
		{
			name: "now is converted into the zone before taking its day", now: time.Date(2025, 1, 1, 17, 0, 0, 0, time.UTC), loc: shanghai,
			wantEarliest: "2025-01-01T00:00:00.000+08:00", wantLast: "2025-01-02T23:59:59.999+08:00", wantSpan: 48*time.Hour - time.Millisecond,
		},
		{
			name: "midnight exactly belongs to the new day", now: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), loc: time.UTC,
			wantEarliest: "2025-02-28T00:00:00.000Z", wantLast: "2025-03-01T23:59:59.999Z", wantSpan: 48*time.Hour - time.Millisecond,
		},
	}
	const layout = "2006-01-02T15:04:05.000Z07:00"
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, l := AllowedRange(tc.now, tc.loc)
			if got := e.Format(layout); got != tc.wantEarliest {
				t.Errorf("earliest = %s, want %s", got, tc.wantEarliest)
			}
			if got := l.Format(layout); got != tc.wantLast {
				t.Errorf("latest = %s, want %s", got, tc.wantLast)
			}
			if got := l.Sub(e); got != tc.wantSpan {
				t.Errorf("span = %v, want %v", got, tc.wantSpan)
			}
		})
	}
}

func ExampleAllowedRange() {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	now := time.Date(2026, 3, 30, 9, 0, 0, 0, berlin) // the day after clocks went forward
	earliest, latest := AllowedRange(now, berlin)
	fmt.Println(earliest)
	fmt.Println(latest)
	fmt.Println(latest.Sub(earliest).Round(time.Second))
	// Output:
	// 2026-03-29 00:00:00 +0100 CET
	// 2026-03-30 23:59:59.999 +0200 CEST
	// 47h0m0s
}

func TestQueryValidation(t *testing.T) {
	now := time.Date(2025, 1, 2, 12, 0, 0, 0, time.UTC)
	ok := Query{Stream: schemas.Stream{CCID: 1, VDN: 25, Dir: schemas.In}, Begin: now.Add(-time.Hour), End: now, Limit: 100}
	tests := []struct {
		name       string
		change     func(*Query)
		wantField  string // "" means valid
		wantReason string // substring
	}{
		{"a query inside the range is valid", func(*Query) {}, "", ""},
		{"ccId 0 is rejected", func(q *Query) { q.CCID = 0 }, "ccId", "1..65535, got 0"},
		{"ccId 65536 is rejected", func(q *Query) { q.CCID = 65536 }, "ccId", "1..65535"},
		{"vdn 5001 is rejected", func(q *Query) { q.VDN = 5001 }, "vdn", "1..5000, got 5001"},
		{"vdn 0 is rejected", func(q *Query) { q.VDN = 0 }, "vdn", "1..5000"},
		{"limit 101 is rejected", func(q *Query) { q.Limit = 101 }, "limit", "1..100, got 101"},
		{"limit 0 is rejected", func(q *Query) { q.Limit = 0 }, "limit", "1..100"},
		{"a negative offset is rejected", func(q *Query) { q.Offset = -1 }, "offset", ">= 0"},
		{"end before begin is rejected", func(q *Query) { q.End = q.Begin.Add(-time.Millisecond) }, "endDate", "before beginDate"},
		{"begin equal to end is valid", func(q *Query) { q.End = q.Begin }, "", ""},
		{"begin at 00:00 of yesterday is valid", func(q *Query) { q.Begin = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }, "", ""},
		{"begin a millisecond before yesterday is rejected", func(q *Query) {
			q.Begin = time.Date(2024, 12, 31, 23, 59, 59, 999e6, time.UTC)
		}, "beginDate", "before the API's earliest 2025-01-01 00:00:00.000 UTC"},
		{"end at 23:59:59.999 today is valid", func(q *Query) { q.End = time.Date(2025, 1, 2, 23, 59, 59, 999e6, time.UTC) }, "", ""},
		{"end at 00:00 tomorrow is rejected", func(q *Query) { q.End = time.Date(2025, 1, 3, 0, 0, 0, 0, time.UTC) }, "endDate", "after the API's latest"},
		{"a zero begin is rejected", func(q *Query) { q.Begin = time.Time{} }, "beginDate", "missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := ok
			tc.change(&q)
			err := q.validate(now, Reach{})
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want *ValidationError, got %v", err)
			}
			if ve.Field != tc.wantField || !strings.Contains(ve.Reason, tc.wantReason) {
				t.Errorf("got %q, want field %s with reason containing %q", err, tc.wantField, tc.wantReason)
			}
			if ClassOf(err) != ClassPermanent {
				t.Errorf("class = %v, want permanent", ClassOf(err))
			}
		})
	}
}

func TestBodyIsTheDocumentedExample(t *testing.T) {
	q := Query{Stream: schemas.Stream{CCID: 1, VDN: 25, Dir: schemas.In}, Limit: 100,
		Begin: time.UnixMilli(1735689600000), End: time.UnixMilli(1735775999000)}
	got, err := q.body(false)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"ccId":1,"vdn":25,"beginDate":1735689600000,"endDate":1735775999000,"isCallIn":"true","limit":100,"offset":0}`
	if string(got) != want {
		t.Errorf("body:\n got %s\nwant %s", got, want)
	}
	q.Dir = schemas.Out
	got, _ = q.body(true)
	const wantStrings = `{"ccId":1,"vdn":25,"beginDate":"1735689600000","endDate":"1735775999000","isCallIn":"false","limit":100,"offset":0}`
	if string(got) != wantStrings {
		t.Errorf("body with string dates:\n got %s\nwant %s", got, wantStrings)
	}
}

func TestReachRangeUnderEachDayBoundary(t *testing.T) {
	shanghai := mustLoad(t, "Asia/Shanghai")     // UTC+8
	saoPaulo := mustLoad(t, "America/Sao_Paulo") // UTC-3
	const layout = "2006-01-02T15:04:05.000Z07:00"
	tests := []struct {
		name                   string
		now                    time.Time
		reach                  Reach
		wantEarliest, wantLast string // in UTC
	}{
		{"the zero Reach is plain UTC", time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC), Reach{},
			"2025-01-01T00:00:00.000Z", "2025-01-02T23:59:59.999Z"},
		{"tenant days east of UTC start before UTC's", time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC), Reach{Loc: shanghai, Boundary: BoundaryTenant},
			"2024-12-31T16:00:00.000Z", "2025-01-02T15:59:59.999Z"},
		{"utc ignores the tenant zone", time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC), Reach{Loc: shanghai, Boundary: BoundaryUTC},
			"2025-01-01T00:00:00.000Z", "2025-01-02T23:59:59.999Z"},
		{"both takes UTC's later start and the tenant's earlier end at 03:00 UTC", time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC), Reach{Loc: shanghai},
			"2025-01-01T00:00:00.000Z", "2025-01-02T15:59:59.999Z"},
		{"both takes the tenant's later start once Shanghai's day has turned", time.Date(2025, 1, 2, 20, 0, 0, 0, time.UTC), Reach{Loc: shanghai},
			"2025-01-01T16:00:00.000Z", "2025-01-02T23:59:59.999Z"},
		{"both west of UTC takes the tenant's start and UTC's end", time.Date(2025, 1, 2, 12, 0, 0, 0, time.UTC), Reach{Loc: saoPaulo, Boundary: BoundaryBoth},
			"2025-01-01T03:00:00.000Z", "2025-01-02T23:59:59.999Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, l := tc.reach.Range(tc.now)
			if got := e.UTC().Format(layout); got != tc.wantEarliest {
				t.Errorf("earliest = %s, want %s", got, tc.wantEarliest)
			}
			if got := l.UTC().Format(layout); got != tc.wantLast {
				t.Errorf("latest = %s, want %s", got, tc.wantLast)
			}
		})
	}
}

// LostAt is exactly the instant the earliest bound passes w, under every mode.
func TestReachLostAtIsWhenTheEarliestBoundPassesTheInstant(t *testing.T) {
	shanghai := mustLoad(t, "Asia/Shanghai")
	berlin := mustLoad(t, "Europe/Berlin")
	for _, reach := range []Reach{{}, {Loc: shanghai}, {Loc: shanghai, Boundary: BoundaryTenant},
		{Loc: shanghai, Boundary: BoundaryUTC}, {Loc: berlin}, {Loc: berlin, Boundary: BoundaryTenant}} {
		for _, w := range []time.Time{
			time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 1, 1, 15, 59, 0, 0, time.UTC),
			time.Date(2025, 1, 1, 16, 0, 0, 0, time.UTC), time.Date(2026, 3, 28, 23, 30, 0, 0, time.UTC),
			time.Date(2026, 10, 24, 22, 30, 0, 0, time.UTC),
		} {
			lost := reach.LostAt(w)
			if e, _ := reach.Range(lost); !e.After(w) {
				t.Errorf("%+v: at LostAt(%v) = %v the earliest %v has not passed it", reach, w, lost, e)
			}
			if e, _ := reach.Range(lost.Add(-time.Millisecond)); e.After(w) {
				t.Errorf("%+v: 1ms before LostAt(%v) = %v the earliest %v had already passed it", reach, w, lost, e)
			}
		}
	}
}
