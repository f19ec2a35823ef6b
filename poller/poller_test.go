package poller_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/schemas"
)

// simTransport serves the simulator in memory, so the whole poller runs
// inside a synctest bubble: hours of virtual time take seconds.
type simTransport struct{ h http.Handler }

func (s simTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	r = r.Clone(r.Context())
	r.RequestURI = r.URL.RequestURI()
	r.Header.Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	s.h.ServeHTTP(rec, r)
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

// fakePublisher records acknowledged events; fail makes the next n publishes fail.
type fakePublisher struct {
	mu       sync.Mutex
	events   []schemas.Event
	at       []time.Time // when each of events was acknowledged
	control  []schemas.Event
	dlq      []schemas.Event
	fail     int
	dlqFail  int // the next n dead-letter publishes fail
	ctlFail  int // the next n control publishes fail
	sealFail int // the next n control publishes holding a day-sealed record fail
}

func (f *fakePublisher) Publish(ctx context.Context, events ...schemas.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.fail > 0 {
		f.fail--
		return errors.New("broker unavailable")
	}
	f.events = append(f.events, events...)
	for range events {
		f.at = append(f.at, time.Now())
	}
	return nil
}

func (f *fakePublisher) PublishControl(ctx context.Context, events ...schemas.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.ctlFail > 0 {
		f.ctlFail--
		return errors.New("control topic unavailable")
	}
	if f.sealFail > 0 && slices.ContainsFunc(events, func(e schemas.Event) bool { return e.Type == schemas.TypeDaySealed }) {
		f.sealFail--
		return errors.New("control topic unavailable")
	}
	f.control = append(f.control, events...)
	return nil
}

func (f *fakePublisher) PublishDLQ(ctx context.Context, events ...schemas.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.dlqFail > 0 {
		f.dlqFail--
		return errors.New("dead-letter topic unavailable")
	}
	f.dlq = append(f.dlq, events...)
	return nil
}

type env struct {
	sim     *ccmssim.Sim
	store   *dedupe.Store
	pub     *fakePublisher
	p       *poller.Poller
	cfg     poller.Config
	start   time.Time // when the env was built: the oracle covers from its horizon
	workers int       // Work goroutines: the client's MaxInFlight

	reg *prometheus.Registry // the poller's metrics

	mu       sync.Mutex
	outcomes map[ccms.Class]int // HTTP attempts by outcome
}

func baseConfig() poller.Config {
	return poller.Config{
		CCID: 1, VDNs: poller.VDNSet{1, 2, 3, 4, 5, 6, 7, 8}, Directions: poller.Directions{poller.In, poller.Out},
		PollInterval: 30 * time.Second, MaxInterval: 2 * time.Minute, Lookback: 5 * time.Minute,
		Lag: 5 * time.Second, MaxSpan: 2 * time.Hour, WindowRows: 1000, SweepInterval: 10 * time.Minute, SweepLookback: 6 * time.Hour,
		ReconcileDelay: 4 * time.Hour, LastChanceBefore: time.Hour, Heartbeat: time.Minute, StartAt: "horizon",
		RetryBase: time.Second, RetryMax: time.Minute, StepTimeout: time.Minute,
	}
}

// newEnv builds simulator, client, real bbolt store, fake publisher and poller.
func newEnv(t *testing.T, cfg poller.Config, so ccmssim.Options, dir string, change ...func(*ccms.Config)) *env {
	t.Helper()
	so.AK, so.SK, so.CCID = "ak", "sk", cfg.CCID
	if so.VDNs == 0 {
		so.VDNs = cfg.VDNs[len(cfg.VDNs)-1]
	}
	sim, err := ccmssim.New(so)
	if err != nil {
		t.Fatal(err)
	}
	store, err := dedupe.Open(dedupe.Options{Path: filepath.Join(dir, "callpub.db"), LockTimeout: time.Second, CCID: cfg.CCID})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return build(t, cfg, sim, store, change...)
}

// build wires a poller to sim and store. change, when given, edits the
// client's config; the poller then follows the client's zone and reach.
func build(t *testing.T, cfg poller.Config, sim *ccmssim.Sim, store *dedupe.Store, change ...func(*ccms.Config)) *env {
	t.Helper()
	return buildWith(t, cfg, sim, store, nil, change...)
}

// buildWith is build with deps, when set, editing the poller's Deps.
func buildWith(t *testing.T, cfg poller.Config, sim *ccmssim.Sim, store *dedupe.Store, deps func(*poller.Deps), change ...func(*ccms.Config)) *env {
	t.Helper()
	cc := ccms.Config{URL: "http://ccms.test", AK: "ak", SK: "sk",
		Rate: 50, MaxInFlight: 4, PageSize: 100, MaxPages: 20, MinSpan: time.Second}
	for _, f := range change {
		f(&cc)
	}
	budget := ccms.NewBudget(cc.Rate, cc.MaxInFlight)
	e := &env{sim: sim, store: store, cfg: cfg, workers: cc.MaxInFlight, reg: prometheus.NewRegistry()}
	client, err := ccms.NewClient(cc, ccms.Deps{Transport: simTransport{sim}, Limiter: budget,
		Observe: func(o ccms.Outcome) {
			budget.Observe(o)
			e.mu.Lock()
			e.outcomes[o.Class]++
			e.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	e.outcomes = map[ccms.Class]int{}
	enc, err := schemas.NewEncoder(schemas.EncoderOptions{PII: schemas.PIIPlain})
	if err != nil {
		t.Fatal(err)
	}
	e.pub = &fakePublisher{}
	d := poller.Deps{Source: client, Store: store, Publisher: e.pub, Encoder: enc,
		Budget: budget, Reach: client.Reach(),
		Metrics: e.reg, Logger: testLogger(t)}
	if deps != nil {
		deps(&d)
	}
	e.p, err = poller.New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	e.start = time.Now()
	return e
}

// oneWorker runs one Work goroutine (one request in flight).
func oneWorker(c *ccms.Config) { c.MaxInFlight = 1 }

// openStore opens a fresh bbolt store for ccId 1 in a temporary folder and
// closes it when the test ends.
func openStore(t *testing.T) *dedupe.Store {
	t.Helper()
	store, err := dedupe.Open(dedupe.Options{Path: filepath.Join(t.TempDir(), "callpub.db"), LockTimeout: time.Second, CCID: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("CALLPUB_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// runFor runs the poller's workers for d of (virtual) time, then stops them.
func (e *env) runFor(t *testing.T, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, e.workers)
	for range e.workers {
		wg.Go(func() { errs <- e.p.Work(ctx) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Work: %v", err)
		}
	}
}

// check compares the published events with the simulator's oracle: every
// completed call visible before `settled` is published, nothing else is, and
// duplicates (same id) are counted.
func (e *env) check(t *testing.T, settled time.Time) (published, dups int) {
	t.Helper()
	e.pub.mu.Lock()
	defer e.pub.mu.Unlock()
	got := map[string]int{}
	for _, ev := range e.pub.events {
		got[ev.ID]++
		if b, err := ev.MarshalJSON(); err != nil {
			t.Fatal(err)
		} else if err := schemas.Validate(b); err != nil {
			t.Fatalf("event %s invalid: %v", ev.ID, err)
		}
	}
	horizon := poller.Horizon(e.start, ccms.Reach{Loc: e.sim.Location(), Boundary: ccms.BoundaryTenant})
	want := map[string]bool{}
	missing := 0
	owned := map[string]bool{}
	for _, s := range poller.Streams(e.cfg.CCID, e.cfg.VDNs, e.cfg.Directions) {
		owned[s.Key()] = true
	}
	for _, c := range e.sim.Oracle(horizon, e.sim.Now()) {
		dir := poller.Out
		if c.Inbound {
			dir = poller.In
		}
		if !owned[poller.Stream{CCID: e.cfg.CCID, VDN: c.VDN, Dir: dir}.Key()] {
			continue
		}
		id := schemas.EventID(1, c.VDN, c.Inbound, c.CallID)
		want[id] = true
		if c.VisibleAt.Before(settled) && got[id] == 0 {
			missing++
			if missing <= 5 {
				t.Errorf("call %s (VDN %d inbound=%v, filter time %v, visible %v) was never published",
					c.CallID, c.VDN, c.Inbound, c.FilterTime, c.VisibleAt)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d completed calls missing", missing)
	}
	for id, n := range got {
		if !want[id] {
			t.Errorf("published %s, which the oracle does not hold", id)
		}
		if n > 1 {
			dups += n - 1
		}
	}
	return len(got), dups
}

func TestBackfillAndLiveTrafficPublishEveryCompletedCallOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		e := newEnv(t, baseConfig(), ccmssim.Options{Seed: 3, Traffic: ccmssim.Traffic{
			BusyShare: 0.25, ListInProgress: true, LongCallShare: 0.05, IngestDelayMax: 3 * time.Minute,
		}}, t.TempDir())
		e.runFor(t, 3*time.Hour)
		// Anything visible 20 minutes before the end had a sweep (10m) and a fresh step to find it.
		n, dups := e.check(t, start.Add(3*time.Hour-20*time.Minute))
		if n < 500 {
			t.Errorf("only %d calls published; the test traffic is too thin to mean much", n)
		}
		if dups != 0 {
			t.Errorf("%d duplicates without any fault", dups)
		}
		st := e.p.Status(time.Now())
		if st.Failing != 0 {
			t.Errorf("%d streams failing", st.Failing)
		}
	})
}

func TestFaultsLoseNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		e := newEnv(t, baseConfig(), ccmssim.Options{Seed: 5, Traffic: ccmssim.Traffic{BusyShare: 0.25, ListInProgress: true},
			Faults: ccmssim.Faults{ServerError: 0.05, RateLimit: 0.03, Timeout: 0.01, TimeoutDelay: 40 * time.Second,
				Truncate: 0.02, Malformed: 0.02, ResultError: 0.02, NumbersAsStrings: true, IgnoreOffset: true}}, t.TempDir())
		e.pub.fail = 5 // and Kafka refuses the first five batches
		e.runFor(t, 2*time.Hour)
		n, _ := e.check(t, start.Add(2*time.Hour-20*time.Minute))
		if n == 0 {
			t.Fatal("nothing published")
		}
	})
}

// A failed publish commits nothing: the cursor stays where it was and the
// calls are published by a later step.
func TestCursorNeverPassesAFailedWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := baseConfig()
		cfg.VDNs, cfg.Directions = poller.VDNSet{1}, poller.Directions{poller.In}
		e := newEnv(t, cfg, ccmssim.Options{Seed: 9, Traffic: ccmssim.Traffic{BusyShare: 1}}, t.TempDir(), oneWorker)
		e.pub.fail = 1 << 30 // Kafka down
		e.runFor(t, 10*time.Minute)
		st, err := e.store.State("1/1/in")
		if err != nil {
			t.Fatal(err)
		}
		if !st.Cursor.IsZero() {
			t.Fatalf("cursor moved to %v although nothing was published", st.Cursor)
		}
		e.pub.mu.Lock()
		e.pub.fail = 0
		e.pub.mu.Unlock()
		e.runFor(t, 2*time.Hour)
		if st, _ := e.store.State("1/1/in"); st.Cursor.IsZero() {
			t.Fatal("cursor never moved after Kafka came back")
		}
		e.check(t, time.Now().Add(-20*time.Minute))
	})
}

// An outage longer than the API's reach: the gap is recorded with its exact
// span, and everything still reachable is published.
func TestOutageBeyondTheHorizonReportsTheExactGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := baseConfig()
		cfg.VDNs, cfg.Directions = poller.VDNSet{1, 2}, poller.Directions{poller.In}
		store := openStore(t)
		now := time.Now()
		lastSeen := now.Add(-50 * time.Hour) // the service was down for 50 hours
		for _, s := range []string{"1/1/in", "1/2/in"} {
			if err := store.SetCursor(s, lastSeen); err != nil {
				t.Fatal(err)
			}
		}
		sim, err := ccmssim.New(ccmssim.Options{AK: "ak", SK: "sk", CCID: 1, VDNs: 2, Seed: 11})
		if err != nil {
			t.Fatal(err)
		}
		e := build(t, cfg, sim, store)
		e.runFor(t, time.Hour)
		gaps, err := store.Gaps()
		if err != nil {
			t.Fatal(err)
		}
		horizon := poller.Horizon(now, ccms.Reach{})
		if len(gaps) != 2 {
			t.Fatalf("gaps %+v, want one per stream", gaps)
		}
		for _, g := range gaps {
			if !g.Start.Equal(lastSeen) || !g.End.Equal(horizon) {
				t.Errorf("gap %s is %v..%v, want %v..%v", g.Stream, g.Start, g.End, lastSeen, horizon)
			}
		}
		var gapRecords int
		for _, c := range e.pub.control {
			if c.Type == schemas.TypeGap {
				gapRecords++
			}
		}
		if gapRecords != 2 {
			t.Errorf("%d gap records on the control topic, want 2", gapRecords)
		}
		e.check(t, time.Now().Add(-20*time.Minute))
	})
}

