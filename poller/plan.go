package poller

import (
	"time"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller/ccms"
)

// plan is what one turn of a stream does: the window it reads, and what it
// records besides the calls it finds. Planners make plans from the stream's
// state and the time alone; they read and write nothing.
type plan struct {
	lane lane
	read Window // Empty: nothing to read
	// skip: nothing to read or record now; the lane comes back later (at
	// wait when it is set).
	skip bool
	wait time.Time
	// batch holds what the turn records besides the calls: the stream,
	// cursor, last sweep, sealed day and gaps. classify and deliver add the
	// calls.
	batch dedupe.Batch
	// seal, when not empty, is the day batch.SealedDay: the turn publishes
	// that day's sealed record after the day's events.
	seal Window
	// unendedBefore: a call still running whose filter time is before it
	// is published as a call without an end (zero: none is).
	unendedBefore time.Time
	// behind: the fresh cursor is still far behind now after this turn.
	behind bool
	// idle: the fresh cursor is already at now minus the lag.
	idle bool
	// replay: a span asked for again (replay.go): every completed call read
	// is published again, as first published, and nothing else changes.
	replay bool
	// maxRows, when positive, is the most rows the read may return in one
	// batch: a window found to hold more is read again narrower
	// (ccms.Window.MaxRows).
	maxRows int
	// whole and earlier, on the last of several pieces a long lane reads
	// its window in (pieces.go): the whole window, and what the earlier
	// pieces found. The day's seal accounts for all of it.
	whole   Window
	earlier tally
}

// planner makes the plans of every lane. Its fields are configuration.
type planner struct {
	cfg      Config
	reach    ccms.Reach // Loc is never nil
	wc       WindowConfig
	pageSize int // rows of one page of the Source (Deps.PageSize)
}

// plan dispatches to the lane's planner. The backfill lane is the fresh lane
// of a stream far behind now.
func (pl planner) plan(key string, l lane, st dedupe.StreamState, d density, now time.Time) plan {
	var p plan
	switch l {
	case laneFresh, laneBackfill:
		p = pl.fresh(st, d, now)
	case laneSweep:
		p = pl.sweep(st, now)
	case laneReconcile:
		p = pl.reconcile(st, now)
	case laneLastChance:
		p = pl.lastChance(st, now)
	case laneReplay:
		p.skip = true // planned by step from the request (replay.go)
	}
	p.lane = l
	p.batch.Stream = key
	if d := pl.cfg.MaxCallDuration; d > 0 && p.unendedBefore.IsZero() {
		p.unendedBefore = now.Add(-d)
	}
	return p
}

// start is where a stream without a cursor begins, and the day it seals at
// once: with CALLPUB_START_AT=now a stream starts at now minus the lookback
// and does not reconcile (and so does not backfill) the days before it
// started, its first day included. With horizon it starts at the API's
// earliest reachable time (PlanFresh's rule for a zero cursor).
//
// The days it seals at once also skip their last-chance read.
func (pl planner) start(now time.Time) (cursor time.Time, sealed string) {
	if pl.cfg.StartAt != "now" {
		return time.Time{}, ""
	}
	return now.Add(-pl.cfg.Lookback), DayKey(now, pl.reach.Loc)
}

