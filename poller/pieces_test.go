package poller_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/poller/ccmssim"
)

// rowsSource records the most rows any one read returned.
type rowsSource struct {
	poller.Source
	mu    sync.Mutex
	most  int
	reads int
}

func (s *rowsSource) ReadWindow(ctx context.Context, w ccms.Window) (ccms.Read, error) {
	r, err := s.Source.ReadWindow(ctx, w)
	s.mu.Lock()
	s.most, s.reads = max(s.most, len(r.Calls)+len(r.Bad)), s.reads+1
	s.mu.Unlock()
	return r, err
}

// A busy stream's sweeps, reconciliation and last-chance read cover hours
// and a whole day: they are read in pieces of about POLL_WINDOW_ROWS rows,
// each delivered before the next, so no turn holds more than 1.5 × as many
// rows. The day's seal still accounts for the whole day: complete, with the
// count of its calls, and nothing is missed.
func TestLongReadsHoldOnePieceOfRowsAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := baseConfig()
		cfg.VDNs, cfg.Directions, cfg.ReconcileDelay = poller.VDNSet{1, 2}, poller.Directions{poller.In}, time.Hour
		cfg.WindowRows = 80 // a read of one page (100 rows) is kept whole, whatever its count
		so := ccmssim.Options{Seed: 4, Traffic: ccmssim.Traffic{BusyShare: 1, ListInProgress: true}}
		so.AK, so.SK, so.CCID, so.VDNs = "ak", "sk", cfg.CCID, 2
		sim, err := ccmssim.New(so)
		if err != nil {
			t.Fatal(err)
		}
		var src *rowsSource
		e := buildWith(t, cfg, sim, openStore(t), func(d *poller.Deps) {
			src = &rowsSource{Source: d.Source}
			d.Source = src
		})
		e.runFor(t, 26*time.Hour) // from 00:00 of day 1 to 02:00 of day 2: two days reconciled, one read at its last chance
		if limit := cfg.WindowRows * 3 / 2; src.most > limit {
			t.Errorf("a read returned %d rows, want at most %d (1.5 × POLL_WINDOW_ROWS)", src.most, limit)
		}
		perDay := map[string]int{} // VDN and day (one direction) -> calls published ending that day
		for _, ev := range e.pub.events {
			perDay[ev.PartitionKey+" "+ev.Time.Format(time.DateOnly)]++
		}
		all := seals(t, e.pub)
		for _, d := range all {
			if !d.Complete {
				t.Errorf("%s %s sealed incomplete: %+v", d.Stream, d.Day, d)
			}
			if n := perDay[strconv.Itoa(d.VDN)+" "+d.Day]; d.Published != n {
				t.Errorf("%s %s sealed with %d calls, %d were published", d.Stream, d.Day, d.Published, n)
			}
			if d.Published < 2*cfg.WindowRows {
				t.Errorf("%s %s sealed with %d calls: too few for several pieces, the test proves nothing", d.Stream, d.Day, d.Published)
			}
		}
		if len(all) < 4 { // two days reconciled per stream, and the first read again at its last chance
			t.Errorf("%d day-sealed records, want at least 4", len(all))
		}
		e.check(t, time.Now().Add(-20*time.Minute))
	})
}
