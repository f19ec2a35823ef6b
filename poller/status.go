package poller

import (
	"time"
)

// StreamStatus is one stream's row on /status.
type StreamStatus struct {
	Stream          string    `json:"stream"`
	VDN             int       `json:"vdn"`
	Direction       string    `json:"direction"`
	Cursor          time.Time `json:"cursor,omitzero"`
	LagSeconds      float64   `json:"lag_seconds"`
	HeadroomSeconds float64   `json:"horizon_headroom_seconds"`
	Pending         int       `json:"pending"`
	OldestPending   time.Time `json:"oldest_pending,omitzero"`
	Gaps            int       `json:"gaps"`
	LastOK          time.Time `json:"last_ok,omitzero"`
	LastError       string    `json:"last_error,omitempty"`
	LastErrorAt     time.Time `json:"last_error_at,omitzero"`
}

// Status is the poller's state for /status.
type Status struct {
	Now            time.Time      `json:"now"`
	Started        time.Time      `json:"started"`
	Streams        int            `json:"streams"`
	BudgetRate     float64        `json:"request_budget_per_second"`
	Queued         map[string]int `json:"queued_turns"`
	Failing        int            `json:"streams_failing"`
	Behind         int            `json:"streams_behind"`
	MinHeadroomSec float64        `json:"min_horizon_headroom_seconds"`
	// Horizon is the earliest instant the API returns now, under DayBoundary
	// in Zone (CALLPUB_CCMS_DAY_BOUNDARY_MODE, CALLPUB_CCMS_TIMEZONE).
	Horizon     time.Time      `json:"api_horizon"`
	Zone        string         `json:"api_zone"`
	DayBoundary string         `json:"api_day_boundary"`
	Rows        []StreamStatus `json:"stream_status"`
}

// Status returns a snapshot of every owned stream.
func (p *Poller) Status(now time.Time) Status {
	q := p.sched.queued()
	s := Status{Now: now, Started: p.started, Streams: len(p.streams), BudgetRate: p.m.budget.Rate(),
		Queued: map[string]int{}, Horizon: Horizon(now, p.reach), Zone: p.loc.String(),
		DayBoundary: string(p.reach.Mode())}
	for l := range numLanes {
		s.Queued[l.String()] = q[l]
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, ls := range p.streams {
		r := p.row(ls, now)
		if ls.lastErrAt.After(ls.lastOK) {
			s.Failing++
		}
		if r.LagSeconds > p.cfg.behindLag().Seconds() {
			s.Behind++
		}
		if i == 0 || r.HeadroomSeconds < s.MinHeadroomSec {
			s.MinHeadroomSec = r.HeadroomSeconds
		}
		s.Rows = append(s.Rows, r)
	}
	return s
}

// row renders one stream; callers hold p.mu.
func (p *Poller) row(ls *live, now time.Time) StreamStatus {
	r := StreamStatus{Stream: ls.key, VDN: ls.VDN, Direction: string(ls.Dir), Cursor: ls.state.Cursor,
		Pending: len(ls.state.Pending), OldestPending: oldestPending(ls.state.Pending), Gaps: ls.gaps,
		LastOK: ls.lastOK, LastError: ls.lastErr, LastErrorAt: ls.lastErrAt}
	w := p.watermark(ls, now)
	r.LagSeconds = now.Sub(w).Seconds()
	r.HeadroomSeconds = Headroom(w, now, p.reach).Seconds()
	return r
}

// watermark is the point before which everything of the stream is published:
// the cursor, or the oldest pending call if older. A stream with no cursor yet
// counts from the API's horizon.
func (p *Poller) watermark(ls *live, now time.Time) time.Time {
	w := ls.state.Cursor
	if w.IsZero() {
		w = Horizon(now, p.reach)
	}
	if op := oldestPending(ls.state.Pending); !op.IsZero() && op.Before(w) {
		w = op
	}
	return w
}
