package poller

import (
	"log/slog"
	"math"
	"testing"
	"time"
)

// rates returns n streams of rows per hour perHour each (plus the prior).
func rates(n int, perHour float64) []float64 {
	lam := make([]float64, n)
	for i := range lam {
		lam[i] = prior + perHour/3600
	}
	return lam
}

func TestSolveKSpendsTheFreshBudget(t *testing.T) {
	lo, hi := 30*time.Second, 5*time.Minute
	mixed := append(rates(500, 120), rates(9500, 2)...)
	tests := []struct {
		name      string
		lam       []float64
		polls     float64
		wantK0    bool // every stream at lo
		wantShort bool // every stream at hi
	}{
		{name: "a budget that affords every stream at POLL_INTERVAL polls every stream at it", lam: mixed, polls: 400, wantK0: true},
		{name: "a binding budget is spent exactly", lam: mixed, polls: 60},
		{name: "a budget below every stream at POLL_MAX_INTERVAL is short", lam: mixed, polls: 30, wantShort: true},
		{name: "streams that all look alike share the budget alike", lam: rates(1000, 2), polls: 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, short := solveK(tc.lam, tc.polls, lo, hi)
			if short != tc.wantShort {
				t.Fatalf("short = %v, want %v", short, tc.wantShort)
			}
			if tc.wantShort {
				return
			}
			if (k == 0) != tc.wantK0 {
				t.Fatalf("K = %v, want K == 0: %v", k, tc.wantK0)
			}
			if tc.wantK0 {
				return
			}
			var spend float64
			for _, l := range tc.lam {
				spend += 1 / clampInterval(k/math.Pow(l, paceExponent), lo, hi).Seconds()
			}
			if math.Abs(spend-tc.polls)/tc.polls > 0.001 {
				t.Errorf("the intervals make %.3f polls/s, want %.3f", spend, tc.polls)
			}
		})
	}
}

func TestTheBusierAStreamTheMoreOftenItIsPolled(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	pc := newPacer(10_000, 30*time.Second, 5*time.Minute, 0, func() float64 { return 80 }, slog.New(slog.DiscardHandler))
	busy := density{rows: 120, secs: 3600}
	quiet := density{rows: 2, secs: 3600}
	for i := range 10_000 {
		d := quiet
		if i < 500 {
			d = busy
		}
		pc.interval(i, d, 0, now)
	}
	pc.solve(now.Add(resolveEvery)) // with every stream's rate known
	ib := pc.interval(0, busy, 0, now.Add(resolveEvery))
	iq := pc.interval(9999, quiet, 0, now.Add(resolveEvery))
	iPending := pc.interval(9998, quiet, 2, now.Add(resolveEvery))
	if ib >= iq {
		t.Fatalf("busy stream every %v, quiet one every %v: want the busy one polled more often", ib, iq)
	}
	want := math.Pow((120.0/3600+prior)/(2.0/3600+prior), paceExponent)
	if got := iq.Seconds() / ib.Seconds(); math.Abs(got-want) > 0.01 {
		t.Errorf("quiet/busy interval ratio %.3f, want %.3f", got, want)
	}
	if iPending >= iq {
		t.Errorf("a quiet stream with calls in progress every %v, without every %v: want it sooner", iPending, iq)
	}
	st := pc.snapshot()
	// 0.8 of 80 requests/s, one request a poll, nothing else spent.
	if math.Abs(st.FreshRPS-64) > 0.5 {
		t.Errorf("planned fresh spend %.2f requests/s, want 64", st.FreshRPS)
	}
	if st.Short {
		t.Error("budget reported short")
	}
}

func TestWhatOtherLanesSpendComesOffTheFreshBudget(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	pc := newPacer(1000, 30*time.Second, 5*time.Minute, 0, func() float64 { return 8 }, slog.New(slog.DiscardHandler))
	pc.solve(t0)
	// Sweeps spend 2 requests/s for an hour.
	for s := range 360 {
		pc.spend(laneSweep, 20)
		pc.solve(t0.Add(time.Duration(s+1) * resolveEvery))
	}
	st := pc.snapshot()
	if math.Abs(st.OtherRPS-2) > 0.05 {
		t.Fatalf("other lanes measured at %.2f requests/s, want 2", st.OtherRPS)
	}
	if math.Abs(st.FreshRPS-4.4) > 0.05 {
		t.Errorf("planned fresh spend %.2f requests/s, want 6.4 - 2 = 4.4", st.FreshRPS)
	}
}

func TestModelDelayOfOneStreamIsUniformOverItsInterval(t *testing.T) {
	lam, iv := []float64{1, 3}, []float64{100, 100}
	for _, q := range []float64{0.5, 0.99} {
		if got := modelDelay(lam, iv, q); math.Abs(got-100*q) > 0.01 {
			t.Errorf("q%.2f = %.3f, want %.3f", q, got, 100*q)
		}
	}
	// Half the rows wait up to 10 s, half up to 1,000 s: the p99 is 980 s.
	if got := modelDelay([]float64{1, 1}, []float64{10, 1000}, 0.99); math.Abs(got-980) > 0.01 {
		t.Errorf("mixed p99 = %.3f, want 980", got)
	}
}

func TestAFreshnessTargetIsPricedInRequestsPerSecond(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	// 1,000 alike streams: a p99 of 99 s needs every stream every 100 s,
	// 10 polls/s, which is paceShare of 12.5 requests/s.
	pc := newPacer(1000, 10*time.Second, time.Hour, 99*time.Second, func() float64 { return 5 }, slog.New(slog.DiscardHandler))
	for i := range 1000 {
		pc.interval(i, density{rows: 2, secs: 3600}, 0, now)
	}
	pc.solve(now.Add(time.Minute))
	st := pc.snapshot()
	if math.Abs(st.TargetNeedsRPS-12.5) > 0.05 {
		t.Errorf("target p99 99 s priced at %.3f requests/s, want 12.5", st.TargetNeedsRPS)
	}
	if st.ModelP99 <= 99 {
		t.Errorf("the 5 requests/s budget predicts p99 %.1f s, want more than the target's 99 s", st.ModelP99)
	}
}
