package poller

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// lane orders kinds of work. Lower lanes win when several are due.
type lane uint8

const (
	laneFresh      lane = iota // the frequent step near now
	laneSweep                  // long lookback, less often
	laneReconcile              // all of yesterday, once a day
	laneBackfill               // a fresh step of a stream far behind now
	laneLastChance             // all of yesterday once more, just before it leaves the API's reach
	laneReplay                 // a span asked for again (Poller.Replay), re-published
	numLanes
)

func (l lane) String() string {
	return [...]string{"fresh", "sweep", "reconcile", "backfill", "last_chance", "replay"}[l]
}

// turn is one unit of scheduled work: a lane of a stream, due at a time.
type turn struct {
	// The small fields come first, packed, so that a turn takes 48 bytes:
	// a replica holds four per stream.
	stream int32 // index into the scheduler's streams
	index  int32 // in its heap
	lane   lane
	// failed: the lane's last run failed, so its success is a recovery.
	failed bool
	// hold: it failed in a way the return of a dependency mends, and waits
	// for a probe or a wake-up instead of its due time (see recovery below).
	hold bool
	due  time.Time
	// after: the server's Retry-After of a held turn's failure; no probe
	// starts sooner than that after it.
	after time.Duration
}

// Recovery after failures. A turn that failed in a way the return of CC-CMS
// or Kafka mends (Poller.retry decides) waits for neither a due time nor a
// backoff of its own: the scheduler holds it, and
//
//   - probes: while turns are held, one of them at a time runs as a probe,
//     the first probeEvery to 2·probeEvery (jittered) after a failure, then
//     at most one every probeEvery to 2·probeEvery for the whole poller, the
//     longest held first; a failure whose answer carried a Retry-After (a
//     429 or 503) puts the next probe off until then, capped at
//     CALLPUB_POLL_RETRY_MAX;
//   - holds more: a turn that fails outside a probe makes the poller failing,
//     and then every turn that comes due is held too, until a turn succeeds.
//     An outage thus costs about one failed turn per worker, then one probe
//     every second or two, however many streams there are (a turn that
//     succeeds without the dependency, with nothing to read or publish, ends
//     the failing and lets the turns due meanwhile try once more);
//   - wakes: when a turn that had failed succeeds, the dependency is back:
//     every held turn is due again, spread over wakeSpread so that they do
//     not all ask the budget at once.
//
// A failing stream whose peers succeed is probed on its own, one turn every
// second or two at most: its failure may be a partial outage (its
// partition's leader) as well as its own. The shared budget still paces
// every request, probes and woken turns alike, and slows them all only when
// most recent answers push back (ccms.Budget); a server's Retry-After delays
// the page that got it, whose retries wait for it inside the step.
const (
	probeEvery = time.Second
	wakeSpread = 2 * time.Second
	// deferred: what freshFirst adds to the key of a deferred lane's turn,
	// longer than any fresh turn waits.
	deferred = 1000 * time.Hour
)

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
	// freshFirst, when set and true, puts a due fresh turn before any due
	// sweep, reconciliation or backfill turn (the pacer's freshFirst: a short
	// budget that those lanes overspend). The last chance keeps its place.
	freshFirst func() bool

	// Recovery (see above).
	failing   bool    // a turn failed outside a probe and none succeeded since
	retries   []*turn // failed turns held for a probe or a wake-up, longest held first
	waiting   []*turn // turns that came due while failing, longest held first
	probe     *turn   // the probe in flight, if any
	nextProbe time.Time
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
		laneReplay:     6 * pollInterval,
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

