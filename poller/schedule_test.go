package poller

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestSchedulerNeverGivesOneStreamToTwoWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(1, time.Second)
		now := time.Now()
		s.add(&turn{stream: 0, lane: laneFresh, due: now})
		s.add(&turn{stream: 0, lane: laneSweep, due: now})
		first, err := s.next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan *turn, 1)
		go func() {
			second, _ := s.next(t.Context())
			got <- second
		}()
		synctest.Wait()
		select {
		case tt := <-got:
			t.Fatalf("second worker got lane %v of a busy stream", tt.lane)
		default:
		}
		s.done(first)
		second := <-got
		if second.lane == first.lane {
			t.Errorf("both turns were %v", first.lane)
		}
	})
}

func TestSchedulerPrefersFreshButAgesOtherLanes(t *testing.T) {
	cases := []struct {
		name      string
		sweepDue  time.Duration // relative to now; fresh is due now
		wantFirst lane
	}{
		{"fresh work beats a sweep that just became due", 0, laneFresh},
		{"a sweep that waited longer than its offset beats fresh work", -3 * time.Second, laneSweep},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newScheduler(2, time.Second) // sweep offset: 2s
				now := time.Now()
				s.add(&turn{stream: 0, lane: laneFresh, due: now})
				s.add(&turn{stream: 1, lane: laneSweep, due: now.Add(c.sweepDue)})
				tt, err := s.next(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if tt.lane != c.wantFirst {
					t.Errorf("first turn is %v, want %v", tt.lane, c.wantFirst)
				}
			})
		})
	}
}

func TestSchedulerWaitsForTheEarliestDueTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(1, time.Second)
		start := time.Now()
		s.add(&turn{stream: 0, lane: laneFresh, due: start.Add(90 * time.Second)})
		tt, err := s.next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 90*time.Second || tt.stream != 0 {
			t.Errorf("got stream %d after %v, want stream 0 after 90s", tt.stream, waited)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if _, err := s.next(ctx); err == nil {
			t.Error("next returned a turn from an empty queue")
		}
	})
}

// Under a saturated budget (fresh work alone exceeds what one worker can do),
// every stream still gets its fresh turns and its sweeps.
func TestSchedulerStarvesNoStreamAndNoLane(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const streams = 50
		s := newScheduler(streams, time.Second)
		now := time.Now()
		for i := range streams {
			s.add(&turn{stream: i, lane: laneFresh, due: now.Add(jitter(time.Second))})
			s.add(&turn{stream: i, lane: laneSweep, due: now.Add(10 * time.Second)})
		}
		fresh := make([]int, streams)
		sweeps := make([]int, streams)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		for {
			tt, err := s.next(ctx)
			if err != nil {
				break
			}
			time.Sleep(100 * time.Millisecond) // the work: 10 turns/s against 50 fresh turns/s wanted
			next := &turn{stream: tt.stream, lane: tt.lane, due: time.Now().Add(time.Second)}
			if tt.lane == laneSweep {
				sweeps[tt.stream]++
				next.due = time.Now().Add(10 * time.Second)
			} else {
				fresh[tt.stream]++
			}
			s.done(tt, next)
		}
		minF, maxF := fresh[0], fresh[0]
		for i := range streams {
			minF, maxF = min(minF, fresh[i]), max(maxF, fresh[i])
			if sweeps[i] == 0 {
				t.Errorf("stream %d never swept", i)
			}
		}
		if minF == 0 || maxF > 2*minF+2 {
			t.Errorf("fresh turns per stream range from %d to %d: unfair", minF, maxF)
		}
	})
}
