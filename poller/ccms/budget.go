package ccms

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Budget is the one request budget every stream shares: a token bucket of
// requests per second, and the rule that tells a fault from congestion.
//
// A fault is one answer that pushes back (429, 502, 503, 504, a timeout or a
// broken connection). It delays only the request that got it: the client
// retries that request after its backoff and the server's Retry-After, and
// nothing else slows down. Budget never pauses every request.
//
// Congestion is a large share of recent answers pushing back. Budget keeps
// two samples of attempts: the recent ones, of the last recentSpan, and the
// evidence, which is the recent ones extended to at least the last minSample
// attempts as long as they are younger than maxAge (so a trickle of requests
// is still judged on several answers). After every attempt:
//
//   - the recent attempts are clear (a quarter or less pushed back): there is
//     no congestion, or no longer. The rate doubles, at most once per
//     growEvery, back up to the configured rate;
//   - otherwise, the evidence shows congestion (more than half of at least
//     minCut attempts pushed back): the rate halves, at most once per
//     cutEvery (a burst of failures in flight is one signal), down to the
//     floor, the configured rate / floorShare;
//   - otherwise the rate holds.
//
// So random faults, even one answer in five, never move the rate; an
// upstream that refuses every request takes the rate to the floor within
// seconds, and keeps it there; and once it stops pushing back, recentSpan
// of clean answers lets the rate double back to full within seconds.
// Retries wait on the same bucket as first attempts, so they never add load
// beyond the rate.
type Budget struct {
	mu         sync.Mutex
	max, min   float64 // configured rate, and the floor a cut never goes below
	rate       float64
	tokens     float64
	burst      float64
	last       time.Time // last refill
	seen       samples
	lastChange time.Time // last cut or growth
	cuts       int       // for the metric
}

// The congestion rule's constants (see Budget).
const (
	recentSpan = 2 * time.Second
	minSample  = 10
	maxAge     = 30 * time.Second
	minCut     = 10
	cutEvery   = time.Second
	growEvery  = 500 * time.Millisecond
	floorShare = 64 // the floor is the configured rate / floorShare
)

// NewBudget makes a budget of rate requests/s allowing bursts of burst
// requests (in the service: Config.Rate and Config.MaxInFlight). run makes
// one and hands it to both the CC-CMS client (Limiter, Observe) and the
// poller (metrics).
func NewBudget(rate float64, burst int) *Budget {
	b := &Budget{max: rate, min: rate / floorShare, rate: rate, burst: float64(max(burst, 1))}
	b.tokens = b.burst
	return b
}

// Wait blocks until one request may be sent, or ctx ends.
func (b *Budget) Wait(ctx context.Context) error {
	for {
		b.mu.Lock()
		b.refill(time.Now())
		if b.tokens >= 1 {
			b.tokens--
			b.mu.Unlock()
			return nil
		}
		wait := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
		b.mu.Unlock()
		t := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (b *Budget) refill(now time.Time) {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
}

// Observe notes one request attempt and applies the congestion rule. An
// attempt cancelled by its caller says nothing about the upstream and is
// not counted.
func (b *Budget) Observe(o Outcome) {
	if o.Class == ClassCanceled {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.refill(now) // tokens so far were earned at the old rate
	b.seen.add(now, pushBack(o))
	recent, recentPushed := b.seen.recentCount()
	n, pushed := b.seen.evidenceCount()
	switch {
	case 4*recentPushed <= recent:
		if b.rate < b.max && now.Sub(b.lastChange) >= growEvery {
			b.rate = min(b.max, b.rate*2)
			b.lastChange = now
		}
	case n >= minCut && 2*pushed > n:
		if b.rate > b.min && now.Sub(b.lastChange) >= cutEvery {
			b.rate = max(b.min, b.rate/2)
			b.lastChange = now
			b.cuts++
		}
	}
}

// Rate is the current requests/s.
func (b *Budget) Rate() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rate
}

// Limit is the configured requests/s, which cuts never change.
func (b *Budget) Limit() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.max
}

// SetLimit changes the configured rate (in group mode, the share of the
// group's rate this replica's streams hold). The current rate keeps its
// proportion of it, so a cut in force stays in force.
func (b *Budget) SetLimit(rate float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if rate <= 0 || rate == b.max {
		return
	}
	b.refill(time.Now()) // tokens so far were earned at the old rate
	scale := rate / b.max
	b.max, b.min = rate, rate/floorShare
	b.rate = min(max(b.rate*scale, b.min), b.max)
}

// PushBackShare is the share of the evidence (see Budget) that pushed back,
// 0 when there is none.
func (b *Budget) PushBackShare() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seen.trim(time.Now())
	n, pushed := b.seen.evidenceCount()
	if n == 0 {
		return 0
	}
	return float64(pushed) / float64(n)
}

