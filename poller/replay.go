package poller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/callpub/callpub/dedupe"
)

// Replays: a span of a stream read again and every completed call in it
// published again, with the id it was first published with, while the
// stream goes on. A replay turn runs in its own lane (laneReplay), paced by
// the shared budget like any other, reads the span as one window — the
// client pages and splits it — and commits nothing but its seen marks (the
// cursor, pending calls and seals stay as they are).

// ReplayRequest asks for a span of a stream again.
type ReplayRequest struct {
	ID       string // names the request in logs and /status
	Stream   string // "1/25/in"
	From, To time.Time
	// Done, when set, is called once the replay committed (err nil) or
	// could not be done (a span outside the API's reach). A turn that
	// fails is retried as any turn is; Done waits for its outcome.
	Done func(published int, err error)
}

// ReplayStatus is a replay on /status.
type ReplayStatus struct {
	ID        string    `json:"id"`
	Stream    string    `json:"stream"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	State     string    `json:"state"` // queued, done or failed
	Published int       `json:"published"`
	Error     string    `json:"error,omitempty"`
	DoneAt    time.Time `json:"done_at,omitzero"`
}

// ErrNotOwned is returned by Replay for a stream this poller does not run.
var ErrNotOwned = errors.New("stream not owned by this replica")

// replayShown is how many replays /status lists, the latest.
const replayShown = 20

// replayQueue is a stream's replays asked for and not yet done, the first
// in hand; queued: a replay turn is queued or running.
type replayQueue struct {
	list   []*replay
	queued bool
}

type replay struct {
	ReplayRequest
	status *ReplayStatus
}

// Replay queues r. It returns ErrNotOwned for a stream this poller does not
// run, and an error for an empty span; the outcome comes through r.Done,
// the log and /status.
func (p *Poller) Replay(r ReplayRequest) error {
	i := slices.IndexFunc(p.streams, func(ls *live) bool { return ls.key == r.Stream })
	if i < 0 {
		return fmt.Errorf("replay %s: %w", r.Stream, ErrNotOwned)
	}
	if !r.From.Before(r.To) {
		return fmt.Errorf("replay %s: from %v is not before to %v", r.Stream, r.From, r.To)
	}
	ls := p.streams[i]
	st := &ReplayStatus{ID: r.ID, Stream: r.Stream, From: r.From, To: r.To, State: "queued"}
	p.mu.Lock()
	q := p.replays[ls]
	if q == nil {
		q = &replayQueue{}
		if p.replays == nil {
			p.replays = map[*live]*replayQueue{}
		}
		p.replays[ls] = q
	}
	q.list = append(q.list, &replay{ReplayRequest: r, status: st})
	p.replayLog = append(p.replayLog, st)
	if len(p.replayLog) > replayShown {
		p.replayLog = slices.Delete(p.replayLog, 0, len(p.replayLog)-replayShown)
	}
	queue := !q.queued
	q.queued = true
	p.mu.Unlock()
	if queue {
		p.sched.add(&turn{stream: int32(i), lane: laneReplay, due: time.Now()})
	}
	p.log.Info("replay queued", "id", r.ID, "stream", r.Stream, "from", r.From, "to", r.To)
	return nil
}

// moreReplays reports whether the stream has replays left after the turn,
// and otherwise lets the next Replay queue a turn.
func (p *Poller) moreReplays(ls *live) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.replays[ls]
	if q == nil || len(q.list) == 0 {
		delete(p.replays, ls) // the next Replay queues a turn
		return false
	}
	return true
}

// replayStep runs the stream's first replay: its span, within the API's
// reach, read and every completed call in it published again.
func (p *Poller) replayStep(ctx context.Context, ls *live, now time.Time) (outcome, error) {
	p.mu.Lock()
	q := p.replays[ls]
	if q == nil || len(q.list) == 0 {
		p.mu.Unlock()
		return outcome{skipped: true}, nil
	}
	r := q.list[0]
	p.mu.Unlock()
	w := Window{Start: maxTime(r.From, Horizon(now, p.reach)), End: minTime(r.To, now.Add(-p.cfg.Lag))}
	if w.Empty() {
		p.replayDone(ls, r, 0, fmt.Errorf("the span [%v, %v) is outside the API's reach [%v, %v) now",
			r.From, r.To, Horizon(now, p.reach), now.Add(-p.cfg.Lag)), now)
		return outcome{skipped: true}, nil
	}
	// In pieces, as the long lanes read (pieces.go). A replay that fails
	// midway publishes its earlier pieces again when it is tried again.
	pl := plan{lane: laneReplay, read: w, replay: true, batch: dedupe.Batch{Stream: ls.key}}
	t, err := p.readInPieces(ctx, ls, pl, now)
	if err != nil {
		return outcome{}, err
	}
	p.replayDone(ls, r, t.published, nil, now)
	return outcome{}, nil
}

// deliverReplay publishes every completed call of c again, as first
// published (no update flag: the id without the content hash), then logs
// the state and commits their seen marks. Rows that cannot be published were
// reported when first read and are not again.
func (p *Poller) deliverReplay(ctx context.Context, ls *live, pl plan, c classified, now time.Time) (int, error) {
	items := make([]item, 0, len(c.items))
	for _, it := range c.items {
		if !it.unended {
			it.key.Update = false
			items = append(items, it)
		}
	}
	items, events, _ := p.encode(items, now)
	if len(events) > 0 {
		if err := p.pub.Publish(ctx, events...); err != nil {
			return 0, fmt.Errorf("publish %d replayed events: %w", len(events), err)
		}
	}
	b := c.batch(pl.batch, items)
	b.Pending, b.Resolved = nil, nil // the fresh lane keeps those
	if err := p.logState(ctx, ls, &b); err != nil {
		return 0, err
	}
	if err := p.store.Commit(b); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	p.mu.Lock()
	ls.state = ls.state.Apply(b)
	p.mu.Unlock()
	p.m.replayed.Add(float64(len(events)))
	if len(events) > 0 {
		p.onPub(events)
	}
	return len(events), nil
}

// replayDone ends the stream's first replay.
func (p *Poller) replayDone(ls *live, r *replay, published int, err error, now time.Time) {
	p.mu.Lock()
	if q := p.replays[ls]; q != nil {
		q.list = q.list[1:]
	}
	r.status.Published, r.status.DoneAt, r.status.State = published, now, "done"
	if err != nil {
		r.status.State, r.status.Error = "failed", err.Error()
	}
	p.mu.Unlock()
	if err != nil {
		p.log.Error("replay not done", "id", r.ID, "stream", r.Stream, "from", r.From, "to", r.To, "err", err)
	} else {
		p.log.Info("replay done", "id", r.ID, "stream", r.Stream, "from", r.From, "to", r.To, "published", published)
	}
	if r.Done != nil {
		r.Done(published, err)
	}
}

// replayStatus copies the latest replays; callers hold p.mu.
func (p *Poller) replayStatus() []ReplayStatus {
	out := make([]ReplayStatus, len(p.replayLog))
	for i, st := range p.replayLog {
		out[i] = *st
	}
	return out
}
