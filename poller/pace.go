package poller

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Pacing: how often each stream's fresh lane polls.
//
// The operator sets one request budget (CALLPUB_CCMS_RATE). The pacer spends
// paceShare of it, less what the other lanes (sweeps, reconciliations,
// backfill, last-chance reads) have been spending, on fresh polls, and hands
// them out by what is known about each stream: its arrival rate λ (rows per
// second, learned from its reads — recent reads weigh most, so the time of
// day follows), plus a share for each call it has seen in progress (a
// completion is on its way). Stream i is polled every
//
//	I_i = clamp(K / (λ_i + prior)^paceExponent, POLL_INTERVAL, POLL_MAX_INTERVAL)
//
// with K the one number for which the intervals spend the fresh budget.
//
// Why that rule: a call arriving at a stream polled every I waits uniformly
// between 0 and I. With exponent ½ the mean wait over all calls is the least
// a budget buys (the square-root rule); with exponent 0 every stream is
// polled alike, which is what the p99 of a mix of a few busy and many quiet
// streams wants (the quiet streams' calls are the tail, and nothing tells
// when a quiet stream's next call comes). paceExponent sits between: busy
// streams are polled a few times as often as quiet ones, the median falls to
// a fraction of a fixed poller's, and the tail stays close to the fixed
// poller's, the least any pacing reaches on memoryless arrivals (DESIGN.md).
//
// POLL_MAX_INTERVAL is the fallback: when even every stream at it would
// spend more than the budget, every stream polls at it, turns come due faster
// than the budget runs them, and they run late in due order, each stream in
// its turn (callpub_poll_budget_short says so). Then the lanes share the
// budget as planned: while sweeps, reconciliations and backfill have lately
// spent more than the 1 − paceShare left to them, a due fresh turn goes
// before theirs however long they waited (freshFirst; the scheduler asks).
// Without that a sweep, a turn of many pages, would win as often as a fresh
// poll of one and take most of a short budget.
const (
	paceShare    = 0.8 // of the budget's configured rate, for all lanes together
	paceExponent = 0.4 // see above
	// prior: the rate a stream is assumed to have on top of what its reads
	// showed, so a stream that has shown nothing is not polled never.
	prior = 1.0 / 3600
	// pendingRate: each call seen in progress counts as this much arrival
	// rate (its completion is on its way), for at most pendingCap calls.
	pendingRate = 1.0 / 600
	pendingCap  = 3
	// resolveEvery: how often K is solved again.
	resolveEvery = 10 * time.Second
	// spendHalfLife: how fast the measured spend of the lanes forgets.
	spendHalfLife = 5 * time.Minute
)

// pacer sets the fresh intervals (see above). Safe for concurrent use.
type pacer struct {
	min, max time.Duration
	rate     func() float64 // the budget's configured requests/s
	target   time.Duration  // CALLPUB_FRESHNESS_TARGET: a p99 to price, or 0
	log      *slog.Logger

	mu    sync.Mutex
	lam   []float64 // per stream, λ + the in-progress share, rows/s
	k     float64   // seconds × weight; 0: every stream at min
	short bool      // the budget cannot keep every stream within max
	at    time.Time // when K was solved
	// first: the budget is short and the lanes but fresh and last chance
	// overspend their share (see above). Read without pc.mu.
	first atomic.Bool

	// The spend since at, by lane, and its smoothed rate.
	reqs        [numLanes]float64
	freshPolls  float64
	spent       [numLanes]float64 // requests/s
	reqsPerPoll float64           // fresh requests per fresh poll
	// What the last solve found, for /status and metrics.
	last     PaceStatus
	pricedAt time.Time // when the target was last priced (costly: once a minute)
}

// PaceStatus is what the pacer last worked out (in /status as pace).
type PaceStatus struct {
	BudgetRPS      float64 `json:"budget_rps"`       // the configured rate
	FreshRPS       float64 `json:"fresh_rps"`        // what the fresh intervals spend, as planned
	OtherRPS       float64 `json:"other_rps"`        // what the other lanes spent lately
	Short          bool    `json:"budget_short"`     // even POLL_MAX_INTERVAL for all would overspend
	IntervalP50    float64 `json:"interval_p50_s"`   // the streams' intervals
	IntervalMin    float64 `json:"interval_min_s"`   //
	IntervalMax    float64 `json:"interval_max_s"`   //
	ModelP50       float64 `json:"model_p50_s"`      // the delay from a row's write to its poll the intervals predict
	ModelP99       float64 `json:"model_p99_s"`      //
	TargetP99      float64 `json:"target_p99_s"`     // CALLPUB_FRESHNESS_TARGET, 0: none
	TargetNeedsRPS float64 `json:"target_needs_rps"` // the budget that target needs
}

func newPacer(streams int, min, max, target time.Duration, rate func() float64, log *slog.Logger) *pacer {
	pc := &pacer{min: min, max: max, rate: rate, target: target, log: log, lam: make([]float64, streams), reqsPerPoll: 1}
	for i := range pc.lam {
		pc.lam[i] = prior
	}
	return pc
}

