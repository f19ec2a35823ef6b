package ccms_test

import (
	"errors"
	"github.com/callpub/callpub/schemas"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/poller/pollertest"
	"github.com/google/go-cmp/cmp"
)

const (
	simAK = "sim-ak"
	simSK = "sim-sk"
)

// simNow is the simulator's and the client's clock: mid-afternoon, so the
// window below holds a day and a half of traffic.
var simNow = time.Date(2025, 1, 2, 15, 0, 0, 0, time.UTC)

type simFixture struct {
	sim      *ccmssim.Sim
	client   *ccms.Client
	mu       sync.Mutex
	outcomes []ccms.Outcome
}

func (f *simFixture) classes() []ccms.Class {
	f.mu.Lock()
	defer f.mu.Unlock()
	var cs []ccms.Class
	for _, o := range f.outcomes {
		cs = append(cs, o.Class)
	}
	return cs
}

// startSim runs the simulator over real TLS and a client that trusts its
// certificate, both on a manual clock at simNow.
func startSim(t *testing.T, change func(*ccms.Config)) *simFixture {
	t.Helper()
	return startSimWith(t, ccmssim.SignVariant{}, change)
}

// startSimWith is startSim with a simulator that demands one auth-v2 variant.
func startSimWith(t *testing.T, variant ccmssim.SignVariant, change func(*ccms.Config)) *simFixture {
	t.Helper()
	return startSimOptions(t, func(o *ccmssim.Options) { o.Sign = variant }, change)
}

