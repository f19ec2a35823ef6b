package ccms

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Budget is the one request budget every stream shares: a token bucket of
// requests per second whose rate is cut multiplicatively when CC-CMS or its
// gateway pushes back (429, 502, 503, 504, timeouts) and recovered additively,
// slowly, as requests succeed (AIMD). A Retry-After pauses every request until
// it has passed. It implements Limiter and receives Outcome reports.
type Budget struct {
	mu         sync.Mutex
	max, min   float64 // configured rate, and the floor a cut never goes below
	rate       float64
	tokens     float64
	burst      float64
	last       time.Time // last refill
	pauseUntil time.Time
	lastCut    time.Time
}

// NewBudget makes a budget of rate requests/s allowing bursts of burst
// requests (in the service: Config.Rate and Config.MaxInFlight). run makes
// one and hands it to both the CC-CMS client (Limiter, Observe) and the
// poller (metrics).
func NewBudget(rate float64, burst int) *Budget {
	b := &Budget{max: rate, min: rate / 64, rate: rate, burst: float64(max(burst, 1))}
	b.tokens = b.burst
	return b
}

// Wait blocks until one request may be sent, or ctx ends.
func (b *Budget) Wait(ctx context.Context) error {
	for {
		b.mu.Lock()
		now := time.Now()
		b.refill(now)
		var wait time.Duration
		switch {
		case now.Before(b.pauseUntil):
			wait = b.pauseUntil.Sub(now)
		case b.tokens >= 1:
			b.tokens--
			b.mu.Unlock()
			return nil
		default:
			wait = time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
		}
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

// Observe adjusts the rate after every request attempt.
func (b *Budget) Observe(o Outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.refill(now)
	switch {
	case pushBack(o):
		if o.RetryAfter > 0 && now.Add(o.RetryAfter).After(b.pauseUntil) {
			b.pauseUntil = now.Add(o.RetryAfter)
		}
		// One cut per second at most: a burst of in-flight failures is one signal.
		if now.Sub(b.lastCut) >= time.Second {
			b.rate = max(b.min, b.rate/2)
			b.lastCut = now
		}
	case o.Status == 200 && o.Class == ClassOK:
		if b.rate < b.max {
			b.rate = min(b.max, b.rate+b.max/50) // ~50 good answers from the floor to full speed
		}
	}
}

// Rate is the current requests/s.
func (b *Budget) Rate() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rate
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

// Instrument registers the request metrics on reg and returns the function to
// pass as Deps.Observe: it counts every attempt by class, times it, and
// feeds the budget's AIMD.
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
	for _, c := range []prometheus.Collector{reqs, dur} {
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
