package poller_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// steadyEnv names the variable that turns TestSteadyStateBubble on: the
// benchmark runs it in a child process, because a synctest bubble needs a
// *testing.T.
const steadyEnv = "CALLPUB_BENCH_STEADY"

// steadyMarker prefixes the child's result line.
const steadyMarker = "steady-state-result: "

// steadyResult is what one virtual hour of steady state measured.
type steadyResult struct {
	Poller       string  `json:"poller"`
	Interval     float64 `json:"interval_s"` // the fixed pollers' interval, 0 for callpub
	Streams      int     `json:"streams"`
	Minutes      float64 `json:"minutes"`
	Requests     int64   `json:"requests"`
	FreshReads   int64   `json:"fresh_reads"`
	FreshPages   int64   `json:"fresh_pages"`
	SweepReads   int64   `json:"sweep_reads"`
	SweepPages   int64   `json:"sweep_pages"`
	Calls        int     `json:"calls"`   // calls that became visible in the measured hour (less the last 20 minutes)
	Missing      int     `json:"missing"` // of those, never published by the end
	P50          float64 `json:"p50"`     // seconds from visible to published
	P90          float64 `json:"p90"`
	P99          float64 `json:"p99"`
	Max          float64 `json:"max"`
	MaxFreshGap  float64 `json:"max_fresh_gap"` // seconds: longest time any stream went without a fresh read
	P99FreshGap  float64 `json:"p99_fresh_gap"` // the 99th percentile of the streams' longest gaps
	Failing      int     `json:"failing"`
	RealSeconds  float64 `json:"real_seconds"`
	WarmupMinute float64 `json:"warmup_minutes"`
}

// BenchmarkSteadyStateRequests measures the steady state of 5,000 VDNs x 2
// directions (10,000 streams) with 5% of the VDNs busy, after a 30-minute
// warm-up, over one virtual hour, no backfill (START_AT=now): the CC-CMS
// requests per minute and the freshness they buy, the delay from a call's
// row becoming visible to its event being acknowledged (p50, p90, p99, max).
//
// Three pollers run on the same traffic, one after the other, and print side
// by side:
//
//   - callpub with a request budget of steadyRate requests/s, which its
//     pacer spends (pace.go);
//   - fixed: callpub's windows (wide, sweeps folded in) with one fixed interval
//     for every stream, chosen to make as many fresh polls as callpub did;
//   - naive: a fixed-interval poller as one is usually built, reading the
//     last 15 minutes of every stream every interval and sweeping 6 hours every
//     15 minutes, its interval chosen to spend as many requests as callpub.
//
// Each poller runs in a synctest bubble in a child process (synctest needs a
// *testing.T), so an hour and a half of virtual time costs only the CPU of the
// requests (a few minutes per poller).
func BenchmarkSteadyStateRequests(b *testing.B) {
	var rs []steadyResult
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSteadyStateBubble$", "-test.count=1", "-test.timeout=45m")
		cmd.Env = append(os.Environ(), steadyEnv+"=1")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			b.Fatalf("steady-state child: %v\n%s", err, out.String())
		}
		rs = rs[:0]
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), steadyMarker); ok {
				var r steadyResult
				if err := json.Unmarshal([]byte(rest), &r); err != nil {
					b.Fatal(err)
				}
				rs = append(rs, r)
			}
		}
		if len(rs) != 3 {
			b.Fatalf("%d results from the child, want 3:\n%s", len(rs), out.String())
		}
	}
	b.Logf("%-8s %9s %9s %6s %7s %7s %7s %7s %8s %9s", "poller", "interval", "req/min", "calls", "missing", "p50_s", "p90_s", "p99_s", "max_s", "sweep/min")
	for _, r := range rs {
		b.Logf("%-8s %9.0f %9.0f %6d %7d %7.1f %7.1f %7.1f %8.1f %9.0f", r.Poller, r.Interval, float64(r.Requests)/r.Minutes,
			r.Calls, r.Missing, r.P50, r.P90, r.P99, r.Max, float64(r.SweepPages)/r.Minutes)
	}
	c, f, n := rs[0], rs[1], rs[2]
	b.ReportMetric(float64(c.Streams), "streams")
	b.ReportMetric(float64(c.Requests)/c.Minutes, "req/min")
	b.ReportMetric(float64(c.Calls), "calls")
	b.ReportMetric(float64(c.Missing+f.Missing+n.Missing), "missing")
	b.ReportMetric(c.P50, "p50_delay_s")
	b.ReportMetric(c.P90, "p90_delay_s")
	b.ReportMetric(c.P99, "p99_delay_s")
	b.ReportMetric(c.Max, "max_delay_s")
	b.ReportMetric(float64(f.Requests)/f.Minutes, "fixed_req/min")
	b.ReportMetric(c.P50/f.P50, "p50_vs_fixed")
	b.ReportMetric(c.P99/f.P99, "p99_vs_fixed")
	b.ReportMetric(float64(n.Requests)/n.Minutes, "naive_req/min")
	b.ReportMetric(c.P50/n.P50, "p50_vs_naive")
	b.ReportMetric(c.P99/n.P99, "p99_vs_naive")
	b.ReportMetric(c.MaxFreshGap, "max_fresh_gap_s")
}

