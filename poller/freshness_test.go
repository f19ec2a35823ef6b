package poller_test

import (
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/schemas"
)

func TestFreshnessIsTheDelayFromEachCallsLogDateToItsAcknowledgement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := baseConfig()
		cfg.StartAt = "now"
		e := newEnv(t, cfg, ccmssim.Options{Seed: 11, Traffic: ccmssim.Traffic{
			BusyShare: 0.5, ListInProgress: true, IngestDelayMax: 2 * time.Minute,
		}}, t.TempDir())
		e.runFor(t, 8*time.Minute) // within /status's ten minutes

		// Under synctest no time passes between the fake publisher's
		// acknowledgement and the poller's reading of the clock.
		var delays []float64
		e.pub.mu.Lock()
		for i, ev := range e.pub.events {
			if ev.Type != schemas.TypeCallCompleted {
				continue
			}
			d, err := schemas.CallCompletedOf(ev)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Update {
				delays = append(delays, max(e.pub.at[i].Sub(d.LogDate.Time), 0).Seconds())
			}
		}
		e.pub.mu.Unlock()
		if len(delays) < 50 {
			t.Fatalf("only %d calls published; the test traffic is too thin to mean much", len(delays))
		}

		count, sum := histogram(t, e, "callpub_freshness_seconds")
		var want float64
		for _, d := range delays {
			want += d
		}
		if count != uint64(len(delays)) || math.Abs(sum-want) > 1e-6*want {
			t.Errorf("callpub_freshness_seconds: %d delays summing to %.3fs, want %d summing to %.3fs", count, sum, len(delays), want)
		}

		f := e.p.Status(time.Now()).Freshness
		slices.Sort(delays)
		rank := func(q float64) float64 { return delays[int(math.Ceil(q*float64(len(delays))))-1] }
		near := func(got, want float64) bool { return got >= want/1.1 && got <= want*1.1 }
		if f.Calls != len(delays) || !near(f.P50Seconds, rank(0.5)) || !near(f.P99Seconds, rank(0.99)) {
			t.Errorf("/status freshness: %d calls, p50 %.1fs, p99 %.1fs; want %d, about %.1fs and %.1fs",
				f.Calls, f.P50Seconds, f.P99Seconds, len(delays), rank(0.5), rank(0.99))
		}
	})
}

// histogram sums the sample count and sum of a histogram's series.
func histogram(t *testing.T, e *env, name string) (count uint64, sum float64) {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				count += m.GetHistogram().GetSampleCount()
				sum += m.GetHistogram().GetSampleSum()
			}
		}
	}
	return count, sum
}
