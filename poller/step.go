package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller/ccms"
)

// outcome is what a turn tells the scheduler.
type outcome struct {
	behind bool // fresh: more to catch up, come back at once
	idle   bool // fresh: nothing to read yet
	wait   time.Time
	// skipped: the turn had nothing to do and used neither CC-CMS nor
	// Kafka, so its success says nothing about them.
	skipped bool
}

// turn runs one turn and returns the stream's next turn in the same lane,
// and whether the turn skipped (used no dependency). Errors are logged here,
// once.
func (p *Poller) turn(ctx context.Context, t *turn) (*turn, bool, error) {
	ls := p.streams[t.stream]
	// The step plans with the server's clock; the scheduler keeps ours, so
	// the times a step asks to come back at are turned back into ours.
	off := p.clockOffset()
	out, err := p.step(ctx, ls, t.lane, time.Now().Add(off))
	p.m.steps.WithLabelValues(t.lane.String(), result(err)).Inc()
	done := time.Now()
	if !out.wait.IsZero() {
		out.wait = out.wait.Add(-off)
	}
	if err != nil {
		return p.retry(ctx, ls, t, err, done), false, err
	}
	ls.failures = 0
	next := &turn{stream: t.stream, lane: t.lane}
	switch t.lane {
	case laneFresh, laneBackfill:
		if out.behind {
			next.lane, next.due = laneBackfill, done
			break
		}
		// The pacer spends the budget where the calls are (pace.go).
		next.lane, next.due = laneFresh, done.Add(p.pace.interval(int(t.stream), ls.density, len(ls.state.Pending), done))
	case laneSweep:
		next.due = done.Add(p.cfg.SweepInterval)
		if !out.wait.IsZero() {
			next.due = out.wait // a fresh read swept lately
		}
	case laneReconcile, laneLastChance:
		next.due = out.wait
	case laneReplay:
		if !p.moreReplays(ls) {
			return nil, out.skipped, nil
		}
		next.due = done
	}
	return next, out.skipped, nil
}

