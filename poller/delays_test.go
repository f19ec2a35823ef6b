package poller

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/schemas"
)

func TestFreshnessCountsCompletedCallsAtTheirFirstPublicationOnly(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := idlePoller(t, reg)
	acked := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	call := func(id string, logDate time.Time) schemas.HashedCall {
		return schemas.HashedCall{Call: schemas.Call{CallID: id, LogDate: logDate, CallEnd: logDate}}
	}
	items := []item{
		{key: dedupe.Key{CallID: "new"}, call: call("new", acked.Add(-30*time.Second))},
		{key: dedupe.Key{CallID: "late"}, call: call("late", acked.Add(-20*time.Minute))},
		{key: dedupe.Key{CallID: "ahead"}, call: call("ahead", acked.Add(time.Minute))}, // stamped after the ack: no delay
		{key: dedupe.Key{CallID: "changed", Update: true}, call: call("changed", acked.Add(-time.Hour))},
		{key: dedupe.Key{CallID: "running"}, call: call("running", acked.Add(-2*time.Hour)), unended: true},
	}
	p.m.observeFreshness(In, items, acked)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var count uint64
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == "callpub_freshness_seconds" {
			for _, m := range mf.GetMetric() {
				count += m.GetHistogram().GetSampleCount()
				sum += m.GetHistogram().GetSampleSum()
			}
		}
	}
	if count != 3 || sum != 30+20*60 {
		t.Errorf("callpub_freshness_seconds counted %d delays summing to %gs, want 3 summing to %ds (new, late, ahead)", count, sum, 30+20*60)
	}
	if f := p.StatusOf(time.Now(), StatusQuery{}).Freshness; f.Calls != 3 {
		t.Errorf("/status freshness counts %d calls, want 3", f.Calls)
	}
}

func TestRecentDelaysQuantilesAndWindow(t *testing.T) {
	t0 := time.Date(2025, 3, 4, 12, 0, 30, 0, time.UTC)
	within := func(got, want float64) bool { return got >= want/1.1 && got <= want*1.1 }
	tests := []struct {
		name     string
		add      func(r *recentDelays)
		at       time.Time
		calls    int
		p50, p99 float64 // 0: not reported
	}{
		{"an empty window reports no quantiles", func(*recentDelays) {}, t0, 0, 0, 0},
		{"one delay is its own p50 and p99, within a bin", func(r *recentDelays) { r.add(t0, 30*time.Second) }, t0, 1, 30, 30},
		{"delays of 1 to 100 seconds have a p50 near 50 and a p99 near 99", func(r *recentDelays) {
			for s := 1; s <= 100; s++ {
				r.add(t0, time.Duration(s)*time.Second)
			}
		}, t0, 100, 50, 99},
		{"delays under a second count below a second", func(r *recentDelays) { r.add(t0, 200*time.Millisecond) }, t0, 1, 0.5, 0.99},
		{"the delays of the last ten minutes count", func(r *recentDelays) {
			r.add(t0, time.Second)
			r.add(t0.Add(9*time.Minute), time.Hour)
		}, t0.Add(9 * time.Minute), 2, 1, 3600},
		{"delays older than ten minutes are forgotten", func(r *recentDelays) {
			r.add(t0, time.Second)
			r.add(t0.Add(10*time.Minute), time.Hour)
		}, t0.Add(10 * time.Minute), 1, 3600, 3600},
		{"a delay beyond the bins lands in the last one", func(r *recentDelays) { r.add(t0, 100*time.Hour) }, t0, 1, 131072, 131072},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r recentDelays
			tt.add(&r)
			f := r.summary(tt.at)
			if f.Calls != tt.calls || f.WindowSeconds != 600 {
				t.Fatalf("%d calls over %gs, want %d over 600s", f.Calls, f.WindowSeconds, tt.calls)
			}
			if tt.calls == 0 {
				if f.P50Seconds != 0 || f.P99Seconds != 0 {
					t.Errorf("p50 %g, p99 %g of no delay", f.P50Seconds, f.P99Seconds)
				}
				return
			}
			if !within(f.P50Seconds, tt.p50) || !within(f.P99Seconds, tt.p99) {
				t.Errorf("p50 %.3gs, p99 %.3gs; want about %gs and %gs", f.P50Seconds, f.P99Seconds, tt.p50, tt.p99)
			}
		})
	}
}