// fresh reads the window after the cursor (with lookback) and moves the
// cursor; a cursor behind the API's horizon records the lost span as a gap.
//
// The window is as wide as is expected to hold Config.WindowRows rows, by
// the stream's density d: a stream with nothing known or no rows reads up to
// now at once (a first start of a quiet stream is one request for the whole
// reach). When the window, sweep span included, is expected to fit in half a
// page, the sweep is folded in: the read starts where a sweep would, and
// counts as one. A read that covers all of yesterday after its
// reconciliation time seals the day, as the reconciliation would. Otherwise
// a caught-up stream's window reaches back as far as one page is expected to
// hold (three quarters of it), never past the sweep's start.
func (pl planner) fresh(st dedupe.StreamState, d density, now time.Time) plan {
	cursor, sealed := st.Cursor, ""
	if cursor.IsZero() {
		cursor, sealed = pl.start(now)
	}
	wc := pl.wc
	if s := d.span(pl.cfg.WindowRows); s > 0 {
		wc.MaxSpan = min(wc.MaxSpan, s)
	}
	fp := PlanFresh(cursor, now, pl.reach, wc)
	p := plan{read: fp.Read, behind: fp.Behind, idle: fp.Idle, maxRows: pl.cfg.WindowRows * 3 / 2}
	// A new stream commits its first cursor even when there is nothing to
	// read yet (START_AT=now with a lookback no longer than the lag).
	if fp.Idle && fp.Gap.Empty() && !st.Cursor.IsZero() {
		p.skip = true
		return p
	}
	p.batch = dedupe.Batch{Cursor: &fp.NewCursor, SealedDay: sealed, LastChanceDay: sealed}
	if !fp.Gap.Empty() {
		p.batch.Gaps = []dedupe.Gap{{Start: fp.Gap.Start, End: fp.Gap.End, DetectedAt: now}}
	}
	if st.Cursor.IsZero() && sealed == "" && pl.reach.Mode() == ccms.BoundaryBoth {
		// Mode both starts at the later of the two readings of 00:00 of
		// yesterday: what the server may hold before it is never read.
		if w := pl.reach.Widest(now); w.Before(p.read.Start) {
			p.batch.Gaps = append(p.batch.Gaps, dedupe.Gap{Start: w, End: p.read.Start, DetectedAt: now})
		}
	}
	if !st.Cursor.IsZero() && !fp.Behind && !p.read.Empty() && d.known() {
		sw := SweepWindow(st.Cursor, oldestPending(st.Pending), now, pl.reach, pl.cfg.SweepLookback)
		switch {
		case !sw.Start.Before(p.read.Start):
		case d.expect(p.read.End.Sub(sw.Start)) <= float64(pl.pageSize)/2:
			p.read.Start = sw.Start
			p.batch.LastSweep = &now
		default:
			// Widened to what one page holds, for the same one request: a
			// call whose row comes long after its filter time (a long
			// talk) is found by the next poll, not by the next sweep.
			// The density is learned mostly near now, where rows still come
			// in, so the span may be far too long: a widened window found to
			// hold a page more than the window itself is expected to is not
			// read but teaches the density (step) and is planned again, for
			// one request. Read, it would cost a request per page and more:
			// rows written while a window near now is paged split it.
			if s := d.span(pl.pageSize * 3 / 4); s > 0 {
				if from := maxTime(sw.Start, p.read.End.Add(-s)); from.Before(p.read.Start) {
					p.maxRows = min(p.maxRows, pl.pageSize+int(d.expect(p.read.End.Sub(p.read.Start))))
					p.read.Start = from
				}
			}
		}
	}
	if sealed == "" {
		pl.sealYesterday(&p, st, now)
	}
	return p
}

// sealYesterday makes p, a fresh read, seal yesterday when it reads all of
// it that the API still holds after the day's reconciliation time, and the
// day is not sealed yet: the reconciliation would read the same again.
func (pl planner) sealYesterday(p *plan, st dedupe.StreamState, now time.Time) {
	y := Yesterday(now, pl.reach.Loc)
	day := DayKey(y.Start, pl.reach.Loc)
	if st.SealedDay >= day || now.Before(y.End.Add(pl.cfg.ReconcileDelay)) || p.read.Empty() {
		return
	}
	if p.read.Start.After(maxTime(y.Start, Horizon(now, pl.reach))) || p.read.End.Before(y.End) {
		return
	}
	p.seal = y
	p.batch.SealedDay = day
}

// sweep re-reads a long lookback (and every pending call) without moving the
// cursor.
func (pl planner) sweep(st dedupe.StreamState, now time.Time) plan {
	if st.Cursor.IsZero() {
		return plan{skip: true} // nothing read yet: the fresh lane starts the stream
	}
	if due := st.LastSweep.Add(pl.cfg.SweepInterval); !st.LastSweep.IsZero() && now.Before(due) {
		return plan{skip: true, wait: due} // a fresh read swept the span lately
	}
	w := SweepWindow(st.Cursor, oldestPending(st.Pending), now, pl.reach, pl.cfg.SweepLookback)
	return plan{read: w, batch: dedupe.Batch{LastSweep: &now}}
}