// steadyRate is callpub's request budget in the steady-state benchmark,
// requests/s: binding, so the pacer decides where it goes.
const steadyRate = 80

// TestSteadyStateBubble is BenchmarkSteadyStateRequests' child: it runs only
// with CALLPUB_BENCH_STEADY=1 and prints each poller's result as one JSON line.
func TestSteadyStateBubble(t *testing.T) {
	if os.Getenv(steadyEnv) != "1" {
		t.Skip("run by BenchmarkSteadyStateRequests")
	}
	const vdns, warmup, measure = 5000, 30 * time.Minute, time.Hour
	c := runSteady(t, steadyPoller{name: "callpub", rate: steadyRate}, vdns, warmup, measure)
	// The fixed poller makes as many fresh polls as callpub did.
	iv := time.Duration(float64(c.Streams) * c.Minutes / float64(c.FreshReads) * float64(time.Minute))
	runSteady(t, steadyPoller{name: "fixed", rate: 10000, interval: iv}, vdns, warmup, measure)
	// The naive poller spends as many requests (see steadyState).
	runSteady(t, steadyPoller{name: "naive", rate: 10000, naive: true, requestsPerMin: float64(c.Requests) / c.Minutes},
		vdns, warmup, measure)
}

// steadyPoller is one poller of the benchmark.
type steadyPoller struct {
	name     string
	rate     float64       // request budget, requests/s
	interval time.Duration // fixed interval; 0: callpub's pacing
	naive    bool          // the naive fixed-interval poller instead of callpub
	// requestsPerMin: the naive poller's interval is set to spend this many.
	requestsPerMin float64
}

// runSteady runs sp in its own bubble, prints its result line and returns it.
func runSteady(t *testing.T, sp steadyPoller, vdns int, warmup, measure time.Duration) steadyResult {
	real0 := time.Now()
	var r steadyResult
	synctest.Test(t, func(t *testing.T) { r = steadyState(t, sp, vdns, warmup, measure) })
	r.RealSeconds = time.Since(real0).Seconds()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString(steadyMarker + string(b) + "\n")
	if r.Missing > 0 {
		t.Errorf("%s: %d of %d calls visible for 20 minutes were never published", sp.name, r.Missing, r.Calls)
	}
	if r.Failing > 0 {
		t.Errorf("%s: %d streams failing at the end", sp.name, r.Failing)
	}
	return r
}

