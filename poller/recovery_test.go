package poller_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/poller/pollertest"
	"github.com/callpub/callpub/schemas"
)

// dependency is CC-CMS or Kafka as the recovery tests see it: up or down,
// and every attempt on it noted.
type dependency struct {
	took time.Duration // how long a failing attempt takes (the client's own retries)

	mu       sync.Mutex
	down     bool
	attempts []attempt
}

type attempt struct {
	stream     string
	start, end time.Time
	ok         bool
}

func (d *dependency) set(down bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down = down
}

// try notes an attempt by stream; while down it takes d.took and fails.
func (d *dependency) try(ctx context.Context, stream string) error {
	start := time.Now()
	d.mu.Lock()
	down := d.down
	d.mu.Unlock()
	if down {
		select {
		case <-ctx.Done():
		case <-time.After(d.took):
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.attempts = append(d.attempts, attempt{stream: stream, start: start, end: time.Now(), ok: !down})
	if down {
		return errors.New("unavailable")
	}
	return nil
}

// outageStats sums up the failed attempts from down to up: wave, those
// started before the first failure came back; after it and after settle
// has passed since down, their number, the most of them in flight at once,
// and over how long.
func (d *dependency) outageStats(down, up time.Time, settle time.Duration) (wave, n, inFlight int, over time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var failed []attempt
	var firstBack time.Time
	for _, a := range d.attempts {
		if !a.ok && !a.start.Before(down) && a.start.Before(up) {
			failed = append(failed, a)
			if firstBack.IsZero() || a.end.Before(firstBack) {
				firstBack = a.end
			}
		}
	}
	from := firstBack.Add(time.Nanosecond)
	if settled := down.Add(settle); settled.After(from) {
		from = settled
	}
	var spans []attempt
	for _, a := range failed {
		if !a.start.After(firstBack) {
			wave++
		}
		if !a.start.Before(from) {
			spans = append(spans, a)
		}
	}
	for _, a := range spans {
		at := 0
		for _, b := range spans {
			if !b.start.After(a.start) && b.end.After(a.start) {
				at++
			}
		}
		inFlight = max(inFlight, at)
	}
	return wave, len(spans), inFlight, up.Sub(from)
}

// firstOKAfter returns each stream's first successful attempt from t on.
func (d *dependency) firstOKAfter(t time.Time) map[string]time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	first := map[string]time.Time{}
	for _, a := range d.attempts {
		if _, ok := first[a.stream]; a.ok && !a.start.Before(t) && !ok {
			first[a.stream] = a.start
		}
	}
	return first
}

// tickingSource holds, for every stream, one call ending every callEvery from
// epoch on, queued (its filter time) 30 s before it ends and listed once it
// ended. Reads go through dep when it is set.
type tickingSource struct {
	epoch time.Time
	dep   *dependency
}

const callEvery = 20 * time.Second

func (s tickingSource) ReadWindow(ctx context.Context, w ccms.Window) (ccms.Read, error) {
	if err := ctx.Err(); err != nil {
		return ccms.Read{}, err
	}
	if s.dep != nil {
		if err := s.dep.try(ctx, w.Key()); err != nil {
			return ccms.Read{Stats: ccms.ReadStats{Requests: 3}}, &ccms.StatusError{Code: 503}
		}
	}
	r := ccms.Read{Stats: ccms.ReadStats{Requests: 1, Pages: 1}}
	now := time.Now()
	for k := max(1, int(w.Start.Add(30*time.Second).Sub(s.epoch)/callEvery)); ; k++ {
		c := tickingCall(w.VDN, s.epoch, k)
		if !c.WaitBegin.Before(w.End) || c.CallEnd.After(now) {
			break
		}
		if !c.WaitBegin.Before(w.Start) {
			r.Calls = append(r.Calls, c)
		}
	}
	return r, nil
}

func tickingCall(vdn int, epoch time.Time, k int) ccms.Call {
	end := epoch.Add(time.Duration(k) * callEvery)
	return ccms.Call{CallID: fmt.Sprintf("c%d", k), VDN: vdn, CallerNo: "13800138000", CalleeNo: "8000",
		WaitBegin: end.Add(-30 * time.Second), AckBegin: end.Add(-20 * time.Second), CallBegin: end.Add(-20 * time.Second), CallEnd: end}
}

// outagePublisher acknowledges what it is given unless dep is down.
type outagePublisher struct {
	dep *dependency

	mu     sync.Mutex
	events []schemas.Event
}

func (p *outagePublisher) Publish(ctx context.Context, events ...schemas.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	if p.dep != nil {
		if err := p.dep.try(ctx, events[0].PartitionKey); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, events...)
	return nil
}

func (p *outagePublisher) PublishControl(ctx context.Context, events ...schemas.Event) error {
	return p.controlOrDLQ(ctx)
}

func (p *outagePublisher) PublishDLQ(ctx context.Context, events ...schemas.Event) error {
	return p.controlOrDLQ(ctx)
}

func (p *outagePublisher) controlOrDLQ(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.dep != nil {
		p.dep.mu.Lock()
		defer p.dep.mu.Unlock()
		if p.dep.down {
			return errors.New("control topic unavailable")
		}
	}
	return nil
}

// outageRun is one run of recoveryStreams streams: healthy for two minutes,
// then the dependency is down for ten, then up again for one.
type outageRun struct {
	down, up time.Time
}

const (
	recoveryStreams = 100
	workers         = 4
	outageFor       = 10 * time.Minute
	// recoveryBound is the longest a stream may wait after the dependency's
	// return: the next probe (at most 2 s after the last one began, which
	// failed in 0.5 s), then the wake-up spread over 2 s, and a second of slack.
	recoveryBound = 5 * time.Second
)

func runOutage(t *testing.T, src poller.Source, pub poller.Publisher, dep *dependency) outageRun {
	t.Helper()
	enc, err := schemas.NewEncoder(schemas.EncoderOptions{PII: schemas.PIIPlain})
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig()
	cfg.VDNs, cfg.Directions = poller.VDNSet{}, poller.Directions{poller.In}
	for v := 1; v <= recoveryStreams; v++ {
		cfg.VDNs = append(cfg.VDNs, v)
	}
	cfg.StartAt = "now"
	cfg.RetryBase, cfg.RetryMax = 2*time.Second, 5*time.Minute // the defaults
	p, err := poller.New(cfg, poller.Deps{Source: src, Store: openStore(t), Publisher: pub, Encoder: enc,
		Budget: ccms.NewBudget(1000, 4), Metrics: prometheus.NewRegistry(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	run := outageRun{down: time.Now().Add(2 * time.Minute)}
	run.up = run.down.Add(outageFor)
	time.AfterFunc(time.Until(run.down), func() { dep.set(true) })
	time.AfterFunc(time.Until(run.up), func() { dep.set(false) })
	ctx, cancel := context.WithDeadline(t.Context(), run.up.Add(time.Minute))
	defer cancel()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			if err := p.Work(ctx); err != nil {
				t.Errorf("Work: %v", err)
			}
		})
	}
	wg.Wait()
	return run
}

// checkRecovery asserts that every stream used dep again within
// recoveryBound of its return, and that while dep was down it was tried by
// one probe at a time, at most one a second, once every stream had calls
// waiting: until then a turn may succeed without dep (nothing new to
// publish, nothing to read yet), which ends the failing and lets the turns
// due meanwhile try dep once more.
func checkRecovery(t *testing.T, run outageRun, dep *dependency, key func(vdn int) string) {
	t.Helper()
	first := dep.firstOKAfter(run.up)
	slowest := time.Duration(0)
	for v := 1; v <= recoveryStreams; v++ {
		at, ok := first[key(v)]
		if !ok {
			t.Errorf("stream of VDN %d never used the dependency again after its return", v)
			continue
		}
		slowest = max(slowest, at.Sub(run.up))
	}
	if slowest > recoveryBound {
		t.Errorf("the slowest stream used the dependency again %v after its return, want at most %v", slowest, recoveryBound)
	}
	wave, n, inFlight, over := dep.outageStats(run.down, run.up, time.Minute)
	t.Logf("%d streams: %d failed attempts at the outage's start, then %d in %v (one every %.1fs), "+
		"the slowest stream back %v after the return", recoveryStreams, wave, n, over.Round(time.Second),
		over.Seconds()/float64(n), slowest.Round(time.Millisecond))
	if limit := int(over/time.Second) + 1; n > limit {
		t.Errorf("%d failed attempts in %v, want at most one a second (%d)", n, over, limit)
	}
	if least := int(over/(2*time.Second)) - 1; n < least {
		t.Errorf("%d failed attempts in %v, want a probe at least every 2 s (%d)", n, over, least)
	}
	if inFlight != 1 {
		t.Errorf("%d failed attempts in flight at once while down, want one probe at a time", inFlight)
	}
}

// checkNothingLost asserts that every call that ended before the end of the
// outage was published.
func checkNothingLost(t *testing.T, pub *outagePublisher, epoch time.Time, run outageRun) {
	t.Helper()
	pub.mu.Lock()
	defer pub.mu.Unlock()
	got := map[string]bool{}
	for _, e := range pub.events {
		got[e.ID] = true
	}
	missing := 0
	for v := 1; v <= recoveryStreams; v++ {
		for k := 1; !epoch.Add(time.Duration(k) * callEvery).After(run.up); k++ {
			if !got[schemas.EventID(1, v, true, tickingCall(v, epoch, k).CallID)] {
				missing++
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d calls that ended before the outage's end are not published", missing)
	}
}

// CC-CMS answers every request with an error for ten minutes across 100
// streams: meanwhile it is probed once every second or two, one request at
// a time, and the first success brings every stream back within seconds.
func TestAfterAnUpstreamOutageTheFirstSuccessBringsEveryStreamBackWithinSeconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dep := &dependency{took: 500 * time.Millisecond}
		src := tickingSource{epoch: time.Now(), dep: dep}
		pub := &outagePublisher{}
		run := runOutage(t, src, pub, dep)
		checkRecovery(t, run, dep, func(vdn int) string { return fmt.Sprintf("1/%d/in", vdn) })
		checkNothingLost(t, pub, src.epoch, run)
	})
}

