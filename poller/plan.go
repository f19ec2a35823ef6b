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
}

// planner makes the plans of every lane. Its fields are configuration.
type planner struct {
	cfg   Config
	reach ccms.Reach // Loc is never nil
	wc    WindowConfig
}

// plan dispatches to the lane's planner. The backfill lane is the fresh lane
// of a stream far behind now.
func (pl planner) plan(key string, l lane, st dedupe.StreamState, now time.Time) plan {
	var p plan
	switch l {
	case laneFresh, laneBackfill:
		p = pl.fresh(st, now)
	case laneSweep:
		p = pl.sweep(st, now)
	case laneReconcile:
		p = pl.reconcile(st, now)
	case laneLastChance:
		p = pl.lastChance(st, now)
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
func (pl planner) fresh(st dedupe.StreamState, now time.Time) plan {
	cursor, sealed := st.Cursor, ""
	if cursor.IsZero() {
		cursor, sealed = pl.start(now)
	}
	fp := PlanFresh(cursor, now, pl.reach, pl.wc)
	p := plan{read: fp.Read, behind: fp.Behind, idle: fp.Idle}
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
	return p
}

// sweep re-reads a long lookback (and every pending call) without moving the
// cursor.
func (pl planner) sweep(st dedupe.StreamState, now time.Time) plan {
	if st.Cursor.IsZero() {
		return plan{skip: true} // nothing read yet: the fresh lane starts the stream
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