// startSimOptions is startSim with the simulator's options changed by sim.
func startSimOptions(t *testing.T, sim func(*ccmssim.Options), change func(*ccms.Config)) *simFixture {
	t.Helper()
	clock := ccmssim.NewManualClock(simNow)
	opts := ccmssim.Options{AK: simAK, SK: simSK, CCID: 1, VDNs: 3, Seed: 7, Clock: clock,
		Traffic: ccmssim.Traffic{Flat: true, BusyPerHour: 60}}
	sim(&opts)
	s, err := ccmssim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ccmssim.StartServer(s, ccmssim.ServerOptions{TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	cfg := ccms.Config{URL: srv.URL, AK: simAK, SK: simSK, CAFile: srv.CAFile,
		Timeout: 2 * time.Second, MaxAttempts: 3, RetryBaseDelay: time.Millisecond, RetryMaxDelay: 10 * time.Millisecond}
	if change != nil {
		change(&cfg)
	}
	f := &simFixture{sim: s}
	f.client, err = ccms.NewClient(cfg, ccms.Deps{Now: clock.Now, Logger: slog.New(slog.DiscardHandler), Observe: func(o ccms.Outcome) {
		f.mu.Lock()
		f.outcomes = append(f.outcomes, o)
		f.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var simWindow = ccms.Window{Stream: schemas.Stream{CCID: 1, VDN: 1, Dir: schemas.In},
	Start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), End: simNow.Add(-time.Hour)}

// oracleIDs are the ids of the completed calls the simulator returns for w by now.
func oracleIDs(f *simFixture, w ccms.Window) []string {
	var ids []string
	for _, c := range f.sim.Oracle(w.Start, w.End) {
		if c.VDN == w.VDN && c.Inbound == w.Inbound() && !c.VisibleAt.After(simNow) && !c.NeverEnds {
			ids = append(ids, c.CallID)
		}
	}
	slices.Sort(ids)
	return ids
}

func completedIDs(calls []ccms.Call) []string {
	var ids []string
	for _, c := range calls {
		if c.Completed() {
			ids = append(ids, c.CallID)
		}
	}
	slices.Sort(ids)
	return ids
}

func TestSimFullWindowReadMatchesTheOracle(t *testing.T) {
	f := startSim(t, nil)
	rd, err := f.client.ReadWindow(t.Context(), simWindow)
	calls, st := rd.Calls, rd.Stats
	if err != nil {
		t.Fatal(err)
	}
	want := oracleIDs(f, simWindow)
	if len(want) < 200 {
		t.Fatalf("the oracle holds only %d calls; the test needs several pages", len(want))
	}
	if diff := cmp.Diff(want, completedIDs(calls)); diff != "" {
		t.Errorf("calls (-oracle +read):\n%s", diff)
	}
	if st.Pages < 3 || st.Splits != 0 {
		t.Errorf("stats %+v, want several pages and no split", st)
	}
}

func TestSimFaultsAreRetriedOrResolved(t *testing.T) {
	tests := []struct {
		kind        ccmssim.FaultKind
		n           int
		wantClasses []ccms.Class // first attempts; the last page attempts are ok
		wantSplit   bool
	}{
		{kind: ccmssim.FaultServerError, n: 2, wantClasses: []ccms.Class{ccms.ClassTransient, ccms.ClassTransient, ccms.ClassOK}},
		{kind: ccmssim.FaultRateLimit, n: 1, wantClasses: []ccms.Class{ccms.ClassTransient, ccms.ClassOK}},
		{kind: ccmssim.FaultResultError, n: 1, wantClasses: []ccms.Class{ccms.ClassTransientLimited, ccms.ClassOK}},
		{kind: ccmssim.FaultMalformed, n: 1, wantClasses: []ccms.Class{ccms.ClassTransient, ccms.ClassOK}},
		{kind: ccmssim.FaultTruncate, n: 1, wantClasses: []ccms.Class{ccms.ClassTransient, ccms.ClassOK}},
		{kind: ccmssim.FaultTimeout, n: 1, wantClasses: []ccms.Class{ccms.ClassTransient, ccms.ClassOK}},
		{kind: ccmssim.FaultNumbersAsStrings, n: 3, wantClasses: []ccms.Class{ccms.ClassOK}},
		{kind: ccmssim.FaultIgnoreOffset, n: 2, wantClasses: []ccms.Class{ccms.ClassOK}, wantSplit: true},
		{kind: ccmssim.FaultCountDrift, n: 1, wantClasses: []ccms.Class{ccms.ClassOK}, wantSplit: true},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind)+" on the first requests still reads the whole window", func(t *testing.T) {
			f := startSim(t, func(c *ccms.Config) { c.Timeout = 300 * time.Millisecond })
			f.sim.FailNext(tc.kind, tc.n)
			rd, err := f.client.ReadWindow(t.Context(), simWindow)
			calls, st := rd.Calls, rd.Stats
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(oracleIDs(f, simWindow), completedIDs(calls)); diff != "" {
				t.Errorf("calls (-oracle +read):\n%s", diff)
			}
			got := f.classes()
			if len(got) < len(tc.wantClasses) {
				t.Fatalf("outcomes %v", got)
			}
			if diff := cmp.Diff(tc.wantClasses, got[:len(tc.wantClasses)]); diff != "" {
				t.Errorf("first outcomes (-want +got):\n%s", diff)
			}
			if tc.wantSplit != (st.Splits > 0) {
				t.Errorf("stats %+v, want split %v", st, tc.wantSplit)
			}
		})
	}
}

func TestSimRejectsAWrongSecretWithAnAuthError(t *testing.T) {
	f := startSim(t, func(c *ccms.Config) { c.SK = "wrong" })
	_, err := f.client.ReadWindow(t.Context(), simWindow)
	var se *ccms.StatusError
	if !errors.As(err, &se) || se.Code != 401 || ccms.ClassOf(err) != ccms.ClassAuth {
		t.Fatalf("want a 401 auth error, got %v", err)
	}
	if diff := cmp.Diff([]ccms.Class{ccms.ClassAuth}, f.classes()); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

func TestSimAcceptsEverySigningOption(t *testing.T) {
	options := map[string]func(*ccms.Config){
		"host only":                     func(c *ccms.Config) { c.SignHeaders = []string{"host"} },
		"millisecond timestamps":        func(c *ccms.Config) { c.SignTimestamp = "millis" },
		"the no-space content type":     func(c *ccms.Config) { c.ContentType = "application/json;charset=UTF-8" },
		"dates as strings":              func(c *ccms.Config) { c.DatesAsStrings = true },
		"localhost as the host and SNI": func(c *ccms.Config) { c.ServerName = "localhost" },
	}
	for name, change := range options {
		t.Run(name, func(t *testing.T) {
			f := startSim(t, change)
			q := ccms.Query{Stream: schemas.Stream{CCID: 1, VDN: 1, Dir: schemas.Out}, Begin: simNow.Add(-time.Hour), End: simNow, Limit: 100}
			if _, err := f.client.QueryCalls(t.Context(), q); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A server that wants one of the ports' variants (A2, A4) answers 401 to the
// default client, and the matching diagnostic switch makes the same request
// pass: the switches are how an operator resolves such a 401.
func TestSimVariantServersAcceptOnlyTheMatchingSignSwitch(t *testing.T) {
	tests := []struct {
		name    string
		variant ccmssim.SignVariant
		change  func(*ccms.Config)
	}{
		{"an empty query line", ccmssim.SignVariant{EmptyQueryLine: true},
			func(c *ccms.Config) { c.SignEmptyQueryLine = true }},
		{"a blank line before the body", ccmssim.SignVariant{BlankLineBeforeBody: true},
			func(c *ccms.Config) { c.SignBlankLineBeforeBody = true }},
		{"a Base64 signature", ccmssim.SignVariant{Base64: true},
			func(c *ccms.Config) { c.SignEncoding = "base64" }},
		{"all three with milliseconds", ccmssim.SignVariant{EmptyQueryLine: true, BlankLineBeforeBody: true, Base64: true},
			func(c *ccms.Config) {
				c.SignEmptyQueryLine, c.SignBlankLineBeforeBody, c.SignEncoding, c.SignTimestamp = true, true, "base64", "millis"
			}},
	}
	q := ccms.Query{Stream: schemas.Stream{CCID: 1, VDN: 1, Dir: schemas.In}, Begin: simNow.Add(-time.Hour), End: simNow, Limit: 100}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			def := startSimWith(t, tc.variant, nil)
			_, err := def.client.QueryCalls(t.Context(), q)
			var se *ccms.StatusError
			if !errors.As(err, &se) || se.Code != 401 {
				t.Fatalf("default client against a %s server: want 401, got %v", tc.name, err)
			}
			if _, err := startSimWith(t, tc.variant, tc.change).client.QueryCalls(t.Context(), q); err != nil {
				t.Fatalf("matching switch: %v", err)
			}
			if _, err := startSim(t, tc.change).client.QueryCalls(t.Context(), q); !errors.As(err, &se) || se.Code != 401 {
				t.Fatalf("the switch against Huawei's algorithm: want 401, got %v", err)
			}
		})
	}
}

// The client keeps the poller's Source contract: every completed call of the
// window the simulator holds, each once; an ended context fails.
func TestClientKeepsTheSourceContract(t *testing.T) {
	f := startSim(t, nil)
	pollertest.Source(t, f.client, simWindow, oracleIDs(f, simWindow))
}
