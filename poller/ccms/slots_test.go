package ccms_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/schemas"
)

// gatedSim serves the simulator in memory, holding every request until
// the gate opens, and counts the requests held at once.
type gatedSim struct {
	sim            *ccmssim.Sim
	gate           chan struct{}
	inFlight, most atomic.Int64
}

func (g *gatedSim) RoundTrip(r *http.Request) (*http.Response, error) {
	n := g.inFlight.Add(1)
	for m := g.most.Load(); n > m && !g.most.CompareAndSwap(m, n); m = g.most.Load() {
	}
	<-g.gate
	defer g.inFlight.Add(-1)
	rec := httptest.NewRecorder()
	r = r.Clone(r.Context())
	r.RequestURI = r.URL.RequestURI()
	r.Header.Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	g.sim.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// Twelve callers share a client with MaxInFlight 3 (the service runs four
// workers per slot): three requests are out at once, never more, and every
// caller is answered.
func TestRequestsInFlightNeverExceedMaxInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim, err := ccmssim.New(ccmssim.Options{AK: simAK, SK: simSK, CCID: 1, VDNs: 1, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		g := &gatedSim{sim: sim, gate: make(chan struct{})}
		c, err := ccms.NewClient(ccms.Config{URL: "http://ccms.test", AK: simAK, SK: simSK, MaxInFlight: 3}, ccms.Deps{Transport: g})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, 12)
		for range 12 {
			wg.Go(func() {
				_, err := c.QueryCalls(t.Context(), ccms.Query{Stream: schemas.Stream{CCID: 1, VDN: 1, Dir: schemas.In},
					Begin: now.Add(-time.Hour), End: now, Limit: 100})
				errs <- err
			})
		}
		synctest.Wait() // every caller is blocked: in the transport, or waiting for a slot
		if got := g.inFlight.Load(); got != 3 {
			t.Errorf("%d requests out at once, want MaxInFlight 3", got)
		}
		close(g.gate)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if most := g.most.Load(); most != 3 {
			t.Errorf("at most %d requests were out at once, want 3", most)
		}
	})
}
