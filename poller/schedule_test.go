package poller

import (
	"context"
	"sync"
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
		wantFirst lane          // the other turn's lane when it is not fresh
		first     bool          // the pacer's freshFirst
	}{
		{"fresh work beats a sweep that just became due", 0, laneFresh, false},
		{"a sweep that waited longer than its offset beats fresh work", -3 * time.Second, laneSweep, false},
		{"a sweep that waited long loses to fresh work while a short budget is overspent by sweeps", -time.Hour, laneFresh, true},
		{"a last chance that waited keeps its place while a short budget is overspent by sweeps", -3 * time.Second, laneLastChance, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newScheduler(2, time.Second) // sweep offset: 2s, last chance 1s
				s.freshFirst = func() bool { return c.first }
				other := laneSweep
				if c.wantFirst == laneLastChance {
					other = laneLastChance
				}
				now := time.Now()
				s.add(&turn{stream: 0, lane: laneFresh, due: now})
				s.add(&turn{stream: 1, lane: other, due: now.Add(c.sweepDue)})
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
			s.add(&turn{stream: int32(i), lane: laneFresh, due: now.Add(jitter(time.Second))})
			s.add(&turn{stream: int32(i), lane: laneSweep, due: now.Add(10 * time.Second)})
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

// work runs workers that take turns from s until ctx ends; each turn takes
// took and finish decides its follow-up turn.
func work(ctx context.Context, s *scheduler, workers int, took time.Duration, finish func(*turn) *turn) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				t, err := s.next(ctx)
				if err != nil {
					return
				}
				time.Sleep(took) // the turn's work
				s.done(t, finish(t))
			}
		})
	}
	wg.Wait()
}

// A stream failing on its own (its partition's leader is away, or a fault
// of its own) is probed every second or two, while the healthy streams keep
// their pace: its failures hold nobody else's turns beyond the first probe.
func TestSchedulerProbesAStreamFailingAloneWhileTheOthersKeepTheirPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const streams = 20
		s := newScheduler(streams, 5*time.Second)
		start := time.Now()
		for i := range streams {
			s.add(&turn{stream: int32(i), lane: laneFresh, due: start.Add(time.Duration(i) * 250 * time.Millisecond)})
		}
		var mu sync.Mutex
		runs := make([]int, streams)
		late := time.Duration(0) // the healthy turns' longest delay past their due after the first 10 s
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		work(ctx, s, 4, 100*time.Millisecond, func(tt *turn) *turn {
			mu.Lock()
			defer mu.Unlock()
			runs[tt.stream]++
			if tt.stream == 0 {
				return &turn{stream: 0, lane: laneFresh, due: time.Now(), failed: true, hold: true}
			}
			if started := time.Now().Add(-100 * time.Millisecond); started.Sub(start) > 10*time.Second {
				late = max(late, started.Sub(tt.due))
			}
			return &turn{stream: tt.stream, lane: laneFresh, due: time.Now().Add(5 * time.Second)}
		})
		if runs[0] < 60 || runs[0] > 121 {
			t.Errorf("the failing stream ran %d times in 2 minutes, want a probe every 1 to 2 s (60 to 120)", runs[0])
		}
		if late > 500*time.Millisecond { // a turn may wait for a worker; a hold would last until the next probe (1-2 s)
			t.Errorf("healthy turns ran up to %v late while one stream failed", late)
		}
		for i := 1; i < streams; i++ {
			if runs[i] < 23 {
				t.Errorf("healthy stream %d ran %d times in 2 minutes, want every 5 s", i, runs[i])
			}
		}
	})
}

// A failure that needs a person (auth, a permanent error) is not probed:
// it waits its own backoff, even while other streams are probed and woken.
func TestSchedulerLeavesAFailureThatNeedsAPersonToItsBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(3, 5*time.Second)
		start := time.Now()
		for i := range 3 {
			s.add(&turn{stream: int32(i), lane: laneFresh, due: start})
		}
		var mu sync.Mutex
		var permanent []time.Duration // when stream 0 ran
		ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
		defer cancel()
		work(ctx, s, 2, 100*time.Millisecond, func(tt *turn) *turn {
			mu.Lock()
			defer mu.Unlock()
			now := time.Now()
			switch {
			case tt.stream == 0:
				permanent = append(permanent, now.Add(-100*time.Millisecond).Sub(start))
				return &turn{stream: 0, lane: laneFresh, due: now.Add(time.Minute), failed: true}
			case tt.stream == 1 && now.Sub(start) < 40*time.Second: // down for 40 s, probed, then woken
				return &turn{stream: 1, lane: laneFresh, due: now, failed: true, hold: true}
			}
			return &turn{stream: tt.stream, lane: laneFresh, due: now.Add(5 * time.Second)}
		})
		if len(permanent) != 3 {
			t.Fatalf("the stream that needs a person ran at %v, want 3 runs a minute apart", permanent)
		}
		for i := 1; i < len(permanent); i++ {
			if gap := permanent[i] - permanent[i-1]; gap < time.Minute || gap > time.Minute+3*time.Second {
				t.Errorf("the stream that needs a person ran at %v: %v apart, want about its backoff of 1m", permanent, gap)
			}
		}
	})
}

// The wait for the next probe does not spin while every held turn's stream
// is busy: the scheduler waits for the stream to be done instead.
func TestSchedulerDoesNotProbeABusyStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(1, time.Second)
		now := time.Now()
		s.add(&turn{stream: 0, lane: laneSweep, due: now})
		sweep, err := s.next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		s.retries = append(s.retries, &turn{stream: 0, lane: laneFresh, due: now, failed: true, hold: true})
		s.mu.Unlock()
		got := make(chan *turn, 1)
		go func() {
			probe, _ := s.next(t.Context())
			got <- probe
		}()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		select {
		case tt := <-got:
			t.Fatalf("probed lane %v of a busy stream", tt.lane)
		default:
		}
		s.done(sweep, &turn{stream: 0, lane: laneSweep, due: time.Now().Add(time.Hour)})
		if probe := <-got; probe.lane != laneFresh {
			t.Errorf("probed lane %v, want the held fresh turn", probe.lane)
		}
	})
}

// A held turn whose failure carried the server's Retry-After is not probed
// before it, where one without waits the usual one to two seconds.
func TestAProbeWaitsForTheServersRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name     string
		after    time.Duration
		min, max time.Duration
	}{
		{name: "without Retry-After the probe comes after 1 to 2 s", min: probeEvery, max: 2 * probeEvery},
		{name: "a Retry-After of 30 s puts the probe off by 30 s", after: 30 * time.Second, min: 30 * time.Second, max: 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newScheduler(1, time.Second)
				start := time.Now()
				s.add(&turn{stream: 0, lane: laneFresh, due: start})
				first, err := s.next(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				s.done(first, &turn{stream: 0, lane: laneFresh, due: start, failed: true, hold: true, after: tc.after})
				probe, err := s.next(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if waited := time.Since(start); waited < tc.min || waited > tc.max {
					t.Errorf("probed after %v, want %v to %v", waited, tc.min, tc.max)
				}
				if !probe.failed {
					t.Error("the probe is not the held turn")
				}
			})
		})
	}
}
