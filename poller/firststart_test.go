package poller_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/poller/ccmssim"
)

// A stream with nothing in the API's reach costs one request at its first
// start: one window from the horizon to now, which the first page answers.
func TestAnEmptyStreamsFirstStartCostsOneRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := baseConfig()
		cfg.VDNs, cfg.MaxSpan = []int{1, 2, 3}, 48*time.Hour
		long := time.Now().Add(-96 * time.Hour) // all traffic long gone from the reach
		e := newEnv(t, cfg, ccmssim.Options{Seed: 5, Traffic: ccmssim.Traffic{Flat: true, Start: long, Stop: long.Add(time.Hour)}},
			t.TempDir(), oneWorker)
		e.runFor(t, 10*time.Second) // every first turn is due within 5 s; the next poll is 30 s later
		if got, want := e.sim.Requests(), int64(len(cfg.VDNs)*len(cfg.Directions)); got != want {
			t.Errorf("%d requests for %d empty streams' first start, want one each", got, want)
		}
		if st := e.p.Status(time.Now()); st.Failing != 0 || st.Behind != 0 {
			t.Errorf("status after the first start: %d failing, %d behind", st.Failing, st.Behind)
		}
	})
}

// A busy stream's first start over a server that ignores offset: the first
// window holds far more than a page, its pages repeat, and it is split until
// each part fits in one; every call is published once.
func TestADenseFirstStartOnAServerThatIgnoresOffsetLosesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := baseConfig()
		cfg.VDNs, cfg.Directions, cfg.MaxSpan = []int{1}, cfg.Directions[:1], 48*time.Hour
		start := time.Now()
		e := newEnv(t, cfg, ccmssim.Options{Seed: 9, Faults: ccmssim.Faults{IgnoreOffset: true},
			Traffic: ccmssim.Traffic{BusyShare: 1, Flat: true, LongCallShare: -1, IngestDelayMax: time.Minute,
				Start: start.Add(-20 * time.Hour), Stop: start.Add(-time.Hour)}}, t.TempDir(),
			func(c *ccms.Config) { c.MinSpan = time.Second })
		e.runFor(t, 10*time.Minute)
		n, dups := e.check(t, start)
		if n < 300 {
			t.Errorf("only %d calls: the window is not dense enough to need paging", n)
		}
		if dups != 0 {
			t.Errorf("%d duplicates", dups)
		}
		t.Logf("%d calls in %d requests", n, e.sim.Requests())
	})
}