// A restart picks up where the store says: nothing is lost and nothing that
// was committed is published again.
func TestRestartResumesFromTheStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := baseConfig()
		dir := t.TempDir()
		so := ccmssim.Options{Seed: 21, Traffic: ccmssim.Traffic{BusyShare: 0.5}}
		e := newEnv(t, cfg, so, dir)
		e.runFor(t, 40*time.Minute)
		first := len(e.pub.events)
		if err := e.store.Close(); err != nil {
			t.Fatal(err)
		}
		store, err := dedupe.Open(dedupe.Options{Path: filepath.Join(dir, "callpub.db"), LockTimeout: time.Second, CCID: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		e2 := build(t, cfg, e.sim, store)
		e2.runFor(t, time.Hour)
		seen := map[string]bool{}
		for _, ev := range e.pub.events {
			seen[ev.ID] = true
		}
		for _, ev := range e2.pub.events {
			if seen[ev.ID] {
				t.Errorf("event %s published again after the restart", ev.ID)
			}
		}
		e2.pub.events = append(e.pub.events, e2.pub.events...)
		e2.check(t, time.Now().Add(-20*time.Minute))
		if first == 0 || len(e2.pub.events) == first {
			t.Errorf("published %d before and %d in total: the test proves nothing", first, len(e2.pub.events))
		}
	})
}

