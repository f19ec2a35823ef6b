package ccms

import (
	"context"
	"errors"
	"fmt"
	"github.com/callpub/callpub/schemas"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	winStart = time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)
	winEnd   = time.Date(2025, 1, 2, 6, 0, 0, 0, time.UTC)
	testWin  = Window{Stream: schemas.Stream{CCID: 1, VDN: 25, Dir: schemas.In}, Start: winStart, End: winEnd}
)

func ids(calls []Call) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.CallID
	}
	slices.Sort(out)
	return out
}

// fakeIDs are the ids of the good rows the fake holds in [from, to).
func fakeIDs(f *fakeCCMS, from, to time.Time) []string {
	out := []string{}
	for _, c := range f.calls {
		if c.raw == "" && c.begin >= from.UnixMilli() && c.begin < to.UnixMilli() {
			out = append(out, c.id)
		}
	}
	slices.Sort(out)
	return out
}

func TestReadWindow(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(f *fakeCCMS)
		config     func(c *Config) // nil: testConfig as is
		wantPages  int             // 0: don't check
		wantSplits int             // -1: at least one
		wantBad    int             // bad rows in the Read
	}{
		{
			name:      "a window of 250 calls is paged completely in three pages",
			setup:     func(f *fakeCCMS) { f.addCalls("a", 250, winStart, winEnd) },
			wantPages: 3, wantSplits: 0,
		},
		{
			name:      "an empty window is one page",
			setup:     func(f *fakeCCMS) {},
			wantPages: 1, wantSplits: 0,
		},
		{
			name:      "a full last page is never the last: the next page is asked for and comes back empty",
			setup:     func(f *fakeCCMS) { f.addCalls("a", 100, winStart, winEnd) },
			wantPages: 2, wantSplits: 0,
		},
		{
			name:      "a full last page after others is followed by an empty one",
			setup:     func(f *fakeCCMS) { f.addCalls("a", 300, winStart, winEnd) },
			wantPages: 4, wantSplits: 0,
		},
		{
			name:      "a count per page is paged on to the short page",
			setup:     func(f *fakeCCMS) { f.addCalls("a", 250, winStart, winEnd); f.countPerPage = true },
			wantPages: 3, wantSplits: 0,
		},
		{
			name:      "a count per page over exactly full pages is paged on to the empty page",
			setup:     func(f *fakeCCMS) { f.addCalls("a", 200, winStart, winEnd); f.countPerPage = true },
			wantPages: 3, wantSplits: 0,
		},
		{
			name:      "pages capped at 50 rows for a limit of 100 are read on in pages of 50, without a split",
			setup:     func(f *fakeCCMS) { f.addCalls("a", 230, winStart, winEnd); f.pageCap = 50 },
			wantPages: 5, wantSplits: 0,
		},
		{
			name:      "pages capped at 50 over exactly full pages end on the empty page",
			setup:     func(f *fakeCCMS) { f.addCalls("a", 150, winStart, winEnd); f.pageCap = 50 },
			wantPages: 4, wantSplits: 0,
		},
		{
			name:       "a server that stops at 150 rows of a query while count says more is resolved by splitting",
			setup:      func(f *fakeCCMS) { f.addCalls("a", 250, winStart, winEnd); f.queryCap = 150 },
			wantSplits: 1,
		},
		{
			name: "bad rows between good rows count as rows received and cost nothing else",
			setup: func(f *fakeCCMS) {
				f.addCalls("a", 180, winStart, winEnd)
				f.addRaw("null", `null`, winStart.Add(time.Hour))
				f.addRaw("no id", `{"callerNo":"8613912345678","callEnd":1735776000000}`, winStart.Add(2*time.Hour))
				f.addRaw("negative", `{"callId":"n-1","callEnd":-1}`, winStart.Add(5*time.Hour)) // on the second page
			},
			wantPages: 2, wantSplits: 0, wantBad: 3,
		},
		{
			name: "the same null row twice in a window is one bad row",
			setup: func(f *fakeCCMS) {
				f.addCalls("a", 20, winStart, winEnd)
				f.addRaw("null-1", `null`, winStart.Add(time.Hour))
				f.addRaw("null-2", `null`, winStart.Add(2*time.Hour))
			},
			wantPages: 2, wantSplits: 0, wantBad: 1, // a fresh client asks past its first short page
		},
		{
			name:      "a count per page with pages capped at 37 is caught by asking past the first short page, and read whole",
			setup:     func(f *fakeCCMS) { f.addCalls("a", 230, winStart, winEnd); f.countPerPage, f.pageCap = true, 37 },
			wantPages: 7, wantSplits: 0,
		},
		{
			name:      "a count per page with capped pages over exactly full pages ends on the empty page",
			setup:     func(f *fakeCCMS) { f.addCalls("a", 74, winStart, winEnd); f.countPerPage, f.pageCap = true, 37 },
			wantPages: 3, wantSplits: 0,
		},
		{
			name:      "a short first page is asked past once and costs one empty page",
			setup:     func(f *fakeCCMS) { f.addCalls("a", 60, winStart, winEnd) },
			wantPages: 2, wantSplits: 0,
		},
		{
			name:      "numbers as strings page the same way",
			setup:     func(f *fakeCCMS) { f.addCalls("a", 150, winStart, winEnd); f.numberStrings = true },
			wantPages: 2, wantSplits: 0,
		},
		{
			name:       "a server that ignores offset is detected and resolved by splitting",
			setup:      func(f *fakeCCMS) { f.addCalls("a", 250, winStart, winEnd); f.ignoreOffset = true },
			wantSplits: -1,
		},
		{
			name:      "a server that ignores limit and returns the whole window at once is accepted",
			setup:     func(f *fakeCCMS) { f.addCalls("a", 250, winStart, winEnd); f.ignoreLimit = true },
			wantPages: 1, wantSplits: 0,
		},
		{
			name: "a server that ignores limit and offset with a wrong count is split until it agrees",
			setup: func(f *fakeCCMS) {
				f.addCalls("a", 250, winStart, winEnd)
				f.ignoreLimit, f.ignoreOffset = true, true
				f.countDrift = func(n int) int { return map[bool]int{true: 1}[n == 1] }
			},
			wantSplits: -1,
		},
		{
			name:       "a window needing more than MaxPages pages is split",
			setup:      func(f *fakeCCMS) { f.addCalls("a", 500, winStart, winEnd) },
			config:     func(c *Config) { c.MaxPages = 2 },
			wantSplits: -1,
		},
		{
			name: "a count that drifts once is detected and the halves read again",
			setup: func(f *fakeCCMS) {
				f.addCalls("a", 250, winStart, winEnd)
				f.countDrift = func(n int) int { return map[bool]int{true: 3}[n == 2] }
			},
			wantSplits: 1,
		},
		{
			name: "a call arriving between pages shifts rows and is detected, then read",
			setup: func(f *fakeCCMS) {
				f.addCalls("a", 250, winStart, winEnd)
				f.beforeServe = func(f *fakeCCMS, n int) {
					if n == 2 { // before the second page: a new call at the very start of the window
						f.calls = append(f.calls, fakeCall{id: "late-1", begin: winStart.UnixMilli()})
						f.sort()
					}
				}
			},
			wantSplits: 1,
		},
		{
			name:       "small pages work",
			setup:      func(f *fakeCCMS) { f.addCalls("a", 95, winStart, winEnd) },
			config:     func(c *Config) { c.PageSize = 10 },
			wantPages:  10,
			wantSplits: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeCCMS{t: t}
			tc.setup(f)
			f.addCalls("outside", 10, winEnd, winEnd.Add(time.Hour)) // must not be returned
			srv := startTLS(t, f)
			cfg := testConfig(t, srv)
			if tc.config != nil {
				tc.config(&cfg)
			}
			c, _ := newTestClient(t, cfg)
			rd, err := c.ReadWindow(t.Context(), testWin)
			calls, st := rd.Calls, rd.Stats
			if err != nil {
				t.Fatal(err)
			}
			want := fakeIDs(f, winStart, winEnd) // after the read: calls may arrive during it
			if diff := cmp.Diff(want, ids(calls)); diff != "" {
				t.Errorf("call ids (-want +got):\n%s", diff)
			}
			if len(calls) != len(want) {
				t.Errorf("%d calls, want %d", len(calls), len(want))
			}
			if tc.wantPages != 0 && st.Pages != tc.wantPages {
				t.Errorf("pages = %d, want %d", st.Pages, tc.wantPages)
			}
			switch {
			case tc.wantSplits < 0 && st.Splits == 0:
				t.Errorf("no split, want at least one (stats %+v)", st)
			case tc.wantSplits >= 0 && st.Splits != tc.wantSplits:
				t.Errorf("splits = %d, want %d (stats %+v)", st.Splits, tc.wantSplits, st)
			}
			if st.Requests != f.requestCount() || st.Requests < st.Pages {
				t.Errorf("stats %+v, server saw %d requests", st, f.requestCount())
			}
			if len(rd.Bad) != tc.wantBad || len(rd.Suspect) != 0 {
				t.Errorf("%d bad rows (want %d), suspect spans %v (want none)", len(rd.Bad), tc.wantBad, rd.Suspect)
			}
			for _, q := range f.queries {
				if q.BeginDate < winStart.UnixMilli() || q.EndDate > winEnd.UnixMilli()-1 || q.EndDate < q.BeginDate {
					t.Errorf("query [%d, %d] outside the window", q.BeginDate, q.EndDate)
				}
			}
		})
	}
}