// reconcile reads all of yesterday once the API's day has closed and the
// fresh cursor has passed midnight, then seals the (stream, day).
func (pl planner) reconcile(st dedupe.StreamState, now time.Time) plan {
	y := Yesterday(now, pl.reach.Loc)
	day := DayKey(y.Start, pl.reach.Loc)
	if st.SealedDay >= day {
		return plan{skip: true, wait: pl.nextReconcile(now, st.SealedDay)}
	}
	if ready := y.End.Add(pl.cfg.ReconcileDelay); now.Before(ready) {
		return plan{skip: true, wait: ready}
	}
	if st.Cursor.Before(y.End) {
		return plan{skip: true, wait: now.Add(pl.cfg.PollInterval)} // the fresh lane has not passed midnight yet
	}
	// In mode both the API may already have dropped the start of the
	// tenant's yesterday; read what it still holds (the fresh lane read the
	// rest while it could).
	read := y
	read.Start = maxTime(read.Start, Horizon(now, pl.reach))
	return plan{read: read, batch: dedupe.Batch{SealedDay: day}, seal: y, wait: pl.nextReconcile(now, day)}
}

// nextReconcile is when the reconciliation turn should next run, given the
// last sealed day.
func (pl planner) nextReconcile(now time.Time, sealed string) time.Time {
	y := Yesterday(now, pl.reach.Loc)
	if sealed < DayKey(y.Start, pl.reach.Loc) {
		if ready := y.End.Add(pl.cfg.ReconcileDelay); now.Before(ready) {
			return ready.Add(jitter(pl.cfg.PollInterval))
		}
		return now.Add(jitter(pl.cfg.PollInterval))
	}
	return y.End.AddDate(0, 0, 1).Add(pl.cfg.ReconcileDelay).Add(jitter(pl.cfg.PollInterval))
}

// lastChance reads all of yesterday once more shortly before the API forgets
// it (CALLPUB_LAST_CHANCE_BEFORE before the first midnight, of the zones in
// force, at which yesterday's first instant leaves the reach): rows that
// became visible after the reconciliation and beyond the sweeps' lookback
// are published, and the day is sealed again with the new count. A day
// sealed at a stream's start (START_AT=now) is skipped, like its
// reconciliation.
func (pl planner) lastChance(st dedupe.StreamState, now time.Time) plan {
	y := Yesterday(now, pl.reach.Loc)
	day := DayKey(y.Start, pl.reach.Loc)
	switch due := pl.lastChanceDue(y); {
	case st.LastChanceDay >= day:
		return plan{skip: true, wait: pl.nextLastChance(now, day)}
	case now.Before(due):
		return plan{skip: true, wait: due}
	case st.SealedDay < day:
		return plan{skip: true, wait: now.Add(pl.cfg.PollInterval)} // the reconciliation has not sealed it yet
	}
	read := y
	read.Start = maxTime(read.Start, Horizon(now, pl.reach))
	// Whatever of yesterday still runs now will not be read again.
	return plan{read: read, batch: dedupe.Batch{SealedDay: day, LastChanceDay: day}, seal: y,
		unendedBefore: y.End, wait: pl.nextLastChance(now, day)}
}

// lastChanceDue is when the last-chance read of day d is due.
func (pl planner) lastChanceDue(d Window) time.Time {
	return pl.reach.LostAt(d.Start).Add(-pl.cfg.LastChanceBefore)
}

// nextLastChance is when the last-chance turn should next run, given the
// last day it read.
func (pl planner) nextLastChance(now time.Time, done string) time.Time {
	y := Yesterday(now, pl.reach.Loc)
	if done < DayKey(y.Start, pl.reach.Loc) {
		if due := pl.lastChanceDue(y); now.Before(due) {
			return due
		}
		return now
	}
	return pl.lastChanceDue(Window{Start: y.End, End: y.End.AddDate(0, 0, 1)})
}