// Across midnight: every day before is reconciled once the delay has passed and
// sealed with the number of its calls, and nothing falls off the horizon.
func TestYesterdayIsReconciledAndSealed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := baseConfig()
		cfg.VDNs, cfg.Directions, cfg.ReconcileDelay = poller.VDNSet{1, 2}, poller.Directions{poller.In}, time.Hour
		e := newEnv(t, cfg, ccmssim.Options{Seed: 4, Traffic: ccmssim.Traffic{BusyShare: 1, ListInProgress: true}}, t.TempDir())
		e.runFor(t, 26*time.Hour) // from 00:00 of day 1 to 02:00 of day 2
		var sealed []string
		final := map[string]int{} // stream/day -> count of the last-chance seal
		e.pub.mu.Lock()
		for _, c := range e.pub.control {
			if c.Type != schemas.TypeDaySealed {
				continue
			}
			var d schemas.DaySealedData
			if err := json.Unmarshal(c.Data, &d); err != nil {
				t.Fatal(err)
			}
			if d.LastChance { // the last-chance read (23:00) seals yesterday once more
				final[c.Subject+" "+d.Day] = d.Published
				continue
			}
			if !d.Complete {
				t.Errorf("%s %s sealed incomplete: %s", c.Subject, d.Day, c.Data)
			}
			sealed = append(sealed, c.Subject+" "+string(c.Data))
		}
		e.pub.mu.Unlock()
		if len(final) != 2 {
			t.Errorf("last-chance seals %v, want one per stream for the backfill's yesterday", final)
		}
		// The backfill's yesterday (reachable at the start) and the day that just ended.
		if len(sealed) != 4 {
			t.Fatalf("day-sealed records %q, want two days per stream", sealed)
		}
		for _, s := range []string{"1/1/in", "1/2/in"} {
			st, err := e.store.State(s)
			if err != nil {
				t.Fatal(err)
			}
			if want := poller.DayKey(poller.Yesterday(time.Now(), time.UTC).Start, time.UTC); st.SealedDay != want {
				t.Errorf("%s sealed day %q, want %q", s, st.SealedDay, want)
			}
		}
		if gaps, _ := e.store.Gaps(); len(gaps) != 0 {
			t.Errorf("gaps %+v after a day without outage", gaps)
		}
		e.check(t, time.Now().Add(-20*time.Minute))
	})
}
