package poller_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/poller/ccmssim"
)

// pacingConfig is 40 VDNs x 2 directions, caught up at the start, polled
// between every 10 s and every maxInterval.
func pacingConfig(maxInterval time.Duration) poller.Config {
	cfg := baseConfig()
	cfg.VDNs = make(poller.VDNSet, 40)
	for i := range cfg.VDNs {
		cfg.VDNs[i] = i + 1
	}
	cfg.PollInterval, cfg.MaxInterval, cfg.StartAt = 10*time.Second, maxInterval, "now"
	return cfg
}

// A budget too small to poll every stream every 10 s is spent, about 80 %
// of it, and busy streams get the short intervals.
func TestABindingBudgetIsSpentWhereTheCallsAre(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate = 2.0 // 80 streams every 10 s would need 8 requests/s
		e := newEnv(t, pacingConfig(5*time.Minute), ccmssim.Options{Seed: 3, Traffic: ccmssim.Traffic{BusyShare: 0.1, Flat: true}},
			t.TempDir(), func(c *ccms.Config) { c.Rate = rate })
		e.runFor(t, 20*time.Minute) // rates learned, sweeps done
		req0, t0 := e.sim.Requests(), time.Now()
		e.runFor(t, 20*time.Minute)
		spent := float64(e.sim.Requests()-req0) / time.Since(t0).Seconds()
		if spent < 0.6*rate || spent > rate {
			t.Errorf("spent %.2f requests/s of a budget of %.0f, want about 80 %%", spent, rate)
		}
		st := e.p.Status(time.Now())
		pace := st.Pace
		if pace.Short {
			t.Error("the budget is reported short")
		}
		if !(pace.IntervalMin < pace.IntervalP50) {
			t.Errorf("intervals min %.0f s, median %.0f s: want the busy streams polled more often", pace.IntervalMin, pace.IntervalP50)
		}
		if pace.IntervalMin < 10 || pace.IntervalMax > 300 {
			t.Errorf("intervals %.0f..%.0f s, outside POLL_INTERVAL..POLL_MAX_INTERVAL", pace.IntervalMin, pace.IntervalMax)
		}
		if st.Failing != 0 {
			t.Errorf("%d streams failing", st.Failing)
		}
		t.Logf("spent %.2f requests/s; intervals %.0f / %.0f / %.0f s; model p50 %.0f s, p99 %.0f s",
			spent, pace.IntervalMin, pace.IntervalP50, pace.IntervalMax, pace.ModelP50, pace.ModelP99)
	})
}

// A budget below every stream at POLL_MAX_INTERVAL says so, and still polls
// every stream in its turn: none waits much longer than the budget's round.
func TestAShortBudgetStillPollsEveryStreamInTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate = 0.5 // 80 streams every minute would need 1.33 requests/s
		e := newEnv(t, pacingConfig(time.Minute), ccmssim.Options{Seed: 3, Traffic: ccmssim.Traffic{BusyShare: 0.1, Flat: true}},
			t.TempDir(), func(c *ccms.Config) { c.Rate = rate })
		e.runFor(t, 30*time.Minute)
		now := time.Now()
		st := e.p.Status(now)
		if !st.Pace.Short {
			t.Error("the budget is not reported short")
		}
		// A round of every stream costs 80 requests, 160 s at the full rate;
		// sweeps and reconciliations take their share too.
		round := 2 * 80 / rate * float64(time.Second)
		for _, r := range st.Rows {
			if r.LastOK.IsZero() || now.Sub(r.LastOK) > time.Duration(round) {
				t.Errorf("stream %s last polled %v ago, want within %v (last error %q %v ago)", r.Stream, now.Sub(r.LastOK), time.Duration(round), r.LastError, now.Sub(r.LastErrorAt))
			}
		}
		if st.Failing != 0 {
			t.Errorf("%d streams failing", st.Failing)
		}
	})
}