func steadyState(t *testing.T, sp steadyPoller, vdns int, warmup, measure time.Duration) steadyResult {
	start := time.Now()
	cfg := baseConfig()
	cfg.VDNs = make(poller.VDNSet, vdns)
	for i := range cfg.VDNs {
		cfg.VDNs[i] = i + 1
	}
	cfg.PollInterval, cfg.MaxInterval, cfg.Lookback, cfg.MaxSpan = 30*time.Second, 5*time.Minute, 15*time.Minute, 48*time.Hour
	if sp.interval > 0 {
		cfg.PollInterval, cfg.MaxInterval = sp.interval, sp.interval
	}
	cfg.SweepInterval, cfg.SweepLookback, cfg.StartAt = 15*time.Minute, 6*time.Hour, "now"
	const workers = 8
	cfg.RetryBase, cfg.RetryMax, cfg.StepTimeout = 2*time.Second, 5*time.Minute, 5*time.Minute

	sim, err := ccmssim.New(ccmssim.Options{AK: "ak", SK: "sk", CCID: 1, VDNs: vdns, Seed: 42,
		Traffic: ccmssim.Traffic{BusyShare: 0.05}})
	if err != nil {
		t.Fatal(err)
	}
	budget := ccms.NewBudget(sp.rate, workers)
	client, err := ccms.NewClient(ccms.Config{URL: "http://ccms.test", AK: "ak", SK: "sk", Rate: sp.rate, MaxInFlight: workers},
		ccms.Deps{Transport: simTransport{sim}, Limiter: budget, Observe: budget.Observe})
	if err != nil {
		t.Fatal(err)
	}
	src := &countingSource{src: client, last: map[string]time.Time{}, gap: map[string]time.Duration{}}
	pub := &clockPublisher{at: map[string]time.Time{}}

	ctx, cancel := context.WithTimeout(t.Context(), warmup+measure)
	defer cancel()
	var wg sync.WaitGroup
	var failing func() int
	var calibrate func() time.Duration
	if sp.naive {
		streams := poller.Streams(1, cfg.VDNs, cfg.Directions)
		np := &naivePoller{}
		np.interval.Store(int64(5 * time.Minute))
		for i, s := range streams {
			wg.Go(func() { np.poll(ctx, src, pub, s, time.Duration(i)*5*time.Minute/time.Duration(len(streams))) })
		}
		calibrate = func() time.Duration { return np.calibrate(len(streams), sp.requestsPerMin) }
		failing = func() int { return 0 }
	} else {
		p := newSteadyPoller(t, cfg, src, pub, budget)
		for range workers {
			wg.Go(func() {
				if err := p.Work(ctx); err != nil {
					t.Errorf("Work: %v", err)
				}
			})
		}
		failing = func() int { return p.Status(time.Now()).Failing }
	}
	if calibrate != nil {
		// The naive poller's sweeps cost what they cost: measure a whole
		// cycle of them at the end of the warm-up and set its interval to
		// spend the rest on fresh reads.
		time.Sleep(warmup - 15*time.Minute) // virtual
		calibrate()
		time.Sleep(15 * time.Minute)
		sp.interval = calibrate()
	} else {
		time.Sleep(warmup) // virtual: the bubble's clock jumps once every worker waits
	}
	req0 := sim.Requests()
	src.begin()
	wg.Wait()
	end := time.Now()
	streams := len(cfg.VDNs) * len(cfg.Directions)
	r := src.result(streams)
	r.Poller, r.Interval = sp.name, sp.interval.Seconds()
	r.Streams, r.Minutes, r.WarmupMinute = streams, measure.Minutes(), warmup.Minutes()
	r.Requests = sim.Requests() - req0
	r.Failing = failing()

	// Freshness: every call whose completed row became visible in the
	// measured hour, except the last 20 minutes (a sweep's interval and more,
	// so each had its full chance), and when its event was acknowledged.
	from, to := start.Add(warmup), end.Add(-20*time.Minute)
	var delays []float64
	for _, c := range sim.Oracle(start.Add(-6*time.Hour), end) {
		if c.VisibleAt.Before(from) || !c.VisibleAt.Before(to) {
			continue
		}
		r.Calls++
		at, ok := pub.at[schemas.EventID(1, c.VDN, c.Inbound, c.CallID)]
		if !ok {
			r.Missing++
			continue
		}
		delays = append(delays, at.Sub(c.VisibleAt).Seconds())
	}
	slices.Sort(delays)
	r.P50, r.P90, r.P99, r.Max = quantile(delays, 0.5), quantile(delays, 0.9), quantile(delays, 0.99), quantile(delays, 1)
	return r
}

