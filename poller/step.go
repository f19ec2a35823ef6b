package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/schemas"
)

// outcome is what a turn tells the scheduler.
type outcome struct {
	fetched int  // rows read
	behind  bool // fresh: more to catch up, come back at once
	idle    bool // fresh: nothing to read yet
	wait    time.Time
}

// turn runs one turn and returns the stream's next turn in the same lane.
// Errors are logged here, once.
func (p *Poller) turn(ctx context.Context, t *turn) (*turn, error) {
	ls := p.streams[t.stream]
	now := time.Now()
	var (
		out outcome
		err error
	)
	switch t.lane {
	case laneFresh, laneBackfill:
		out, err = p.fresh(ctx, ls, now)
	case laneSweep:
		out, err = p.sweep(ctx, ls, now)
	case laneReconcile:
		out, err = p.reconcile(ctx, ls, now)
	}
	p.m.steps.WithLabelValues(t.lane.String(), result(err)).Inc()
	next := &turn{stream: t.stream, lane: t.lane}
	done := time.Now()
	if err != nil {
		ls.failures++
		p.noteError(ls, err, done)
		class := ccms.ClassOf(err)
		next.due = done.Add(backoff(ls.failures, p.cfg.RetryBase, p.cfg.RetryMax, ccms.RetryAfter(err)))
		if t.lane == laneBackfill {
			next.lane = laneFresh // a failing stream is retried in the fresh lane's order
		}
		level := slog.LevelWarn
		if errors.Is(err, dedupe.ErrClosed) {
			level = slog.LevelError
		}
		p.log.Log(ctx, level, "step failed, will retry", "stream", ls.key, "lane", t.lane.String(),
			"class", class.String(), "failures", ls.failures, "retry_in", next.due.Sub(done).Round(time.Millisecond), "err", err)
		return next, err
	}
	ls.failures = 0
	switch t.lane {
	case laneFresh, laneBackfill:
		switch {
		case out.behind:
			next.lane, next.due = laneBackfill, done
		case out.fetched == 0:
			ls.interval = min(p.cfg.MaxInterval, ls.interval*3/2)
			next.lane, next.due = laneFresh, done.Add(ls.interval)
		default:
			ls.interval = p.cfg.PollInterval
			next.lane, next.due = laneFresh, done.Add(ls.interval)
		}
	case laneSweep:
		next.due = done.Add(p.cfg.SweepInterval)
	case laneReconcile:
		next.due = out.wait
	}
	return next, nil
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// fresh reads the window after the cursor (with lookback) and moves the cursor.
func (p *Poller) fresh(ctx context.Context, ls *live, now time.Time) (outcome, error) {
	st, err := p.store.State(ls.key)
	if err != nil {
		return outcome{}, err
	}
	cursor := st.Cursor
	if cursor.IsZero() && p.cfg.StartAt == "now" {
		cursor = now.Add(-p.cfg.Lookback)
	}
	plan := PlanFresh(cursor, now, p.reach, p.wc)
	if plan.Idle && plan.Gap.Empty() && !st.Cursor.IsZero() {
		p.noteState(ls, st)
		p.heartbeat(ctx, ls, now)
		return outcome{idle: true}, nil
	}
	// A new stream commits its first cursor even when there is nothing to
	// read yet (START_AT=now with a lookback no longer than the lag).
	var calls []ccms.Call
	if !plan.Read.Empty() {
		if calls, err = p.read(ctx, ls, plan.Read); err != nil {
			return outcome{}, err
		}
	}
	b := dedupe.Batch{Stream: ls.key, Cursor: &plan.NewCursor}
	if st.Cursor.IsZero() && p.cfg.StartAt == "now" {
		// A stream started at now does not reconcile (and so does not
		// backfill) the days before it started, its first day included.
		b.SealedDay = DayKey(now, p.loc)
	}
	var control []schemas.Event
	if !plan.Gap.Empty() {
		g := dedupe.Gap{Stream: ls.key, Start: plan.Gap.Start, End: plan.Gap.End, DetectedAt: now}
		b.Gaps = append(b.Gaps, g)
		control = append(control, p.enc.Gap(ls.Stream, g.Start, g.End, now))
	}
	n, err := p.apply(ctx, ls, st, calls, b, control, now)
	if err != nil {
		return outcome{}, err
	}
	if !plan.Gap.Empty() {
		p.reportGap(ls, plan.Gap)
	}
	level := slog.LevelDebug // empty steps stay quiet with thousands of streams
	if n > 0 || !plan.Gap.Empty() {
		level = slog.LevelInfo
	}
	p.log.Log(ctx, level, "window done", "stream", ls.key, "lane", "fresh", "window_start", plan.Read.Start,
		"window_end", plan.Read.End, "fetched", len(calls), "published", n)
	p.heartbeat(ctx, ls, now)
	return outcome{fetched: len(calls), behind: plan.Behind}, nil
}

// sweep re-reads a long lookback (and every pending call) without moving the cursor.
func (p *Poller) sweep(ctx context.Context, ls *live, now time.Time) (outcome, error) {
	st, err := p.store.State(ls.key)
	if err != nil {
		return outcome{}, err
	}
	if st.Cursor.IsZero() {
		return outcome{}, nil // nothing read yet: the fresh lane starts the stream
	}
	w := SweepWindow(st.Cursor, oldestPending(st.Pending), now, p.reach, p.cfg.SweepLookback)
	var calls []ccms.Call
	if !w.Empty() {
		if calls, err = p.read(ctx, ls, w); err != nil {
			return outcome{}, err
		}
	}
	b := dedupe.Batch{Stream: ls.key, LastSweep: &now}
	n, err := p.apply(ctx, ls, st, calls, b, nil, now)
	if err != nil {
		return outcome{}, err
	}
	if n > 0 {
		p.log.Info("sweep found calls the fresh steps missed", "stream", ls.key,
			"window_start", w.Start, "window_end", w.End, "fetched", len(calls), "published", n)
	}
	return outcome{fetched: len(calls)}, nil
}

// reconcile reads all of yesterday once the API's day has closed and the
// fresh cursor has passed midnight, then seals the (stream, day).
func (p *Poller) reconcile(ctx context.Context, ls *live, now time.Time) (outcome, error) {
	st, err := p.store.State(ls.key)
	if err != nil {
		return outcome{}, err
	}
	y := Yesterday(now, p.loc)
	day := DayKey(y.Start, p.loc)
	if st.SealedDay >= day {
		return outcome{wait: p.nextReconcile(now, st.SealedDay)}, nil
	}
	if ready := y.End.Add(p.cfg.ReconcileDelay); now.Before(ready) {
		return outcome{wait: ready}, nil
	}
	if st.Cursor.Before(y.End) {
		return outcome{wait: now.Add(p.cfg.PollInterval)}, nil // the fresh lane has not passed midnight yet
	}
	// In mode both the API may already have dropped the start of the
	// tenant's yesterday; read what it still holds (the fresh lane read the
	// rest while it could).
	read := y
	read.Start = maxTime(read.Start, Horizon(now, p.reach))
	var calls []ccms.Call
	if !read.Empty() {
		if calls, err = p.read(ctx, ls, read); err != nil {
			return outcome{}, err
		}
	}
	before, err := p.store.CountSeen(ls.key, y.Start)
	if err != nil {
		return outcome{}, err
	}
	b := dedupe.Batch{Stream: ls.key, SealedDay: day}
	// The sealed record counts the calls whose callEnd falls on that day: those
	// already seen plus the new ones this pass publishes.
	seal := func(fresh []dedupe.Key) schemas.Event {
		n := before
		for _, k := range fresh {
			if !k.Update && DayKey(k.CallEnd, p.loc) == day {
				n++
			}
		}
		return p.enc.DaySealed(ls.Stream, day, n, now)
	}
	n, err := p.applySealed(ctx, ls, st, calls, b, seal, now)
	if err != nil {
		return outcome{}, err
	}
	p.m.sealed.Inc()
	p.log.Info("day sealed", "stream", ls.key, "day", day, "fetched", len(calls), "published", n)
	return outcome{fetched: len(calls), wait: p.nextReconcile(now, day)}, nil
}

// nextReconcile is when the reconciliation turn should next run.
func (p *Poller) nextReconcile(now time.Time, sealed string) time.Time {
	y := Yesterday(now, p.loc)
	if sealed < DayKey(y.Start, p.loc) {
		if ready := y.End.Add(p.cfg.ReconcileDelay); now.Before(ready) {
			return ready.Add(jitter(p.cfg.PollInterval))
		}
		return now.Add(jitter(p.cfg.PollInterval))
	}
	return y.End.AddDate(0, 0, 1).Add(p.cfg.ReconcileDelay).Add(jitter(p.cfg.PollInterval))
}

// read fetches one window of a stream completely.
func (p *Poller) read(ctx context.Context, ls *live, w Window) ([]ccms.Call, error) {
	calls, stats, err := p.src.ReadWindow(ctx, ccms.Window{Stream: ls.Stream, Start: w.Start, End: w.End}, p.ro)
	p.m.pages.Add(float64(stats.Pages))
	p.m.splits.Add(float64(stats.Splits))
	if err != nil {
		return nil, fmt.Errorf("read window %v: %w", w, err)
	}
	return calls, nil
}

// apply commits a window whose control records (gaps) are facts of their
// own: they go out before the call events, so a control topic that is down
// fails the step before anything was published.
func (p *Poller) apply(ctx context.Context, ls *live, st dedupe.StreamState, calls []ccms.Call,
	b dedupe.Batch, control []schemas.Event, now time.Time) (int, error) {
	return p.commit(ctx, ls, st, calls, b, control, nil, now)
}

// applySealed commits a reconciliation: the day-sealed record must follow
// the day's last events, so it goes out after them.
func (p *Poller) applySealed(ctx context.Context, ls *live, st dedupe.StreamState, calls []ccms.Call,
	b dedupe.Batch, seal func([]dedupe.Key) schemas.Event, now time.Time) (int, error) {
	return p.commit(ctx, ls, st, calls, b, nil, func(k []dedupe.Key) []schemas.Event {
		return []schemas.Event{seal(k)}
	}, now)
}

// commit is the heart of the delivery guarantee: split the window's calls
// into completed and running, drop what is already seen, publish the rest and
// wait for Kafka's ack, publish control records, and only then apply
// seen-marks, pending changes, the cursor and gaps in one store transaction.
// It returns how many call events were published.
func (p *Poller) commit(ctx context.Context, ls *live, st dedupe.StreamState, calls []ccms.Call,
	b dedupe.Batch, before []schemas.Event, after func([]dedupe.Key) []schemas.Event, now time.Time) (int, error) {
	earliest := Horizon(now, p.reach)
	pending := make(map[string]dedupe.Pending, len(st.Pending))
	for _, pc := range st.Pending {
		pending[pc.CallID] = pc
	}
	p.checkClock(ls, calls, now)
	var keys []dedupe.Key
	byID := make(map[string]schemas.Call, len(calls))
	for _, c := range calls {
		if !c.Completed() {
			// The API returned the call in a window inside its reach, so it can
			// be read again from the horizon even if an earlier timestamp is older.
			ft := maxTime(filterTime(c, now), earliest)
			if old, ok := pending[c.CallID]; ok {
				ft = old.FilterTime
			}
			pc := dedupe.Pending{CallID: c.CallID, FilterTime: ft, FirstSeen: now}
			if old, ok := pending[c.CallID]; ok {
				pc.FirstSeen = old.FirstSeen
			}
			if _, known := pending[c.CallID]; !known {
				b.Pending = append(b.Pending, pc)
			}
			pending[c.CallID] = pc
			continue
		}
		if _, ok := pending[c.CallID]; ok {
			b.Resolved = append(b.Resolved, c.CallID)
			delete(pending, c.CallID)
		}
		sc := toSchema(ls.Stream, c)
		byID[c.CallID] = sc
		keys = append(keys, dedupe.Key{Stream: ls.key, CallID: c.CallID, CallEnd: c.CallEnd, Hash: schemas.ContentHash(sc)})
	}
	// A pending call the API can no longer return will never complete for us.
	for id, pc := range pending {
		if pc.FilterTime.Before(earliest) {
			b.Resolved = append(b.Resolved, id)
			delete(pending, id)
			p.m.pendingDropped.Inc()
			p.log.Error("pending call fell behind the API horizon and is dropped", "stream", ls.key,
				"call_id", id, "filter_time", pc.FilterTime, "horizon", earliest)
		}
	}
	fresh, err := p.store.Unseen(keys)
	if err != nil {
		return 0, err
	}
	events := make([]schemas.Event, 0, len(fresh))
	for _, k := range fresh {
		e, err := p.enc.CallCompleted(byID[k.CallID], k.Update)
		if err != nil {
			return 0, fmt.Errorf("encode call %s: %w", k.CallID, err)
		}
		events = append(events, e)
	}
	if len(before) > 0 {
		if err := p.pub.PublishControl(ctx, before...); err != nil {
			return 0, fmt.Errorf("publish %d control records: %w", len(before), err)
		}
	}
	if len(events) > 0 {
		if err := p.pub.Publish(ctx, events...); err != nil {
			return 0, fmt.Errorf("publish %d events: %w", len(events), err)
		}
	}
	// A control record that must follow the events (the day seal) and fails
	// does not undo them: they are acknowledged, so they are committed as seen
	// without the seal, and the retry publishes the seal alone.
	var afterErr error
	if after != nil {
		if ctl := after(fresh); len(ctl) > 0 {
			if err := p.pub.PublishControl(ctx, ctl...); err != nil {
				afterErr = fmt.Errorf("publish %d control records: %w", len(ctl), err)
				b.SealedDay = ""
			}
		}
	}
	// Only after the ack, and all in one transaction. A crash before this line
	// publishes the same events again, with the same ids; none is lost.
	b.Seen = fresh
	if err := p.store.Commit(b); err != nil {
		return 0, errors.Join(afterErr, fmt.Errorf("commit: %w", err))
	}
	p.m.countPublished(ls.Dir, fresh)
	p.m.duplicates.WithLabelValues(string(ls.Dir)).Add(float64(len(keys) - len(fresh)))
	st.Pending = st.Pending[:0]
	for _, pc := range pending {
		st.Pending = append(st.Pending, pc)
	}
	if b.Cursor != nil {
		st.Cursor = *b.Cursor
	}
	p.noteState(ls, st)
	p.noteOK(ls, now)
	if len(events) > 0 {
		p.onPub(events)
	}
	return len(events), afterErr
}

// heartbeat publishes the stream's watermark — everything before it is
// published: the cursor, or the oldest pending call if older — on the control
// topic, at most once per CALLPUB_HEARTBEAT_INTERVAL.
func (p *Poller) heartbeat(ctx context.Context, ls *live, now time.Time) {
	p.mu.Lock()
	started := !ls.cursor.IsZero()
	w := p.watermark(ls, now)
	p.mu.Unlock()
	if !started || now.Sub(ls.lastHeartbeat) < p.cfg.Heartbeat {
		return
	}
	if err := p.pub.PublishControl(ctx, p.enc.Heartbeat(ls.Stream, w, now)); err != nil {
		// Advisory: the step itself is committed; try again next step.
		p.log.Warn("heartbeat not published", "stream", ls.key, "err", err)
		return
	}
	ls.lastHeartbeat = now
}

// futureTolerance is how far after our clock a row's time may lie before we
// say the server's clock or zone differs from ours: more than clock drift
// and request latency, less than any zone offset.
const futureTolerance = 10 * time.Minute

// checkClock counts rows whose times lie in our future and warns, at most
// every 10 minutes, with the offset. An hour or more, close to a whole
// quarter hour, points at a time zone (ccms-api.md A10: the server may store
// local times as UTC); anything else at a clock. The rows are published as they are.
func (p *Poller) checkClock(ls *live, calls []ccms.Call, now time.Time) {
	var n int
	var ahead time.Duration
	for _, c := range calls {
		for _, t := range []time.Time{c.LogDate, c.CallEnd, c.CallBegin, c.AckBegin, c.WaitBegin} {
			if d := t.Sub(now); d > futureTolerance {
				n++
				ahead = max(ahead, d)
				break
			}
		}
	}
	if n == 0 {
		return
	}
	p.m.futureRows.Add(float64(n))
	p.mu.Lock()
	quiet := !p.lastClockWarn.IsZero() && now.Sub(p.lastClockWarn) < 10*time.Minute
	if !quiet {
		p.lastClockWarn = now
	}
	p.mu.Unlock()
	if quiet {
		return
	}
	hint := "check NTP on this host and on the server"
	// Zone offsets are whole quarter hours (+05:30, +05:45, +08:00).
	if q := ahead.Round(15 * time.Minute); ahead >= 55*time.Minute && (ahead-q).Abs() <= 5*time.Minute {
		hint = "close to a zone offset: the server's times are probably in another time zone; check CALLPUB_CCMS_TIMEZONE and the tenant's settings"
	}
	p.log.Warn("CC-CMS returned rows with times after our clock", "stream", ls.key, "rows", n,
		"ahead", ahead.Round(time.Second).String(), "hint", hint)
}

func (p *Poller) reportGap(ls *live, g Window) {
	p.m.gaps.WithLabelValues(fmt.Sprint(ls.VDN), string(ls.Dir)).Inc()
	p.m.gapSeconds.Add(g.End.Sub(g.Start).Seconds())
	p.mu.Lock()
	ls.gaps++
	p.mu.Unlock()
	p.log.Error("gap: calls in this span are beyond the API's reach and were not published",
		"stream", ls.key, "gap_start", g.Start, "gap_end", g.End, "span", g.End.Sub(g.Start).String())
}

// filterTime is the earliest timestamp a running call has: the window the
// API lists it under cannot start later than this.
func filterTime(c ccms.Call, now time.Time) time.Time {
	t := now
	for _, x := range []time.Time{c.WaitBegin, c.AckBegin, c.CallBegin, c.LogDate} {
		if !x.IsZero() && x.Before(t) {
			t = x
		}
	}
	return t
}

func oldestPending(ps []dedupe.Pending) time.Time {
	var t time.Time
	for _, p := range ps {
		if t.IsZero() || p.FilterTime.Before(t) {
			t = p.FilterTime
		}
	}
	return t
}

func toSchema(s Stream, c ccms.Call) schemas.Call {
	return schemas.Call{
		CCID: s.CCID, VDN: s.VDN, Inbound: s.Dir.Inbound(),
		CallID: c.CallID, CallerNo: c.CallerNo, CalleeNo: c.CalleeNo,
		CallType: c.CallType, LeaveReason: c.LeaveReason, MediaType: c.MediaType, SubMediaType: c.SubMediaType,
		LogDate: c.LogDate, WaitBegin: c.WaitBegin, AckBegin: c.AckBegin, CallBegin: c.CallBegin, CallEnd: c.CallEnd,
	}
}
