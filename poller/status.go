package poller

import (
	"cmp"
	"slices"
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
	// StateFrom says where the stream's state came from when this process
	// started it: "local" (the store) or "changelog" (the state topic).
	StateFrom string `json:"state_from"`
}

// Status is the poller's state for /status: a summary of every owned
// stream, whatever the query, and the rows the query selected.
type Status struct {
	Now        time.Time      `json:"now"`
	Started    time.Time      `json:"started"`
	Streams    int            `json:"streams"`
	BudgetRate float64        `json:"request_budget_per_second"`
	Queued     map[string]int `json:"queued_turns"`
	Failing    int            `json:"streams_failing"`
	Behind     int            `json:"streams_behind"`
	// Unpolled counts the streams without a successful turn since the
	// process started.
	Unpolled int `json:"streams_unpolled"`
	// Rebuilt counts the streams whose state came from the changelog.
	Rebuilt int `json:"streams_rebuilt"`
	// Slots are the event topic partitions this group member owns (group
	// mode only).
	Slots []int `json:"slots,omitempty"`
	// Replays are the latest replays asked of this replica (Poller.Replay).
	Replays        []ReplayStatus `json:"replays,omitempty"`
	MinHeadroomSec float64        `json:"min_horizon_headroom_seconds"`
	// Horizon is the earliest instant the API returns now, under DayBoundary
	// in Zone (CALLPUB_CCMS_DAY_BOUNDARY_MODE, CALLPUB_CCMS_TIMEZONE).
	Horizon     time.Time `json:"api_horizon"`
	Zone        string    `json:"api_zone"`
	DayBoundary string    `json:"api_day_boundary"`
	// Freshness is how late the calls of the last minutes reached Kafka.
	Freshness Freshness `json:"freshness"`
	// Pace is what the pacer last worked out: the budget, how it is spent,
	// the intervals, and the price of CALLPUB_FRESHNESS_TARGET (pace.go).
	Pace PaceStatus `json:"pace"`
	// Matched counts the streams the query's filters select, on every page.
	Matched int            `json:"streams_matched"`
	Rows    []StreamStatus `json:"stream_status"`
	// NextAfter, when set, is the After of the next page: more rows match.
	NextAfter string `json:"next_after,omitempty"`
}

// StatusQuery selects the rows of /status. Its filters are applied before
// any row is built, and the zero value selects every stream but builds no
// row (Limit 0: the summary only).
type StatusQuery struct {
	Stream    string    // one stream, "1/25/in"
	VDN       int       // 0: every VDN
	Direction Direction // "": both
	Failing   bool      // only streams whose last turn failed
	Behind    bool      // only streams further behind than POLL_LAG + 2 × POLL_MAX_INTERVAL
	// After starts the page after this stream, in /status's order (VDN,
	// then direction as configured): the NextAfter of the page before. The
	// stream need not be owned.
	After Stream
	// Limit is the most rows built: 0 builds none, a negative Limit every
	// one that matches.
	Limit int
}

// Status returns the summary and the row of every owned stream.
func (p *Poller) Status(now time.Time) Status {
	return p.StatusOf(now, StatusQuery{Limit: -1})
}

// StatusOf returns the summary of every owned stream and the rows q
// selects, building only those.
func (p *Poller) StatusOf(now time.Time, q StatusQuery) Status {
	queued := p.sched.queued()
	s := Status{Now: now, Started: p.started, Streams: len(p.streams), BudgetRate: p.m.budget.Rate(),
		Queued: make(map[string]int, numLanes), Horizon: Horizon(now, p.reach), Zone: p.loc.String(),
		DayBoundary: string(p.reach.Mode()), Freshness: p.m.recent.summary(now), Pace: p.pace.snapshot(), Rows: []StreamStatus{},
		Slots: p.slots}
	for l := range numLanes {
		s.Queued[l.String()] = queued[l]
	}
	from := 0
	if q.After != (Stream{}) {
		from = p.after(q.After)
	}
	behind := p.cfg.behindLag()
	var minW time.Time // the earliest watermark has the least headroom
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, ls := range p.streams {
		w := p.watermark(ls, now)
		failing, late := ls.failure != nil && ls.failure.at.After(ls.lastOK), now.Sub(w) > behind
		if failing {
			s.Failing++
		}
		if late {
			s.Behind++
		}
		if ls.lastOK.IsZero() {
			s.Unpolled++
		}
		if ls.rebuilt {
			s.Rebuilt++
		}
		if i == 0 || w.Before(minW) {
			minW = w
		}
		if q.Stream != "" && ls.key != q.Stream || q.VDN != 0 && ls.VDN != q.VDN ||
			q.Direction != "" && ls.Dir != q.Direction || q.Failing && !failing || q.Behind && !late {
			continue
		}
		s.Matched++
		switch {
		case i < from || s.NextAfter != "":
		case q.Limit < 0 || len(s.Rows) < q.Limit:
			s.Rows = append(s.Rows, p.row(ls, now))
		case len(s.Rows) > 0: // a match beyond a full page
			s.NextAfter = s.Rows[len(s.Rows)-1].Stream
		}
	}
	s.MinHeadroomSec = Headroom(minW, now, p.reach).Seconds()
	s.Replays = p.replayStatus()
	return s
}

// after is the index of the first owned stream after st in /status's
// order: by VDN, then by direction in the configured order.
func (p *Poller) after(st Stream) int {
	rank := func(d Direction) int {
		if i := slices.Index(p.cfg.Directions, d); i >= 0 {
			return i
		}
		return len(p.cfg.Directions)
	}
	i, _ := slices.BinarySearchFunc(p.streams, st, func(ls *live, t Stream) int {
		if c := cmp.Compare(ls.VDN, t.VDN); c != 0 {
			return c
		}
		if c := cmp.Compare(rank(ls.Dir), rank(t.Dir)); c != 0 {
			return c
		}
		return -1 // t itself sorts before its successors: land after it
	})
	return i
}

// row renders one stream; callers hold p.mu.
func (p *Poller) row(ls *live, now time.Time) StreamStatus {
	r := StreamStatus{Stream: ls.key, VDN: ls.VDN, Direction: string(ls.Dir), Cursor: ls.state.Cursor,
		Pending: len(ls.state.Pending), OldestPending: oldestPending(ls.state.Pending), Gaps: ls.gaps,
		LastOK: ls.lastOK, StateFrom: "local"}
	if ls.failure != nil {
		r.LastError, r.LastErrorAt = ls.failure.err, ls.failure.at
	}
	if ls.rebuilt {
		r.StateFrom = "changelog"
	}
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
