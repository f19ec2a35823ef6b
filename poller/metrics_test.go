package poller

import (
	"context"
	"errors"
	"slices"
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

func TestMetricsAreSentWithoutThePollersLock(t *testing.T) {
	p := idlePoller(t, prometheus.NewRegistry())
	ch := make(chan prometheus.Metric) // unbuffered: Collect waits on each send
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&streamCollector{p: p}).Collect(ch)
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