// Kafka refuses every write for ten minutes across 100 streams: meanwhile
// one publish is tried every second or two, one at a time, and the first
// acknowledgement brings every stream back within seconds.
func TestAfterABrokerOutageTheFirstAcknowledgementBringsEveryStreamBackWithinSeconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dep := &dependency{took: 500 * time.Millisecond}
		src := tickingSource{epoch: time.Now()}
		pub := &outagePublisher{dep: dep}
		run := runOutage(t, src, pub, dep)
		checkRecovery(t, run, dep, func(vdn int) string { return fmt.Sprint(vdn) })
		checkNothingLost(t, pub, src.epoch, run)
	})
}

func TestRecoveryFakesKeepTheSeamContracts(t *testing.T) {
	w := ccms.Window{Stream: schemas.Stream{CCID: 1, VDN: 1, Dir: schemas.In},
		Start: time.Now().Add(-time.Hour), End: time.Now()}
	t.Run("tickingSource keeps the Source contract", func(t *testing.T) {
		src := tickingSource{epoch: w.Start.Add(-time.Minute)}
		var want []string
		for k := 1; ; k++ {
			c := tickingCall(1, src.epoch, k)
			if !c.WaitBegin.Before(w.End) || c.CallEnd.After(time.Now()) {
				break
			}
			if !c.WaitBegin.Before(w.Start) {
				want = append(want, c.CallID)
			}
		}
		pollertest.Source(t, src, w, want)
	})
	t.Run("outagePublisher keeps the Publisher contract", func(t *testing.T) {
		p := &outagePublisher{}
		pollertest.Publisher(t, p, func(t *testing.T, n, _ int) (events, control []schemas.Event) {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.events[:min(n, len(p.events))], nil
		}, false)
	})
}
