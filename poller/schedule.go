package poller

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// lane orders kinds of work. Lower lanes win when several are due.
type lane int

const (
	laneFresh      lane = iota // the frequent step near now
	laneSweep                  // long lookback, less often
	laneReconcile              // all of yesterday, once a day
	laneBackfill               // a fresh step of a stream far behind now
	laneLastChance             // all of yesterday once more, just before it leaves the API's reach
	numLanes
)

func (l lane) String() string {
	return [...]string{"fresh", "sweep", "reconcile", "backfill", "last_chance"}[l]
}

// turn is one unit of scheduled work: a lane of a stream, due at a time.
type turn struct {
	stream int // index into the scheduler's streams
	lane   lane
	due    time.Time
	index  int // in its heap
}

// scheduler hands due turns to workers. Each stream has at most one turn per
// lane queued, and a stream is never given to two workers at once, so a
// stream never has two batches in flight and retries cannot reorder its
// events. Among due turns the lowest key wins, where key = due + the lane's
// offset: fresh work goes first, but a sweep or reconciliation that has waited
// longer than its offset beats fresh work that just became due, so no lane
// starves under a saturated budget.
type scheduler struct {
	mu      sync.Mutex
	heaps   [numLanes]turnHeap
	offset  [numLanes]time.Duration
	busy    []bool
	parked  [][]*turn // turns that came due while their stream was busy
	changed chan struct{}
}

func newScheduler(streams int, pollInterval time.Duration) *scheduler {
	s := &scheduler{
		busy:    make([]bool, streams),
		parked:  make([][]*turn, streams),
		changed: make(chan struct{}),
	}
	s.offset = [numLanes]time.Duration{
		laneFresh:     0,
		laneSweep:     2 * pollInterval,
		laneReconcile: 4 * pollInterval,
		laneBackfill:  6 * pollInterval,
		// The last chance has a deadline: it runs before anything but fresh work.
		laneLastChance: pollInterval,
	}
	return s
}

// add queues a turn. Safe from any goroutine.
func (s *scheduler) add(t *turn) {
	s.mu.Lock()
	heap.Push(&s.heaps[t.lane], t)
	s.broadcast()
	s.mu.Unlock()
}

// broadcast wakes every waiting worker; callers hold s.mu.
func (s *scheduler) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// next blocks until a turn is due and its stream is free, marks the stream
// busy and returns the turn. It returns ctx.Err() when ctx ends.
func (s *scheduler) next(ctx context.Context) (*turn, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err // even when turns are due: a stop is a stop
		}
		s.mu.Lock()
		t, wait := s.pick(time.Now())
		changed := s.changed
		s.mu.Unlock()
		if t != nil {
			return t, nil
		}
		var timer <-chan time.Time
		var tm *time.Timer
		if wait >= 0 {
			tm = time.NewTimer(wait)
			timer = tm.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-timer:
		}
		if tm != nil {
			tm.Stop()
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// pick returns the best due turn, or how long until one may be (-1: nothing queued).
func (s *scheduler) pick(now time.Time) (*turn, time.Duration) {
	var best *turn
	for l := range numLanes {
		h := &s.heaps[l]
		for h.Len() > 0 && !(*h)[0].due.After(now) && s.busy[(*h)[0].stream] {
			t := heap.Pop(h).(*turn)
			s.parked[t.stream] = append(s.parked[t.stream], t)
		}
		if h.Len() == 0 || (*h)[0].due.After(now) {
			continue
		}
		if c := (*h)[0]; best == nil || c.due.Add(s.offset[c.lane]).Before(best.due.Add(s.offset[best.lane])) {
			best = c
		}
	}
	if best != nil {
		heap.Remove(&s.heaps[best.lane], best.index)
		s.busy[best.stream] = true
		return best, 0
	}
	wait := time.Duration(-1)
	for l := range numLanes {
		if h := s.heaps[l]; h.Len() > 0 {
			if d := h[0].due.Sub(now); wait < 0 || d < wait {
				wait = d
			}
		}
	}
	return nil, wait
}

// done frees t's stream and queues its follow-up turns (possibly none).
func (s *scheduler) done(t *turn, follow ...*turn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.busy[t.stream] = false
	for _, p := range s.parked[t.stream] {
		heap.Push(&s.heaps[p.lane], p)
	}
	s.parked[t.stream] = s.parked[t.stream][:0]
	for _, f := range follow {
		heap.Push(&s.heaps[f.lane], f)
	}
	s.broadcast()
}

// queued reports the number of turns waiting, per lane (for tests and /status).
func (s *scheduler) queued() [numLanes]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n [numLanes]int
	for l := range numLanes {
		n[l] = s.heaps[l].Len()
	}
	for _, ps := range s.parked {
		for _, p := range ps {
			n[p.lane]++
		}
	}
	return n
}

// jitter returns a uniformly random duration in [0, d).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

type turnHeap []*turn

func (h turnHeap) Len() int           { return len(h) }
func (h turnHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h turnHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *turnHeap) Push(x any) {
	t := x.(*turn)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *turnHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}