func TestReadWindowSendsTheInclusiveEndOfTheHalfOpenWindow(t *testing.T) {
	f := &fakeCCMS{t: t}
	f.calls = []fakeCall{{id: "at-start", begin: winStart.UnixMilli()}, {id: "at-end", begin: winEnd.UnixMilli()}}
	srv := startTLS(t, f)
	c, _ := newTestClient(t, testConfig(t, srv))
	rd, err := c.ReadWindow(t.Context(), testWin)
	calls := rd.Calls
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"at-start"}, ids(calls)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// The second query asks past the first short page a fresh client sees.
	want := wireQuery{CCID: 1, VDN: 25, BeginDate: winStart.UnixMilli(), EndDate: winEnd.UnixMilli() - 1, IsCallIn: "true", Limit: 100}
	past := want
	past.Offset = 1
	if diff := cmp.Diff([]wireQuery{want, past}, f.queries); diff != "" {
		t.Errorf("queries (-want +got):\n%s", diff)
	}
}

// What splitting cannot resolve is not an error that stalls the stream: the
// span is read as far as the server gives it and reported as suspect.
func TestReadWindowReportsWhatSplittingCannotResolveAsSuspect(t *testing.T) {
	second := func(n int) time.Time { return winStart.Add(time.Duration(n) * time.Second) }
	tests := []struct {
		name        string
		setup       func(f *fakeCCMS)
		wantSuspect []Suspect // reasons are checked by wantReason
		wantReason  string
		wantCalls   int
		wantSplits  int // -1: at least one
		wantRereads int
	}{
		{
			name: "a server ignoring offset with more than a page in the minimum span",
			setup: func(f *fakeCCMS) {
				f.addCalls("dense", 150, winStart, winStart.Add(500*time.Millisecond))
				f.ignoreOffset = true
			},
			wantSuspect: []Suspect{{Start: second(0), End: second(1)}},
			wantReason:  "repeats the page at offset 0 (offset ignored?) (3 reads, and the span cannot be split below 1s)",
			wantCalls:   100, wantSplits: -1, wantRereads: 2,
		},
		{
			name: "a count that always says two rows more is suspect after one split, not split down to the minimum span",
			setup: func(f *fakeCCMS) {
				f.addCalls("a", 30, winStart, winStart.Add(4*time.Second))
				f.countDrift = func(int) int { return 2 }
			},
			wantSuspect: []Suspect{{Start: second(0), End: second(4)}},
			wantReason:  "count says",
			wantCalls:   30, wantSplits: 1,
		},
		{
			name: "a count that always says two rows less is suspect after one split",
			setup: func(f *fakeCCMS) {
				f.addCalls("a", 30, winStart, winStart.Add(4*time.Second))
				f.countDrift = func(int) int { return -2 }
			},
			wantSuspect: []Suspect{{Start: second(0), End: second(4)}},
			wantReason:  "count says",
			wantCalls:   30, wantSplits: 1,
		},
		{
			name: "pages capped below the limit while count says even more than there is",
			setup: func(f *fakeCCMS) {
				f.addCalls("a", 120, winStart, winStart.Add(4*time.Second))
				f.pageCap = 50
				f.countDrift = func(int) int { return 7 }
			},
			wantSuspect: []Suspect{{Start: second(0), End: second(4)}},
			wantReason:  "count says",
			wantCalls:   120, wantSplits: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeCCMS{t: t}
			tc.setup(f)
			srv := startTLS(t, f)
			cfg := testConfig(t, srv)
			cfg.MinSpan = time.Second
			c, _ := newTestClient(t, cfg)
			w := testWin
			w.End = second(4)
			rd, err := c.ReadWindow(t.Context(), w)
			if err != nil {
				t.Fatalf("want the suspect span reported, got %v", err)
			}
			got := slices.Clone(rd.Suspect)
			for i := range got {
				if !strings.Contains(got[i].Reason, tc.wantReason) {
					t.Errorf("reason %q does not contain %q", got[i].Reason, tc.wantReason)
				}
				got[i].Reason = ""
			}
			if diff := cmp.Diff(tc.wantSuspect, got); diff != "" {
				t.Errorf("suspect spans (-want +got):\n%s", diff)
			}
			if len(rd.Calls) != tc.wantCalls {
				t.Errorf("%d calls, want what was read: %d", len(rd.Calls), tc.wantCalls)
			}
			st := rd.Stats
			if tc.wantSplits < 0 && st.Splits == 0 || tc.wantSplits >= 0 && st.Splits != tc.wantSplits || st.Rereads != tc.wantRereads {
				t.Errorf("stats %+v, want %d splits and %d rereads", st, tc.wantSplits, tc.wantRereads)
			}
		})
	}
}

