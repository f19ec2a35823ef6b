package poller

import (
	"context"
	"fmt"
	"time"

	"github.com/callpub/callpub/poller/ccms"
)

// read fetches the planned window of a stream completely — the client pages,
// checks consistency and splits — teaches the stream's density what it held,
// and checks the rows against our clock. An empty window reads nothing. A
// window holding more than pl.maxRows rows is not read: Read.TooMany says so.
func (p *Poller) read(ctx context.Context, ls *live, pl plan, now time.Time) (ccms.Read, error) {
	w := pl.read
	if w.Empty() {
		return ccms.Read{}, nil
	}
	r, err := p.src.ReadWindow(ctx, ccms.Window{Stream: ls.Stream, Start: w.Start, End: w.End, MaxRows: pl.maxRows})
	p.m.pages.Add(float64(r.Stats.Pages))
	p.pace.spend(pl.lane, r.Stats.Requests)
	p.m.splits.Add(float64(r.Stats.Splits))
	if err != nil {
		return ccms.Read{}, fmt.Errorf("read window %v: %w", w, err)
	}
	if r.TooMany > 0 {
		ls.density.learn(r.TooMany, w.End.Sub(w.Start))
		return r, nil
	}
	ls.density.observe(len(r.Calls)+len(r.Bad), w.End.Sub(w.Start))
	p.checkClock(ls, r.Calls, now)
	return r, nil
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
	n, ahead := futureRows(calls, now)
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

// futureRows counts the rows with a time more than futureTolerance after now,
// and the largest such lead.
func futureRows(calls []ccms.Call, now time.Time) (n int, ahead time.Duration) {
	for _, c := range calls {
		for _, t := range []time.Time{c.LogDate, c.CallEnd, c.CallBegin, c.AckBegin, c.WaitBegin} {
			if d := t.Sub(now); d > futureTolerance {
				n++
				ahead = max(ahead, d)
				break
			}
		}
	}
	return n, ahead
}