// spend records requests made by a turn of lane l.
func (pc *pacer) spend(l lane, requests int) {
	pc.mu.Lock()
	pc.reqs[l] += float64(requests)
	if l == laneFresh {
		pc.freshPolls++
	}
	pc.mu.Unlock()
}

// interval learns stream i's rate (d, and the calls it has in progress) and
// returns its next fresh interval.
func (pc *pacer) interval(i int, d density, pending int, now time.Time) time.Duration {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	lam := prior
	if d.known() && d.secs > 0 {
		lam += d.rows / d.secs
	}
	lam += float64(min(pending, pendingCap)) * pendingRate
	pc.lam[i] = lam
	if pc.at.IsZero() || now.Sub(pc.at) >= resolveEvery {
		pc.solve(now)
	}
	return pc.of(lam)
}

// of is the interval of a stream of rate lam under the current K; callers
// hold pc.mu.
func (pc *pacer) of(lam float64) time.Duration {
	if pc.short {
		return pc.max
	}
	return clampInterval(pc.k/math.Pow(lam, paceExponent), pc.min, pc.max)
}

func clampInterval(secs float64, lo, hi time.Duration) time.Duration {
	switch {
	case secs <= lo.Seconds():
		return lo
	case secs >= hi.Seconds():
		return hi
	}
	return time.Duration(secs * float64(time.Second))
}

// solve measures the lanes' spend since the last solve and finds K; callers
// hold pc.mu.
func (pc *pacer) solve(now time.Time) {
	if !pc.at.IsZero() {
		if dt := now.Sub(pc.at).Seconds(); dt > 0 {
			keep := math.Exp2(-dt / spendHalfLife.Seconds())
			for l := range numLanes {
				pc.spent[l] = keep*pc.spent[l] + (1-keep)*pc.reqs[l]/dt
			}
			if pc.freshPolls > 0 {
				pc.reqsPerPoll = keep*pc.reqsPerPoll + (1-keep)*max(1, pc.reqs[laneFresh]/pc.freshPolls)
			}
		}
	}
	pc.reqs, pc.freshPolls, pc.at = [numLanes]float64{}, 0, now
	budget := pc.rate()
	other := 0.0
	for l := range numLanes {
		if l != laneFresh {
			other += pc.spent[l]
		}
	}
	// Fresh polls keep at least a quarter of the share, whatever the other
	// lanes spend: a long backfill must not stop the streams near now.
	fresh := max(paceShare*budget-other, paceShare*budget/4)
	polls := fresh / pc.reqsPerPoll
	wasShort := pc.short
	pc.k, pc.short = solveK(pc.lam, polls, pc.min, pc.max)
	pc.first.Store(pc.short && other-pc.spent[laneLastChance] > (1-paceShare)*budget)
	switch {
	case pc.short && !wasShort:
		pc.log.Warn("request budget short: every stream polls at CALLPUB_POLL_MAX_INTERVAL and turns run late; raise CALLPUB_CCMS_RATE or CALLPUB_POLL_MAX_INTERVAL",
			"budget_rps", budget, "fresh_rps", fresh, "streams", len(pc.lam), "max_interval", pc.max,
			"affordable_interval", time.Duration(float64(len(pc.lam))*pc.reqsPerPoll/fresh*float64(time.Second)).Round(time.Second))
	case !pc.short && wasShort:
		pc.log.Info("request budget no longer short", "budget_rps", budget, "fresh_rps", fresh)
	}
	pc.last = pc.status(now, budget, other)
}

// freshFirst reports whether a due fresh turn goes before a due sweep,
// reconciliation or backfill turn (see above).
func (pc *pacer) freshFirst() bool { return pc.first.Load() }

// solveK returns the K for which streams of rates lam poll polls times a
// second in all, intervals clamped to [lo, hi]; 0 when every stream at lo
// spends no more; short when every stream at hi spends more.
func solveK(lam []float64, polls float64, lo, hi time.Duration) (k float64, short bool) {
	n := float64(len(lam))
	if n == 0 || n/lo.Seconds() <= polls {
		return 0, false
	}
	if n/hi.Seconds() >= polls {
		return 0, true
	}
	w := make([]float64, len(lam))
	for i, l := range lam {
		w[i] = math.Pow(l, paceExponent)
	}
	spend := func(k float64) float64 {
		var s float64
		for _, wi := range w {
			s += 1 / min(max(k/wi, lo.Seconds()), hi.Seconds())
		}
		return s
	}
	// spend falls as K grows: from n/lo (K small) to n/hi (K large).
	a, b := 1e-9, 1.0
	for spend(b) > polls && b < 1e12 {
		b *= 4
	}
	_, b = bisectLog(a, b, 50, func(k float64) bool { return spend(k) > polls })
	return b, false
}

