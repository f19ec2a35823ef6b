package poller_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/schemas"
)

// A replay of an hour of one stream publishes again exactly the completed
// calls of that stream whose filter time lies in the hour, with the ids they
// were first published with, while the stream goes on; /status and Done say
// how many. The span is read in one window, or in pieces of about
// POLL_WINDOW_ROWS rows, each published before the next is read.
func TestAReplayPublishesTheSpansCallsAgainAndNothingElse(t *testing.T) {
	for _, tc := range []struct {
		name       string
		windowRows int
	}{
		{"in one window", 1000},
		{"in pieces of about 10 rows", 10},
	} {
		t.Run(tc.name, func(t *testing.T) { replayAnHour(t, tc.windowRows) })
	}
}

func replayAnHour(t *testing.T, windowRows int) {
	synctest.Test(t, func(t *testing.T) {
		cfg := baseConfig()
		cfg.VDNs, cfg.WindowRows = poller.VDNSet{1, 2}, windowRows
		e := newEnv(t, cfg, ccmssim.Options{Seed: 4, Traffic: ccmssim.Traffic{BusyShare: 1, Flat: true}}, t.TempDir())
		e.runFor(t, 20*time.Minute)
		e.pub.mu.Lock()
		before := len(e.pub.events)
		e.pub.mu.Unlock()

		from := time.Now().Add(-90 * time.Minute).Truncate(time.Minute)
		to := from.Add(time.Hour)
		want := map[string]bool{}
		for _, c := range e.sim.Oracle(from, to) {
			if c.VDN == 1 && c.Inbound && !c.FilterTime.Before(from) && c.FilterTime.Before(to) && !c.VisibleAt.After(time.Now()) {
				want[schemas.EventID(1, c.VDN, c.Inbound, c.CallID)] = true
			}
		}
		done := make(chan int, 1)
		err := e.p.Replay(poller.ReplayRequest{ID: "r1", Stream: "1/1/in", From: from, To: to,
			Done: func(n int, err error) {
				if err != nil {
					t.Errorf("replay: %v", err)
				}
				done <- n
			}})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.p.Replay(poller.ReplayRequest{ID: "r2", Stream: "1/9/in", From: from, To: to}); err == nil {
			t.Error("a replay of a stream not owned was accepted")
		}
		e.runFor(t, 2*time.Minute)
		var n int
		select {
		case n = <-done:
		default:
			t.Fatal("the replay was not done within 2 minutes")
		}

		e.pub.mu.Lock()
		count := map[string]int{}
		for _, ev := range e.pub.events[:before] {
			count[ev.ID]++
		}
		again := map[string]bool{}
		for _, ev := range e.pub.events[before:] {
			if count[ev.ID] > 0 {
				again[ev.ID] = true
			}
		}
		e.pub.mu.Unlock()
		if len(want) == 0 || n != len(want) {
			t.Errorf("the replay published %d events, the span holds %d calls", n, len(want))
		}
		for id := range want {
			if !again[id] {
				t.Errorf("call %s of the span was not published again", id)
			}
		}
		for id := range again {
			if !want[id] {
				t.Errorf("event %s published again, not a call of the span", id)
			}
		}
		st := e.p.Status(time.Now())
		if len(st.Replays) != 1 || st.Replays[0].State != "done" || st.Replays[0].Published != n {
			t.Errorf("/status replays %+v, want r1 done with %d published", st.Replays, n)
		}
	})
}