func (b *Budget) cutCount() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return float64(b.cuts)
}

// pushBack reports whether an outcome says the upstream wants us slower.
func pushBack(o Outcome) bool {
	if o.Class != ClassTransient {
		return false
	}
	switch o.Status {
	case 429, 502, 503, 504, 0: // 0: timeout or network error
		return true
	}
	return false
}

// samples are the attempts Budget judges by, oldest first: when each was
// observed and whether it pushed back. [old:] is the evidence, [recent:] the
// attempts of the last recentSpan; old <= recent.
type samples struct {
	at      []time.Time
	pushed  []bool
	old     int
	recent  int
	nOld    int // pushed back in [old:]
	nRecent int // pushed back in [recent:]
}

func (s *samples) add(now time.Time, pushed bool) {
	s.trim(now)
	s.at = append(s.at, now)
	s.pushed = append(s.pushed, pushed)
	if pushed {
		s.nOld++
		s.nRecent++
	}
}

// trim moves the attempts older than recentSpan out of the recent ones, and
// drops those beyond the last minSample from the evidence, and every one
// older than maxAge.
func (s *samples) trim(now time.Time) {
	for s.recent < len(s.at) && now.Sub(s.at[s.recent]) > recentSpan {
		if s.pushed[s.recent] {
			s.nRecent--
		}
		s.recent++
	}
	for s.old < s.recent && (now.Sub(s.at[s.old]) > maxAge || len(s.at)-s.old > minSample) {
		if s.pushed[s.old] {
			s.nOld--
		}
		s.old++
	}
	if s.old > 64 && s.old > len(s.at)/2 { // reuse the space of the dropped
		s.at = append(s.at[:0], s.at[s.old:]...)
		s.pushed = append(s.pushed[:0], s.pushed[s.old:]...)
		s.recent -= s.old
		s.old = 0
	}
}

// recentCount returns the attempts of the last recentSpan and how many of
// them pushed back.
func (s *samples) recentCount() (n, pushed int) {
	return len(s.at) - s.recent, s.nRecent
}

// evidenceCount returns the attempts of the evidence and how many of them
// pushed back.
func (s *samples) evidenceCount() (n, pushed int) {
	return len(s.at) - s.old, s.nOld
}

// Instrument registers the request metrics on reg and returns the function to
// pass as Deps.Observe: it counts every attempt by class, times it, and
// feeds the budget's congestion rule. The rate itself is the poller's
// callpub_request_budget_per_second.
func (b *Budget) Instrument(reg prometheus.Registerer) (func(Outcome), error) {
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callpub_ccms_requests_total",
		Help: "CC-CMS HTTP attempts by outcome class (ok, transient, transient_limited, auth, blocked, misconfigured, permanent, canceled).",
	}, []string{"class"})
	dur := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "callpub_ccms_request_duration_seconds",
		Help:    "Duration of CC-CMS HTTP attempts.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
	})
	share := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "callpub_ccms_pushback_ratio",
		Help: "Share of recent CC-CMS attempts (those of the last 2s, and at least the last 10 of the last 30s) answered 429, 502, 503, 504 or not at all; above 0.5 the shared request rate is cut.",
	}, b.PushBackShare)
	cuts := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "callpub_ccms_rate_cuts_total",
		Help: "Times the shared CC-CMS request rate was halved because most recent attempts pushed back (congestion).",
	}, b.cutCount)
	for _, c := range []prometheus.Collector{reqs, dur, share, cuts} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return func(o Outcome) {
		reqs.WithLabelValues(o.Class.String()).Inc()
		dur.Observe(o.Duration.Seconds())
		b.Observe(o)
	}, nil
}
