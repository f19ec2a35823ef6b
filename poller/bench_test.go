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

// BenchmarkSteadyStateRequests measures the CC-CMS requests per minute of
// 5,000 VDNs x 2 directions (10,000 streams) with 5% of the VDNs busy, after
// a 30-minute warm-up, over one virtual hour with the production intervals
// and no backfill (START_AT=now), and the freshness that buys: the delay from
// a call's row becoming visible to its event being acknowledged (p50, p99,
// max). It then prices a fixed-interval poller of the same freshness: one
// that polls every stream every I = p99 delay (its worst case is its
// interval), plus the same sweeps and extra pages, and reports the ratio; and
// likewise one of equal median delay (I = 2 x p50). Calls that only a sweep
// can find (a long talk puts their filter time behind the fresh lookback)
// set the p99, so the p99 comparison flatters the fixed poller.
//
// The poller runs in a synctest bubble in a child process (synctest needs a
// *testing.T), so an hour and a half of virtual time costs only the CPU of the
// requests.
func BenchmarkSteadyStateRequests(b *testing.B) {
	var r steadyResult
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSteadyStateBubble$", "-test.count=1", "-test.timeout=15m")
		cmd.Env = append(os.Environ(), steadyEnv+"=1")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			b.Fatalf("steady-state child: %v\n%s", err, out.String())
		}
		found := false
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), steadyMarker); ok {
				if err := json.Unmarshal([]byte(rest), &r); err != nil {
					b.Fatal(err)
				}
				found = true
			}
		}
		if !found {
			b.Fatalf("no result from the child:\n%s", out.String())
		}
	}
	perMin := float64(r.Requests) / r.Minutes
	// The fixed poller reads every stream every p99 seconds with as many pages
	// per fresh read as ours needed, and sweeps like ours.
	pagesPerRead := float64(r.FreshPages) / float64(max(r.FreshReads, 1))
	sweeps := float64(r.SweepPages) / r.Minutes
	fixed := float64(r.Streams)*60/r.P99*pagesPerRead + sweeps
	// The same at equal median: a fixed poller's median delay is half its
	// interval, so I = 2 x p50.
	fixedMedian := float64(r.Streams)*60/(2*r.P50)*pagesPerRead + sweeps
	b.ReportMetric(float64(r.Streams), "streams")
	b.ReportMetric(perMin, "req/min")
	b.ReportMetric(float64(r.Calls), "calls")
	b.ReportMetric(float64(r.Missing), "missing")
	b.ReportMetric(r.P50, "p50_delay_s")
	b.ReportMetric(r.P99, "p99_delay_s")
	b.ReportMetric(r.Max, "max_delay_s")
	b.ReportMetric(fixed, "fixed_req/min")
	b.ReportMetric(perMin/fixed, "req_vs_fixed")
	b.ReportMetric(r.P90, "p90_delay_s")
	b.ReportMetric(fixedMedian, "fixed_p50_req/min")
	b.ReportMetric(perMin/fixedMedian, "req_vs_fixed_p50")
	b.ReportMetric(sweeps, "sweep_req/min")
	b.ReportMetric(r.MaxFreshGap, "max_fresh_gap_s")
	b.ReportMetric(r.P99FreshGap, "p99_stream_max_gap_s")
	b.ReportMetric(r.RealSeconds, "child_real_s")
}

// TestSteadyStateBubble is BenchmarkSteadyStateRequests' child: it runs only
// with CALLPUB_BENCH_STEADY=1 and prints its result as one JSON line.
func TestSteadyStateBubble(t *testing.T) {
	if os.Getenv(steadyEnv) != "1" {
		t.Skip("run by BenchmarkSteadyStateRequests")
	}
	real0 := time.Now()
	var r steadyResult
	synctest.Test(t, func(t *testing.T) { r = steadyState(t, 5000, 30*time.Minute, time.Hour) })
	r.RealSeconds = time.Since(real0).Seconds()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString(steadyMarker + string(b) + "\n")
	if r.Missing > 0 {
		t.Errorf("%d of %d calls visible for 20 minutes were never published", r.Missing, r.Calls)
	}
	if r.Failing > 0 {
		t.Errorf("%d streams failing at the end", r.Failing)
	}
}

func steadyState(t *testing.T, vdns int, warmup, measure time.Duration) steadyResult {
	start := time.Now()
	cfg := baseConfig()
	cfg.VDNs = make(poller.VDNSet, vdns)
	for i := range cfg.VDNs {
		cfg.VDNs[i] = i + 1
	}
	cfg.PollInterval, cfg.MaxInterval, cfg.Lookback, cfg.MaxSpan = 30*time.Second, 5*time.Minute, 15*time.Minute, 48*time.Hour
	cfg.SweepInterval, cfg.SweepLookback, cfg.StartAt = 15*time.Minute, 6*time.Hour, "now"
	const rate, workers = 10000, 8
	cfg.RetryBase, cfg.RetryMax, cfg.StepTimeout = 2*time.Second, 5*time.Minute, 5*time.Minute

	sim, err := ccmssim.New(ccmssim.Options{AK: "ak", SK: "sk", CCID: 1, VDNs: vdns, Seed: 42,
		Traffic: ccmssim.Traffic{BusyShare: 0.05}})
	if err != nil {
		t.Fatal(err)
	}
	store, err := dedupe.Open(dedupe.Options{Path: filepath.Join(t.TempDir(), "callpub.db"), LockTimeout: time.Second, CCID: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	budget := ccms.NewBudget(rate, workers)
	client, err := ccms.NewClient(ccms.Config{URL: "http://ccms.test", AK: "ak", SK: "sk", Rate: rate, MaxInFlight: workers},
		ccms.Deps{Transport: simTransport{sim}, Limiter: budget, Observe: budget.Observe})
	if err != nil {
		t.Fatal(err)
	}
	src := &countingSource{src: client, last: map[string]time.Time{}, gap: map[string]time.Duration{}}
	enc, err := schemas.NewEncoder(schemas.EncoderOptions{PII: schemas.PIIPlain})
	if err != nil {
		t.Fatal(err)
	}
	pub := &clockPublisher{at: map[string]time.Time{}}
	p, err := poller.New(cfg, poller.Deps{Source: src, Store: store, Publisher: pub, Encoder: enc,
		Budget: budget, Metrics: prometheus.NewRegistry(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), warmup+measure)
	defer cancel()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			if err := p.Work(ctx); err != nil {
				t.Errorf("Work: %v", err)
			}
		})
	}
	time.Sleep(warmup) // virtual: the bubble's clock jumps once every worker waits
	req0 := sim.Requests()
	src.begin()
	wg.Wait()
	end := time.Now()
	r := src.result(p.Streams())
	r.Streams, r.Minutes, r.WarmupMinute = p.Streams(), measure.Minutes(), warmup.Minutes()
	r.Requests = sim.Requests() - req0
	r.Failing = p.Status(end).Failing

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