// bisectLog narrows [a, b], n times at the geometric middle, to where left
// stops holding (left holds at a and not at b), and returns the bounds.
func bisectLog(a, b float64, n int, left func(float64) bool) (float64, float64) {
	for range n {
		if m := math.Sqrt(a * b); left(m) {
			a = m
		} else {
			b = m
		}
	}
	return a, b
}

// status sums up the current K; callers hold pc.mu.
func (pc *pacer) status(now time.Time, budget, other float64) PaceStatus {
	st := PaceStatus{BudgetRPS: budget, OtherRPS: other, Short: pc.short}
	iv := make([]float64, len(pc.lam))
	for i, l := range pc.lam {
		iv[i] = pc.of(l).Seconds()
		st.FreshRPS += pc.reqsPerPoll / iv[i]
	}
	st.ModelP50, st.ModelP99 = modelDelay(pc.lam, iv, 0.5), modelDelay(pc.lam, iv, 0.99)
	slices.Sort(iv)
	if len(iv) > 0 {
		st.IntervalMin, st.IntervalP50, st.IntervalMax = iv[0], iv[len(iv)/2], iv[len(iv)-1]
	}
	if pc.target > 0 {
		st.TargetP99, st.TargetNeedsRPS = pc.target.Seconds(), pc.last.TargetNeedsRPS
		if pc.pricedAt.IsZero() || now.Sub(pc.pricedAt) >= time.Minute {
			st.TargetNeedsRPS, pc.pricedAt = pc.needs(pc.target.Seconds(), other), now
		}
	}
	return st
}

// modelDelay is the q-quantile of the wait from a row's write to the poll
// that finds it, when stream i's rows arrive at rate lam[i] and it is polled
// every iv[i] seconds: the wait is uniform on [0, iv[i]].
func modelDelay(lam, iv []float64, q float64) float64 {
	var total, hi float64
	for i, l := range lam {
		total += l
		hi = max(hi, iv[i])
	}
	if total == 0 {
		return 0
	}
	late := func(d float64) float64 { // share of rows waiting longer than d
		var s float64
		for i, l := range lam {
			if d < iv[i] {
				s += l * (1 - d/iv[i])
			}
		}
		return s / total
	}
	a, b := 0.0, hi
	for range 40 {
		m := (a + b) / 2
		if late(m) > 1-q {
			a = m
		} else {
			b = m
		}
	}
	return b
}

// needs is the budget (requests/s, before paceShare) under which the pacing
// rule predicts a p99 wait of target seconds, the other lanes spending
// other; callers hold pc.mu.
func (pc *pacer) needs(target, other float64) float64 {
	iv := make([]float64, len(pc.lam))
	p99 := func(k float64) float64 {
		for i, l := range pc.lam {
			iv[i] = clampInterval(k/math.Pow(l, paceExponent), pc.min, pc.max).Seconds()
		}
		return modelDelay(pc.lam, iv, 0.99)
	}
	// p99 grows with K; find the largest K that meets target.
	a, b := 1e-9, 1e12
	if p99(a) > target {
		a = 0 // even every stream at POLL_INTERVAL misses it: price that
	} else {
		a, _ = bisectLog(a, b, 60, func(k float64) bool { return p99(k) <= target })
	}
	var polls float64
	for _, l := range pc.lam {
		polls += 1 / clampInterval(a/math.Pow(l, paceExponent), pc.min, pc.max).Seconds()
	}
	return (polls*pc.reqsPerPoll + other) / paceShare
}

// snapshot returns what the last solve found.
func (pc *pacer) snapshot() PaceStatus {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.last
}

// instrument registers the pacer's gauges, read from its last solve.
func (pc *pacer) instrument(reg prometheus.Registerer) error {
	gauge := func(name, help string, f func(PaceStatus) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return f(pc.snapshot()) })
	}
	cs := []prometheus.Collector{
		gauge("callpub_poll_fresh_planned_rps", "CC-CMS requests/s the fresh intervals spend, as planned.",
			func(s PaceStatus) float64 { return s.FreshRPS }),
		gauge("callpub_poll_other_rps", "CC-CMS requests/s sweeps, reconciliations, backfill and last-chance reads spent lately.",
			func(s PaceStatus) float64 { return s.OtherRPS }),
		gauge("callpub_poll_budget_short", "1 when every stream at CALLPUB_POLL_MAX_INTERVAL would spend more than the budget.",
			func(s PaceStatus) float64 { return b2f(s.Short) }),
		gauge("callpub_poll_interval_median_seconds", "The median of the streams' fresh intervals.",
			func(s PaceStatus) float64 { return s.IntervalP50 }),
		gauge("callpub_poll_model_delay_p99_seconds", "The p99 wait from a row's write to the poll that finds it, as the intervals predict.",
			func(s PaceStatus) float64 { return s.ModelP99 }),
		gauge("callpub_poll_budget_needed_rps", "The CALLPUB_CCMS_RATE the pacer predicts for CALLPUB_FRESHNESS_TARGET (0: no target).",
			func(s PaceStatus) float64 { return s.TargetNeedsRPS }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("poller: register pace metrics: %w", err)
		}
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