func TestReadWindowStopsWaitingToRereadWhenTheContextEnds(t *testing.T) {
	f := &fakeCCMS{t: t}
	f.addCalls("a", 3, winStart, winStart.Add(time.Second))
	f.countDrift = func(int) int { return 2 }
	srv := startTLS(t, f)
	cfg := testConfig(t, srv)
	cfg.MinSpan, cfg.RetryBaseDelay, cfg.RetryMaxDelay = time.Second, time.Hour, time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	attempts := 0
	observe := func(Outcome) { // the first pass is two pages: end once both are in
		if attempts++; attempts == 2 {
			cancel()
		}
	}
	c, err := NewClient(cfg, Deps{Observe: observe, Now: tickingClock()})
	if err != nil {
		t.Fatal(err)
	}
	w := testWin
	w.End = winStart.Add(time.Second)
	_, err = c.ReadWindow(ctx, w)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "waiting to read again (received 3 rows, count says 5)") {
		t.Fatalf("want the wait before the reread to end with the context, got %v", err)
	}
}

// Duplicate callIds inside one response: identical rows are kept once, rows
// that differ are all kept, in the order read.
func TestReadWindowKeepsRowsOfOneCallIDThatDiffer(t *testing.T) {
	srv := startTLS(t, statusHandler(200, nil, `{"resultCode":"0100000","resultDesc":{"data":[`+
		`{"callId":"1","callEnd":0},{"callId":"2","callEnd":1735776000000},{"callId":"1","callEnd":1735776001000},`+
		`{"callId":"2","callEnd":1735776000000},{"callId":"1","callEnd":0}],"count":5}}`))
	c, _ := newTestClient(t, testConfig(t, srv))
	rd, err := c.ReadWindow(t.Context(), testWin)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range rd.Calls {
		got = append(got, fmt.Sprintf("%s@%d", c.CallID, c.CallEnd.UnixMilli()))
	}
	want := []string{"1@-62135596800000", "2@1735776000000", "1@1735776001000"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestReadWindowReturnsPageErrorsWithTheWindow(t *testing.T) {
	srv := startTLS(t, statusHandler(401, nil, ""))
	c, _ := newTestClient(t, testConfig(t, srv))
	rd, err := c.ReadWindow(t.Context(), testWin)
	st := rd.Stats
	if ClassOf(err) != ClassAuth || !strings.Contains(err.Error(), "read window 1/25/in") {
		t.Errorf("got %v", err)
	}
	if st.Requests != 1 || st.Pages != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestReadWindowSplitsWhenTheBodyIsTooLarge(t *testing.T) {
	f := &fakeCCMS{t: t}
	f.addCalls("a", 60, winStart, winEnd)
	f.ignoreLimit = true
	srv := startTLS(t, f)
	cfg := testConfig(t, srv)
	cfg.MaxBodyBytes = 4096 // about 30 rows
	cfg.PageSize = 100
	c, _ := newTestClient(t, cfg)
	rd, err := c.ReadWindow(t.Context(), testWin)
	calls, st := rd.Calls, rd.Stats
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 60 || st.Splits == 0 {
		t.Errorf("%d calls, stats %+v", len(calls), st)
	}
}

func TestReadWindowRejectsAnEmptyWindow(t *testing.T) {
	c, err := NewClient(Config{URL: "https://127.0.0.1:1", AK: "ak", SK: "sk"}, Deps{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	w := Window{Stream: schemas.Stream{CCID: 1, VDN: 1, Dir: schemas.Out}, Start: winStart, End: winStart}
	if _, err := c.ReadWindow(t.Context(), w); err == nil || !strings.Contains(err.Error(), "window is empty") {
		t.Errorf("got %v, want %q", err, "window is empty")
	}
}

// The read settings are checked once, by NewClient, not by every ReadWindow.
func TestNewClientRejectsBadReadSettings(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		field  string
		want   string
	}{
		{"a negative rate", func(c *Config) { c.Rate = -1 }, "Rate", "must be positive requests/s, got -1"},
		{"no request in flight", func(c *Config) { c.MaxInFlight = -1 }, "MaxInFlight", "-1 is outside 1..256"},
		{"more than 256 requests in flight", func(c *Config) { c.MaxInFlight = 257 }, "MaxInFlight", "257 is outside 1..256"},
		{"a page size over 100", func(c *Config) { c.PageSize = 101 }, "PageSize", "101 is outside 1..100"},
		{"a negative page size", func(c *Config) { c.PageSize = -1 }, "PageSize", "-1 is outside 1..100"},
		{"a negative max pages", func(c *Config) { c.MaxPages = -1 }, "MaxPages", "must be at least 1, got -1"},
		{"a min span under a millisecond", func(c *Config) { c.MinSpan = time.Microsecond }, "MinSpan", "1µs is below 1ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name+" is rejected", func(t *testing.T) {
			cfg := Config{URL: "https://127.0.0.1:1", AK: "ak", SK: "sk"}
			tc.change(&cfg)
			_, err := NewClient(cfg, Deps{})
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field || ce.Err.Error() != tc.want {
				t.Errorf("got %v, want a ConfigError %s: %s", err, tc.field, tc.want)
			}
		})
	}
}

func TestReadWindowWithMaxRows(t *testing.T) {
	tests := []struct {
		name        string
		calls       int
		maxRows     int
		wantTooMany int
		wantPages   int
	}{
		{name: "a window holding more than MaxRows rows is reported after one page and not read", calls: 450, maxRows: 300, wantTooMany: 450, wantPages: 1},
		{name: "a window holding MaxRows rows is read whole", calls: 300, maxRows: 300, wantPages: 4},
		{name: "a window under MaxRows is read whole", calls: 120, maxRows: 300, wantPages: 2},
		{name: "no MaxRows reads any window whole", calls: 450, wantPages: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeCCMS{t: t}
			f.addCalls("a", tc.calls, winStart, winEnd)
			c, _ := newTestClient(t, testConfig(t, startTLS(t, f)))
			w := testWin
			w.MaxRows = tc.maxRows
			rd, err := c.ReadWindow(t.Context(), w)
			if err != nil {
				t.Fatal(err)
			}
			if rd.TooMany != tc.wantTooMany || rd.Stats.Pages != tc.wantPages {
				t.Errorf("TooMany = %d, pages = %d; want %d, %d", rd.TooMany, rd.Stats.Pages, tc.wantTooMany, tc.wantPages)
			}
			wantCalls := tc.calls
			if tc.wantTooMany > 0 {
				wantCalls = 0
			}
			if len(rd.Calls) != wantCalls {
				t.Errorf("%d calls, want %d", len(rd.Calls), wantCalls)
			}
		})
	}
}

// A window of exactly the cap's size read first looks like any short
// window; the truncated windows after it are caught all the same.
func TestCappedPagesCountedPerPageAreCaughtAfterATrueWindowOfTheCapsSize(t *testing.T) {
	f := &fakeCCMS{t: t}
	f.addCalls("first", 37, winStart, winStart.Add(time.Hour)) // exactly the cap, truthfully
	f.addCalls("rest", 200, winStart.Add(time.Hour), winEnd)
	f.countPerPage, f.pageCap = true, 37
	c, _ := newTestClient(t, testConfig(t, startTLS(t, f)))
	first := testWin
	first.End = winStart.Add(time.Hour)
	if rd, err := c.ReadWindow(t.Context(), first); err != nil || len(rd.Calls) != 37 {
		t.Fatalf("the first hour: %d calls, %v; want 37", len(rd.Calls), err)
	}
	rest := testWin
	rest.Start = winStart.Add(time.Hour)
	rd, err := c.ReadWindow(t.Context(), rest)
	if err != nil || len(rd.Calls) != 200 {
		t.Fatalf("the rest: %d calls, %v; want all 200", len(rd.Calls), err)
	}
}

// A row written into a window between its short first page and the probe
// past it makes the count grow: that is a faithful server near now, not one
// that caps its pages, and later windows are read in pages of the full limit.
func TestARowWrittenDuringTheProbeTeachesNoPageCap(t *testing.T) {
	f := &fakeCCMS{t: t}
	f.addCalls("first", 12, winStart, winStart.Add(time.Hour))
	f.addCalls("later", 150, winStart.Add(2*time.Hour), winEnd)
	f.beforeServe = func(f *fakeCCMS, n int) {
		if n == 2 { // the probe: a call ends meanwhile, the last of the hour
			f.calls = append(f.calls, fakeCall{id: "live", begin: winStart.Add(time.Hour - time.Second).UnixMilli()})
			f.sort()
		}
	}
	c, _ := newTestClient(t, testConfig(t, startTLS(t, f)))
	first := testWin
	first.End = winStart.Add(time.Hour)
	if rd, err := c.ReadWindow(t.Context(), first); err != nil || len(rd.Calls) != 13 {
		t.Fatalf("the first hour: %d calls, %v; want 13 (the live one too)", len(rd.Calls), err)
	}
	before := f.requestCount()
	later := testWin
	later.Start = winStart.Add(2 * time.Hour)
	rd, err := c.ReadWindow(t.Context(), later)
	if err != nil || len(rd.Calls) != 150 {
		t.Fatalf("later: %d calls, %v; want 150", len(rd.Calls), err)
	}
	if n := f.requestCount() - before; n != 2 {
		f.mu.Lock()
		t.Errorf("150 rows took %d requests, want 2 pages of the full limit: %+v", n, f.queries[before:])
		f.mu.Unlock()
	}
}