func newSteadyPoller(t *testing.T, cfg poller.Config, src poller.Source, pub poller.Publisher, budget *ccms.Budget) *poller.Poller {
	store, err := dedupe.Open(dedupe.Options{Path: filepath.Join(t.TempDir(), "callpub.db"), LockTimeout: time.Second, CCID: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	enc, err := schemas.NewEncoder(schemas.EncoderOptions{PII: schemas.PIIPlain})
	if err != nil {
		t.Fatal(err)
	}
	p, err := poller.New(cfg, poller.Deps{Source: src, Store: store, Publisher: pub, Encoder: enc,
		Budget: budget, Metrics: prometheus.NewRegistry(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// naivePoller is the naive fixed-interval poller: every interval each
// stream reads the last 15 minutes up to now − 5 s, every 15 minutes the last
// 6 hours instead, and "publishes" each completed call the first time it
// sees it. Failed reads are tried again at the next poll.
type naivePoller struct {
	interval                        atomic.Int64 // nanoseconds
	sweepReqs, freshReqs, freshPoll atomic.Int64
	since                           time.Time
	set                             time.Duration
}

// calibrate, called twice 15 minutes apart, sets and returns the interval
// that spends requestsPerMin with the sweeps measured in between.
func (np *naivePoller) calibrate(streams int, requestsPerMin float64) time.Duration {
	now := time.Now()
	if np.since.IsZero() {
		np.since = now
		np.sweepReqs.Store(0)
		np.freshReqs.Store(0)
		np.freshPoll.Store(0)
		return 0
	}
	mins := now.Sub(np.since).Minutes()
	sweeps := float64(np.sweepReqs.Load()) / mins
	perPoll := max(1, float64(np.freshReqs.Load())/float64(max(np.freshPoll.Load(), 1)))
	fresh := max(requestsPerMin-sweeps, float64(streams)/15)
	np.set = time.Duration(float64(streams) * perPoll / fresh * float64(time.Minute))
	np.interval.Store(int64(np.set))
	return np.set
}

func (np *naivePoller) poll(ctx context.Context, src poller.Source, pub *clockPublisher, s poller.Stream, phase time.Duration) {
	const lag, lookback, sweepEvery, sweepLookback = 5 * time.Second, 15 * time.Minute, 15 * time.Minute, 6 * time.Hour
	var lastSweep time.Time
	timer := time.NewTimer(phase)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now := time.Now()
		back := lookback
		sweep := now.Sub(lastSweep) >= sweepEvery
		if sweep {
			back, lastSweep = sweepLookback, now
		}
		r, err := src.ReadWindow(ctx, ccms.Window{Stream: s, Start: now.Add(-back), End: now.Add(-lag)})
		if sweep {
			np.sweepReqs.Add(int64(r.Stats.Requests))
		} else {
			np.freshReqs.Add(int64(r.Stats.Requests))
			np.freshPoll.Add(1)
		}
		if err == nil {
			var events []schemas.Event
			for _, c := range r.Calls {
				if c.Completed() {
					events = append(events, schemas.Event{ID: schemas.EventID(1, s.VDN, s.Dir.Inbound(), c.CallID)})
				}
			}
			_ = pub.Publish(ctx, events...)
		}
		timer.Reset(time.Duration(np.interval.Load()))
	}
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	return sorted[max(0, int(math.Ceil(q*float64(len(sorted))))-1)]
}

// clockPublisher records when (virtual time) each event was first acknowledged.
type clockPublisher struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (c *clockPublisher) Publish(ctx context.Context, events ...schemas.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range events {
		if _, ok := c.at[e.ID]; !ok {
			c.at[e.ID] = now
		}
	}
	return nil
}

func (c *clockPublisher) PublishControl(ctx context.Context, _ ...schemas.Event) error {
	return ctx.Err()
}

func (c *clockPublisher) PublishDLQ(ctx context.Context, _ ...schemas.Event) error { return ctx.Err() }

// countingSource counts reads and pages once begin was called, telling
// sweeps (windows of hours) from fresh reads (minutes), and tracks each
// stream's longest wait between fresh reads.
type countingSource struct {
	src poller.Source

	mu                                             sync.Mutex
	on                                             bool
	since                                          time.Time
	freshReads, freshPages, sweepReads, sweepPages int64
	last                                           map[string]time.Time
	gap                                            map[string]time.Duration
}

func (c *countingSource) ReadWindow(ctx context.Context, w ccms.Window) (ccms.Read, error) {
	r, err := c.src.ReadWindow(ctx, w)
	st := r.Stats
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		return r, err
	}
	// A fresh read ends at now − lag (5 s; virtual time stands still during
	// a read), a sweep at the cursor, before that. A fresh read that folded
	// the sweep in is a fresh read.
	if now.Sub(w.End) > 6*time.Second {
		c.sweepReads++
		c.sweepPages += int64(st.Pages)
		return r, err
	}
	c.freshReads++
	c.freshPages += int64(st.Pages)
	key := w.Key()
	last, ok := c.last[key]
	if !ok {
		last = c.since
	}
	c.gap[key] = max(c.gap[key], now.Sub(last))
	c.last[key] = now
	return r, err
}

func (c *countingSource) begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on, c.since = true, time.Now()
}

// result sums up since begin; a stream never read counts as waiting all along.
func (c *countingSource) result(streams int) steadyResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := steadyResult{FreshReads: c.freshReads, FreshPages: c.freshPages, SweepReads: c.sweepReads, SweepPages: c.sweepPages}
	now := time.Now()
	var gaps []float64
	for key, g := range c.gap {
		gaps = append(gaps, max(g, now.Sub(c.last[key])).Seconds())
	}
	for len(gaps) < streams {
		gaps = append(gaps, now.Sub(c.since).Seconds())
	}
	slices.Sort(gaps)
	r.MaxFreshGap, r.P99FreshGap = quantile(gaps, 1), quantile(gaps, 0.99)
	return r
}