// retry notes a failed turn, logs it once and returns the lane's next turn.
// A failure the return of CC-CMS or Kafka mends (every class but the four
// below, errors of the store and the publisher included) is held for the
// scheduler's probe or wake-up (schedule.go), so a stream is back within
// seconds of its dependency. Auth, blocked, misconfigured and permanent
// failures need a person, not a probe: they wait a jittered backoff, at least
// the server's Retry-After, as before. A failing backfill is retried in the
// fresh lane's order.
func (p *Poller) retry(ctx context.Context, ls *live, t *turn, err error, done time.Time) *turn {
	ls.failures++
	p.mu.Lock()
	ls.failure = &failure{err: fmt.Sprint(err), at: done}
	p.mu.Unlock()
	next := &turn{stream: t.stream, lane: t.lane, due: done, failed: true}
	if t.lane == laneBackfill {
		next.lane = laneFresh
	}
	class := ccms.ClassOf(err)
	when := []any{"retry", "with a probe"}
	switch class {
	case ccms.ClassAuth, ccms.ClassBlocked, ccms.ClassMisconfigured, ccms.ClassPermanent:
		next.due = done.Add(ccms.Backoff(ls.failures, p.cfg.RetryBase, p.cfg.RetryMax, ccms.RetryAfter(err)))
		when = []any{"retry_in", next.due.Sub(done).Round(time.Millisecond)}
	default:
		next.hold = true
		next.after = min(ccms.RetryAfter(err), p.cfg.RetryMax)
	}
	level := slog.LevelWarn
	if errors.Is(err, dedupe.ErrClosed) {
		level = slog.LevelError
	}
	attrs := append([]any{"stream", ls.key, "lane", t.lane.String(), "class", class.String(), "failures", ls.failures}, when...)
	p.log.Log(ctx, level, "step failed, will retry", append(attrs, "err", err)...)
	return next
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// step is one turn of one lane of a stream: plan → read → classify →
// deliver, then report. The stream's state is the poller's own copy; deliver
// advances it after the commit.
func (p *Poller) step(ctx context.Context, ls *live, l lane, now time.Time) (outcome, error) {
	if l == laneReplay {
		return p.replayStep(ctx, ls, now)
	}
	pl := p.planner.plan(ls.key, l, ls.state, ls.density, now)
	if pl.skip {
		if l == laneFresh || l == laneBackfill {
			p.heartbeat(ctx, ls, now)
		}
		return outcome{idle: pl.idle, wait: pl.wait, skipped: true}, nil
	}
	var t tally
	var err error
	if l.inPieces() {
		t, err = p.readInPieces(ctx, ls, pl, now)
	} else {
		// A window holding too many rows for one batch was not read; its
		// count taught the density, so the plan is narrower now.
		pl, t, err = p.readAndDeliver(ctx, ls, pl, now, func() plan {
			return p.planner.plan(ls.key, l, ls.state, ls.density, now)
		})
	}
	if err != nil {
		return outcome{}, err
	}
	p.report(ctx, ls, pl, t.fetched, t.published, now)
	return outcome{behind: pl.behind, wait: pl.wait}, nil
}

// report tells what a committed turn did, in its lane's words.
func (p *Poller) report(ctx context.Context, ls *live, pl plan, fetched, published int, now time.Time) {
	switch pl.lane {
	case laneFresh, laneBackfill:
		for _, g := range pl.batch.Gaps {
			p.reportGap(ls, Window{Start: g.Start, End: g.End})
		}
		level := slog.LevelDebug // empty steps stay quiet with thousands of streams
		if published > 0 || len(pl.batch.Gaps) > 0 {
			level = slog.LevelInfo
		}
		p.log.Log(ctx, level, "window done", "stream", ls.key, "lane", "fresh", "window_start", pl.read.Start,
			"window_end", pl.read.End, "fetched", fetched, "published", published)
		if !pl.seal.Empty() {
			p.m.sealed.Inc()
			p.log.Info("day sealed", "stream", ls.key, "day", pl.batch.SealedDay, "by", "fresh read after the day closed")
		}
		p.heartbeat(ctx, ls, now)
	case laneSweep:
		if published > 0 {
			p.log.Info("sweep found calls the fresh steps missed", "stream", ls.key,
				"window_start", pl.read.Start, "window_end", pl.read.End, "fetched", fetched, "published", published)
		}
	case laneReconcile:
		p.m.sealed.Inc()
		p.log.Info("day sealed", "stream", ls.key, "day", pl.batch.SealedDay, "fetched", fetched, "published", published)
	case laneLastChance:
		level := slog.LevelDebug
		if published > 0 {
			level = slog.LevelWarn // late beyond the sweeps: worth knowing
		}
		p.log.Log(ctx, level, "last-chance read done, day sealed again", "stream", ls.key, "day", pl.batch.SealedDay,
			"fetched", fetched, "published", published)
	}
}

// heartbeat publishes the stream's watermark — everything before it is
// published: the cursor, or the oldest pending call if older — on the control
// topic, at most once per CALLPUB_HEARTBEAT_INTERVAL.
func (p *Poller) heartbeat(ctx context.Context, ls *live, now time.Time) {
	p.mu.Lock()
	started := !ls.state.Cursor.IsZero()
	w := p.watermark(ls, now)
	p.mu.Unlock()
	if !started || now.UnixNano()-ls.lastHeartbeat < int64(p.cfg.Heartbeat) {
		return
	}
	if err := p.pub.PublishControl(ctx, p.enc.Heartbeat(ls.Stream, w, now)); err != nil {
		// Advisory: the step itself is committed; try again next step.
		p.log.Warn("heartbeat not published", "stream", ls.key, "err", err)
		return
	}
	ls.lastHeartbeat = now.UnixNano()
}

func (p *Poller) reportGap(ls *live, g Window) {
	p.m.gaps.WithLabelValues(fmt.Sprint(ls.VDN), string(ls.Dir)).Inc()
	p.m.gapSeconds.Add(g.End.Sub(g.Start).Seconds())
	p.mu.Lock()
	ls.gaps++
	p.mu.Unlock()
	p.log.Error("gap: calls in this span were not read (beyond the API's reach, or before the later midnight of day boundary mode both) and are not published",
		"stream", ls.key, "gap_start", g.Start, "gap_end", g.End, "span", g.End.Sub(g.Start).String())
}