// pick returns the best due turn, or how long until one may be (-1: nothing
// queued). A probe, when one may start, comes first; while the poller is
// failing, due turns are held instead.
func (s *scheduler) pick(now time.Time) (*turn, time.Duration) {
	if t := s.startProbe(now); t != nil {
		return t, 0
	}
	var best *turn
	first := s.freshFirst != nil && s.freshFirst()
	key := func(t *turn) time.Time {
		k := t.due.Add(s.offset[t.lane])
		if first && t.lane != laneFresh && t.lane != laneLastChance {
			k = k.Add(deferred)
		}
		return k
	}
	for l := range numLanes {
		h := &s.heaps[l]
		for h.Len() > 0 && !(*h)[0].due.After(now) && (s.failing || s.busy[(*h)[0].stream]) {
			t := heap.Pop(h).(*turn)
			if s.failing {
				s.waiting = append(s.waiting, t)
			} else {
				s.parked[t.stream] = append(s.parked[t.stream], t)
			}
		}
		if h.Len() == 0 || (*h)[0].due.After(now) {
			continue
		}
		if c := (*h)[0]; best == nil || key(c).Before(key(best)) {
			best = c
		}
	}
	if best != nil {
		heap.Remove(&s.heaps[best.lane], int(best.index))
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
	if s.probe == nil && s.probeCandidate() != nil {
		if d := s.nextProbe.Sub(now); wait < 0 || d < wait {
			wait = d
		}
	}
	return nil, wait
}

// startProbe hands out a held turn as the probe when none is in flight and
// the last one started long enough ago; callers hold s.mu.
func (s *scheduler) startProbe(now time.Time) *turn {
	if s.probe != nil || now.Before(s.nextProbe) {
		return nil
	}
	q := s.probeCandidate()
	if q == nil {
		return nil
	}
	i := slices.IndexFunc(*q, func(t *turn) bool { return !s.busy[t.stream] })
	t := (*q)[i]
	*q = slices.Delete(*q, i, i+1)
	s.busy[t.stream] = true
	s.probe = t
	s.nextProbe = now.Add(probeEvery + jitter(probeEvery))
	return t
}

// probeCandidate returns the queue of the next probe: turns held because the
// poller was failing first (one that succeeds ends the failing), then failed
// turns; nil when every held turn's stream is busy.
func (s *scheduler) probeCandidate() *[]*turn {
	for _, q := range []*[]*turn{&s.waiting, &s.retries} {
		if slices.ContainsFunc(*q, func(t *turn) bool { return !s.busy[t.stream] }) {
			return q
		}
	}
	return nil
}

// done frees t's stream, queues its follow-up turns (possibly none) and reads
// the outcome of t from them: a held follow-up means t failed in a way a
// dependency's return mends, which outside a probe makes the poller failing;
// a follow-up that has not failed after a t that had is a recovery, which
// wakes every held turn; any other success ends the failing.
func (s *scheduler) done(t *turn, follow ...*turn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.busy[t.stream] = false
	probe := s.probe == t
	if probe {
		s.probe = nil
	}
	for _, p := range s.parked[t.stream] {
		heap.Push(&s.heaps[p.lane], p)
	}
	s.parked[t.stream] = s.parked[t.stream][:0]
	failed, held := false, false
	for _, f := range follow {
		failed = failed || f.failed
		if f.hold {
			held = true
			s.retries = append(s.retries, f)
			if f.after > 0 && s.nextProbe.Before(now.Add(f.after)) {
				s.nextProbe = now.Add(f.after) // the server said when
			}
			continue
		}
		heap.Push(&s.heaps[f.lane], f)
	}
	switch {
	case len(follow) == 0: // the outcome is unknown
		if probe {
			s.nextProbe = now // a probe that tried nothing taught nothing: the next may start
		}
	case failed:
		if held && !probe {
			s.failing = true
			if s.nextProbe.Before(now) { // the first probe after a failure waits too
				s.nextProbe = now.Add(probeEvery + jitter(probeEvery))
			}
		}
	case t.failed:
		s.recovered(now)
	case s.failing:
		s.failing = false
		s.release()
		if probe {
			s.nextProbe = now // a failed turn may be the next probe at once
		}
	}
	s.broadcast()
}

// recovered ends the failing and makes every held turn due: failed turns
// spread over wakeSpread from now, the others when they were due. Callers
// hold s.mu.
func (s *scheduler) recovered(now time.Time) {
	s.failing = false
	for _, t := range s.retries {
		t.due = now.Add(jitter(wakeSpread))
		heap.Push(&s.heaps[t.lane], t)
	}
	s.retries = nil
	s.release()
}

// release queues again the turns held because the poller was failing.
// Callers hold s.mu.
func (s *scheduler) release() {
	for _, t := range s.waiting {
		heap.Push(&s.heaps[t.lane], t)
	}
	s.waiting = nil
}

// queued reports the number of turns waiting, per lane, held ones included
// (for tests and /status).
func (s *scheduler) queued() [numLanes]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n [numLanes]int
	for l := range numLanes {
		n[l] = s.heaps[l].Len()
	}
	count := func(ts []*turn) {
		for _, t := range ts {
			n[t.lane]++
		}
	}
	for _, ps := range s.parked {
		count(ps)
	}
	count(s.retries)
	count(s.waiting)
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
	h[i].index = int32(i)
	h[j].index = int32(j)
}
func (h *turnHeap) Push(x any) {
	t := x.(*turn)
	t.index = int32(len(*h))
	*h = append(*h, t)
}
func (h *turnHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}
