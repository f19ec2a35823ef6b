package poller

import (
	"context"
	"time"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller/ccms"
)

// A sweep, a reconciliation and a last-chance read cover hours of a stream,
// a whole day for the last two. Read as one window, a busy stream's holds
// thousands of rows, and every one of them — decoded, encoded and waiting on
// Kafka — stays in memory until the turn ends: a few such turns at once made
// most of the service's peak memory. So these lanes read their window in
// pieces, each expected to hold Config.WindowRows rows by the stream's
// density and read again narrower when found to hold more than half as many
// again (as a fresh window is), each delivered and committed before the next
// is read. Whatever its lane, a turn holds at most 1.5 × WindowRows rows (or
// one page, when that is more), unless a window is still too full after
// three narrower reads.
//
// The lane's own marks (last sweep, sealed and last-chance day) and the
// day's sealed record come with the last piece, which accounts for the whole
// window: the span read, and the bad rows and suspect spans of every piece.
// A turn that fails midway has committed its earlier pieces' calls; its
// retry reads the window again from the start and finds them seen.

// tally is what the reads of a turn found.
type tally struct {
	fetched, published int
	bad                int            // rows quarantined or set aside
	suspect            []ccms.Suspect // spans read only as far as the server would page them
}

func (t *tally) add(u tally) {
	t.fetched += u.fetched
	t.published += u.published
	t.bad += u.bad
	t.suspect = append(t.suspect, u.suspect...)
}

// inPieces says whether a lane's step reads its window in pieces (a replay
// does too: replayStep).
func (l lane) inPieces() bool {
	return l == laneSweep || l == laneReconcile || l == laneLastChance
}

// readInPieces reads and delivers whole's window piece by piece.
func (p *Poller) readInPieces(ctx context.Context, ls *live, whole plan, now time.Time) (tally, error) {
	var sum tally
	from := whole.read.Start
	next := func() plan { return p.piece(ls, whole, from, sum) }
	for {
		pc, t, err := p.readAndDeliver(ctx, ls, next(), now, next)
		if err != nil {
			return sum, err
		}
		sum.add(t)
		if !pc.read.End.Before(whole.read.End) {
			return sum, nil
		}
		from = pc.read.End
	}
}

// piece is the part of whole's window from from on that is expected to hold
// Config.WindowRows rows; the last one carries whole's marks and seal, and
// what the earlier pieces found.
func (p *Poller) piece(ls *live, whole plan, from time.Time, earlier tally) plan {
	pc := whole
	pc.read.Start = from
	pc.maxRows = p.cfg.WindowRows * 3 / 2
	if s := ls.density.span(p.cfg.WindowRows).Truncate(time.Millisecond); s > 0 && from.Add(s).Before(whole.read.End) {
		pc.read.End = from.Add(s)
		pc.batch = dedupe.Batch{Stream: whole.batch.Stream}
		pc.seal = Window{}
		return pc
	}
	pc.whole, pc.earlier = whole.read, earlier
	return pc
}

// span is the whole window of pl's turn: its own read, or that of all the
// pieces when pl is the last of several.
func (pl plan) span() Window {
	if !pl.whole.Empty() {
		return pl.whole
	}
	return pl.read
}

// readAndDeliver reads pl's window — narrower, as planned again by replan
// with what a window's count taught the density, while it holds too many
// rows; after three such reads whatever it holds — classifies its rows and
// delivers them. It returns the plan it read.
func (p *Poller) readAndDeliver(ctx context.Context, ls *live, pl plan, now time.Time, replan func() plan) (plan, tally, error) {
	held := p.expectRows(ls, pl)
	background := pl.lane != laneFresh && pl.lane != laneBackfill
	if err := p.hand.take(ctx, held, background); err != nil {
		return pl, tally{}, err
	}
	defer func() { p.hand.put(held) }()
	r, err := p.read(ctx, ls, pl, now)
	for tries := 1; err == nil && r.TooMany > 0; tries++ {
		pl = replan()
		if tries == 3 {
			pl.maxRows = 0
		}
		r, err = p.read(ctx, ls, pl, now)
	}
	if err != nil {
		return pl, tally{}, err
	}
	fetched := len(r.Calls) + len(r.Bad)
	if fetched > held {
		p.hand.add(fetched - held)
		held = fetched
	}
	c := classify(ls.Stream, ls.state, r, now, Horizon(now, p.reach), pl.unendedBefore)
	deliver := p.deliver
	if pl.replay {
		deliver = p.deliverReplay
	}
	n, err := deliver(ctx, ls, pl, c, now)
	if err != nil {
		return pl, tally{}, err
	}
	return pl, tally{fetched: fetched, published: n, bad: len(c.bad), suspect: c.suspect}, nil
}

// expectRows is how many rows pl's read is expected to return, by the
// stream's density, at most its maxRows; a page when nothing is known.
func (p *Poller) expectRows(ls *live, pl plan) int {
	if pl.read.Empty() {
		return 0
	}
	n := p.planner.pageSize
	if ls.density.known() {
		n = int(ls.density.expect(pl.read.End.Sub(pl.read.Start)) + 0.5)
	}
	if pl.maxRows > 0 {
		n = min(n, max(pl.maxRows, p.planner.pageSize))
	}
	return n
}
