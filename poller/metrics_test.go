package poller

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/schemas"
)

// idle collaborators: a poller built on them is never run, only asked.
type (
	idleSource    struct{}
	idleStore     struct{}
	idlePublisher struct{}
	fixedBudget   struct{}
)

func (idleSource) ReadWindow(context.Context, ccms.Window) (ccms.Read, error) {
	return ccms.Read{}, errors.New("idle")
}
func (idleStore) State(string) (dedupe.StreamState, error)                   { return dedupe.StreamState{}, nil }
func (idleStore) Unseen(k []dedupe.Key) ([]dedupe.Key, error)                { return k, nil }
func (idleStore) Commit(dedupe.Batch) error                                  { return nil }
func (idleStore) CountSeen(string, time.Time) (int, error)                   { return 0, nil }
func (idleStore) NewlyBad(string, []string) ([]string, error)                { return nil, nil }
func (idleStore) GapsIn(string, time.Time, time.Time) ([]dedupe.Gap, error)  { return nil, nil }
func (idlePublisher) Publish(context.Context, ...schemas.Event) error        { return nil }
func (idlePublisher) PublishControl(context.Context, ...schemas.Event) error { return nil }
func (idlePublisher) PublishDLQ(context.Context, ...schemas.Event) error     { return nil }
func (fixedBudget) Rate() float64                                            { return 10 }
func (fixedBudget) Limit() float64                                           { return 10 }

// idlePoller is a poller of VDNs 1-4 in both directions (owned: only the
// VDNs in owned, when given) whose streams' status fields the test sets.
func idlePoller(t testing.TB, reg prometheus.Registerer, owned ...int) *Poller {
	t.Helper()
	return idlePollerOf(t, reg, VDNSet{1, 2, 3, 4}, owned...)
}

// idlePollerOf is idlePoller over the VDNs vdns.
func idlePollerOf(t testing.TB, reg prometheus.Registerer, vdns VDNSet, owned ...int) *Poller {
	t.Helper()
	enc, err := schemas.NewEncoder(schemas.EncoderOptions{PII: schemas.PIIPlain})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		CCID: 1, VDNs: vdns, Directions: Directions{In, Out},
		PollInterval: 30 * time.Second, MaxInterval: 2 * time.Minute, Lookback: 5 * time.Minute,
		Lag: 5 * time.Second, MaxSpan: 2 * time.Hour, WindowRows: 1000, SweepInterval: 10 * time.Minute, SweepLookback: 6 * time.Hour,
		ReconcileDelay: 4 * time.Hour, LastChanceBefore: time.Hour, Heartbeat: time.Minute, StartAt: "horizon",
		RetryBase: time.Second, RetryMax: time.Minute, StepTimeout: time.Minute,
	}
	d := Deps{Source: idleSource{}, Store: idleStore{}, Publisher: idlePublisher{}, Encoder: enc, Budget: fixedBudget{}, Metrics: reg}
	if len(owned) > 0 {
		d.Owns = func(s Stream) bool { return slices.Contains(owned, s.VDN) }
	}
	p, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// shape sets every stream of p: 1/2/in and 1/3/out failing, 1/4/in behind,
// every stream but 1/4/out polled, all others caught up.
func shape(p *Poller, now time.Time) {
	for _, ls := range p.streams {
		ls.state.Cursor = now.Add(-10 * time.Second)
		ls.lastOK = now.Add(-5 * time.Second)
		switch ls.key {
		case "1/2/in", "1/3/out":
			ls.failure = &failure{err: "http 503", at: now.Add(-time.Second)}
		case "1/4/in":
			ls.state.Cursor = now.Add(-time.Hour)
		case "1/4/out":
			ls.lastOK = time.Time{}
		}
	}
}

func TestMetricsAreSentWithoutThePollersLock(t *testing.T) {
	p := idlePoller(t, prometheus.NewRegistry())
	ch := make(chan prometheus.Metric) // unbuffered: Collect waits on each send
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.m.streams.Collect(ch)
	}()
	<-ch // Collect is sending: it must have let go of the lock
	if !p.mu.TryLock() {
		t.Error("the poller's lock is held while the per-stream samples are sent")
	} else {
		p.mu.Unlock()
	}
	n := 1
	for {
		select {
		case <-ch:
			n++
			continue
		case <-done:
		}
		break
	}
	if want := 3*len(p.streams) + 1; n != want {
		t.Errorf("%d samples, want %d", n, want)
	}
}

func TestAboveTheSeriesMaxStreamGaugesAreOnePerDirection(t *testing.T) {
	tests := []struct {
		name      string
		max       int
		perStream bool
	}{
		{"eight streams under a max of a thousand have a series each", DefaultStreamSeriesMax, true},
		{"eight streams as many as the max have a series each", 8, true},
		{"eight streams over a max of four have one series per direction", 4, false},
		{"a max of 0 never exports per stream", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			p := idlePoller(t, reg)
			now := time.Now()
			shape(p, now)
			pending := map[string]int{"1/1/in": 2, "1/2/in": 1, "1/3/out": 3}
			for _, ls := range p.streams {
				for i := range pending[ls.key] {
					ls.state.Pending = append(ls.state.Pending, dedupe.Pending{CallID: strconv.Itoa(i), FilterTime: now.Add(-10 * time.Second)})
				}
			}
			p.SetStreamSeriesMax(tt.max)
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]map[string]float64{} // metric -> labels -> value
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					var labels []string
					for _, l := range m.GetLabel() {
						labels = append(labels, l.GetName()+"="+l.GetValue())
					}
					if got[mf.GetName()] == nil {
						got[mf.GetName()] = map[string]float64{}
					}
					got[mf.GetName()][strings.Join(labels, ",")] = m.GetGauge().GetValue()
				}
			}
			lag, pend := got["callpub_stream_lag_seconds"], got["callpub_pending_calls"]
			if tt.perStream {
				if len(lag) != 8 || pend["direction=in,vdn=1"] != 2 || pend["direction=out,vdn=3"] != 3 {
					t.Errorf("lag series %v, pending %v; want 8 of each, by vdn and direction", lag, pend)
				}
				return
			}
			if len(lag) != 2 || lag["direction=in"] < 3600 || lag["direction=out"] > 3600 {
				t.Errorf("lag %v, want the largest of each direction: an hour in, seconds out", lag)
			}
			if len(pend) != 2 || pend["direction=in"] != 3 || pend["direction=out"] != 3 {
				t.Errorf("pending %v, want the sum of each direction: 3 and 3", pend)
			}
			h := got["callpub_horizon_headroom_seconds"]
			if minH := got["callpub_min_horizon_headroom_seconds"][""]; len(h) != 2 || min(h["direction=in"], h["direction=out"]) != minH {
				t.Errorf("headroom %v, want the least of each direction, the least of all being %v", h, minH)
			}
		})
	}
}
