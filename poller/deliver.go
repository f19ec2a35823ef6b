package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/schemas"
)

// deliver publishes what is new in a classified window and commits the turn.
// It is the delivery invariant (DESIGN.md 1 and 9) in one place: control
// records that are facts of their own (gaps) go out before the call events,
// so a control topic that is down fails the turn before anything was
// published; the events are acknowledged by Kafka before anything is marked
// seen; the day seal and the dead-letter records of bad rows follow the
// events; with a changelog the stream's state after the turn is recorded on
// the state topic next (logState); then seen-marks, pending calls, the
// cursor, the sealed day, gaps and quarantined rows land in one store
// transaction. A crash before the commit publishes the same events again,
// with the same ids; none is lost.
// It returns how many call events were published.
func (p *Poller) deliver(ctx context.Context, ls *live, pl plan, c classified, now time.Time) (int, error) {
	fresh, err := p.unseen(c.items)
	if err != nil {
		return 0, err
	}
	fresh, events, unusable := p.encode(fresh, now)
	c.bad = append(c.bad, unusable...)
	if records := p.controlRecords(ls, pl.batch.Gaps, c.suspect, now); len(records) > 0 {
		if err := p.pub.PublishControl(ctx, records...); err != nil {
			return 0, fmt.Errorf("publish %d control records: %w", len(records), err)
		}
	}
	var ackedAt time.Time // by the server's clock, the clock of the rows' logDate
	if len(events) > 0 {
		if err := p.pub.Publish(ctx, events...); err != nil {
			return 0, fmt.Errorf("publish %d events: %w", len(events), err)
		}
		ackedAt = time.Now().Add(p.clockOffset())
	}
	b := c.batch(pl.batch, fresh)
	afterErr := errors.Join(p.seal(ctx, ls, pl, c, fresh, now, &b), p.quarantine(ctx, ls, pl, c.bad, now, &b))
	if err := p.logState(ctx, ls, &b); err != nil {
		return 0, errors.Join(afterErr, err)
	}
	if err := p.store.Commit(b); err != nil {
		return 0, errors.Join(afterErr, fmt.Errorf("commit: %w", err))
	}
	p.committed(ls, b, c, fresh, events, now)
	p.m.observeFreshness(ls.Dir, fresh, ackedAt)
	return len(events), afterErr
}

// unseen returns the items the store has not seen with this content, in the
// order read, each key marked Update when the call was published with other
// content. A call id listed more than once in a window with different
// content goes out once per content, in the order read, the later ones as
// updates; once the store holds one of them, the rows before it in the
// window are not news.
func (p *Poller) unseen(items []item) ([]item, error) {
	keys := make([]dedupe.Key, len(items))
	for i, it := range items {
		keys[i] = it.key
	}
	fresh, err := p.store.Unseen(keys)
	if err != nil {
		return nil, err
	}
	isFresh, err := alongside(items, fresh)
	if err != nil {
		return nil, err
	}
	known := make(map[string]int, len(items)) // call id -> last item the store holds
	for i, it := range items {
		if isFresh[i] == nil {
			known[it.key.CallID] = i
		}
	}
	out := make([]item, 0, len(fresh))
	earlier := make(map[string]bool, len(fresh)) // call ids already going out in this batch
	for i, it := range items {
		k := isFresh[i]
		if last, ok := known[it.key.CallID]; k == nil || ok && i < last {
			continue
		}
		k.Update = k.Update || earlier[k.CallID]
		earlier[k.CallID] = true
		it.key = *k
		out = append(out, it)
	}
	return out, nil
}

// alongside pairs Store.Unseen's answer with the items it was asked about:
// a subsequence of their keys, in their order. Item i gets its answered key,
// or nil when the store holds it.
func alongside(items []item, fresh []dedupe.Key) ([]*dedupe.Key, error) {
	out := make([]*dedupe.Key, len(items))
	i := 0
	for j := range fresh {
		for i < len(items) && (items[i].key.CallID != fresh[j].CallID || items[i].key.Hash != fresh[j].Hash) {
			i++
		}
		if i == len(items) {
			return nil, fmt.Errorf("store answered call %s out of order or not asked for", fresh[j].CallID)
		}
		out[i] = &fresh[j]
		i++
	}
	return out, nil
}

// encodedSize is e.Size() for an event fresh from the encoder, without
// reading its data again: the encoder's data is json.Marshal output, compact
// and escaped already, which encoding the event copies as it is. So the
// event's encoding is its envelope's (with "data":null) plus the data's own
// length. Re-encoding every event only to measure it took a tenth of a
// backfill's CPU.
func encodedSize(e schemas.Event) (int, error) {
	data := e.Data
	e.Data = nil
	n, err := e.Size()
	if err != nil || data == nil {
		return n, err
	}
	return n - len("null") + len(data), nil
}

// encode makes the call events of items. A call that cannot become an
// event, or whose event is larger than the topic accepts, is not published:
// it comes back as a bad row, to be quarantined, and the rest go out.
func (p *Poller) encode(items []item, now time.Time) (ok []item, events []schemas.Event, bad []badRow) {
	ok, events = items[:0:0], make([]schemas.Event, 0, len(items))
	for _, it := range items {
		e, err := p.event(it, now)
		if err != nil {
			raw, _ := json.Marshal(it.call.Call) // plain fields: cannot fail
			bad = append(bad, newBadRow(headOf(raw), fmt.Sprintf("call %s: %v", it.key.CallID, err)))
			continue
		}
		if p.maxEventBytes > 0 {
			if n, err := encodedSize(e); err != nil || n > p.maxEventBytes {
				bad = append(bad, oversizeRow(e, n, p.maxEventBytes))
				continue
			}
		}
		ok, events = append(ok, it), append(events, e)
	}
	return ok, events, bad
}

// event is the event of an item: a completed call, or one that never
// reported an end, last seen running now.
func (p *Poller) event(it item, now time.Time) (schemas.Event, error) {
	if it.unended {
		return p.enc.Unended(it.call, now)
	}
	return p.enc.Completed(it.call, it.key.Update)
}

// controlRecords are the control records of a turn: one per gap it
// records, and one per span its read could not page in agreement with the
// server's count (the same id each time the span is read again).
func (p *Poller) controlRecords(ls *live, gaps []dedupe.Gap, suspect []ccms.Suspect, now time.Time) []schemas.Event {
	var out []schemas.Event
	for _, g := range gaps {
		out = append(out, p.enc.Gap(ls.Stream, g.Start, g.End, g.DetectedAt))
	}
	for _, sp := range suspect {
		out = append(out, p.enc.Suspect(ls.Stream, sp.Start, sp.End, sp.Reason, now))
	}
	return out
}

// seal publishes the sealed record of the planned day, after the day's
// events. A seal that fails does not undo the events: they are
// acknowledged, so they are committed as seen without the sealed day (b's
// SealedDay and LastChanceDay are cleared), and the retry publishes the seal.
func (p *Poller) seal(ctx context.Context, ls *live, pl plan, c classified, fresh []item, now time.Time, b *dedupe.Batch) error {
	if pl.seal.Empty() {
		return nil
	}
	d, err := p.daySeal(ls, pl, c, fresh, b.SealedDay)
	if err == nil {
		if err = p.pub.PublishControl(ctx, p.enc.DaySealed(ls.Stream, d, now)); err != nil {
			err = fmt.Errorf("publish 1 control records: %w", err)
		}
	}
	if err != nil {
		b.SealedDay, b.LastChanceDay = "", ""
	}
	return err
}

// daySeal is what the turn knows about the planned day: the calls ending on
// it (already seen, plus those this turn publishes), the span it read, the
// gaps of the stream inside the day, the suspect spans and the bad rows of
// this read. The day is complete only when all of it was read and nothing
// is missing or set aside.
func (p *Poller) daySeal(ls *live, pl plan, c classified, fresh []item, day string) (schemas.DaySeal, error) {
	n, err := p.store.CountSeen(ls.key, pl.seal.Start)
	if err != nil {
		return schemas.DaySeal{}, err
	}
	for _, it := range fresh {
		if !it.key.Update && !it.unended && DayKey(it.key.CallEnd, p.loc) == day {
			n++
		}
	}
	gaps, err := p.store.GapsIn(ls.key, pl.seal.Start, pl.seal.End)
	if err != nil {
		return schemas.DaySeal{}, err
	}
	for _, g := range pl.batch.Gaps { // recorded by this very turn, not in the store yet
		if g.Start.Before(pl.seal.End) && g.End.After(pl.seal.Start) {
			gaps = append(gaps, g)
		}
	}
	read := pl.span()
	d := schemas.DaySeal{Day: day, Published: n, From: read.Start, To: read.End,
		Quarantined: pl.earlier.bad + len(c.bad), LastChance: pl.lane == laneLastChance}
	for _, g := range gaps {
		d.Gaps = append(d.Gaps, schemas.Span{Start: maxTime(g.Start, pl.seal.Start), End: minTime(g.End, pl.seal.End)})
	}
	for _, sp := range slices.Concat(pl.earlier.suspect, c.suspect) {
		d.Suspect = append(d.Suspect, schemas.Span{Start: sp.Start, End: sp.End})
	}
	d.Complete = !read.Start.After(pl.seal.Start) && !read.End.Before(pl.seal.End) &&
		len(d.Gaps) == 0 && len(d.Suspect) == 0 && d.Quarantined == 0
	return d, nil
}

// quarantine reports the window's bad rows that the store has not seen
// reported: one dead-letter record each (when there is a dead-letter topic),
// after the window's events. They are recorded in b only once the records
// are acknowledged; a failure leaves them to the retry, which reports them
// then, and does not undo the acknowledged events.
func (p *Poller) quarantine(ctx context.Context, ls *live, pl plan, bad []badRow, now time.Time, b *dedupe.Batch) error {
	if len(bad) == 0 {
		return nil
	}
	sums := make([]string, len(bad))
	for i, r := range bad {
		sums[i] = r.sum
	}
	fresh, err := p.store.NewlyBad(ls.key, sums)
	if err != nil || len(fresh) == 0 {
		return err
	}
	isNew := make(map[string]bool, len(fresh))
	for _, sum := range fresh {
		isNew[sum] = true
	}
	var records []schemas.Event
	var marks []dedupe.Quarantined
	for _, r := range bad {
		if isNew[r.sum] {
			isNew[r.sum] = false // a row listed twice is reported once
			records = append(records, p.deadLetter(ls, pl, r, now))
			marks = append(marks, dedupe.Quarantined{Sum: r.sum, DetectedAt: now})
		}
	}
	if err := p.pub.PublishDLQ(ctx, records...); err != nil {
		return fmt.Errorf("publish %d dead-letter records: %w", len(records), err)
	}
	b.Quarantined = marks
	return nil
}

// deadLetter is the dead-letter record of a bad row. A row too large for
// the topic itself is cut to its start, carried as a JSON string.
func (p *Poller) deadLetter(ls *live, pl plan, r badRow, now time.Time) schemas.Event {
	e := p.enc.Quarantined(ls.Stream, pl.read.Start, pl.read.End, r.reason, r.raw, now)
	if n, err := e.Size(); p.maxEventBytes > 0 && (err != nil || n > p.maxEventBytes) {
		e = p.enc.Quarantined(ls.Stream, pl.read.Start, pl.read.End, r.reason+" (row cut to its start)", headOf(r.raw), now)
	}
	return e
}

// headOf is the start of b as a JSON string: what stands for a row or an
// event too large to carry whole.
func headOf(b []byte) json.RawMessage {
	const keep = 2048
	if len(b) > keep {
		b = b[:keep]
	}
	raw, _ := json.Marshal(string(b)) // a string always marshals
	return raw
}

// oversizeRow is the bad row of a call whose event is larger than the topic
// accepts: the start of the event's data stands for the row.
func oversizeRow(e schemas.Event, size, limit int) badRow {
	return newBadRow(headOf(e.Data), fmt.Sprintf("call %s: its event of %d bytes is larger than the topic accepts (%d bytes, CALLPUB_KAFKA_MAX_MESSAGE_BYTES)",
		e.Subject, size, limit))
}

// committed advances the stream's state by the batch the store just
// committed, and counts and tells what the commit did.
func (p *Poller) committed(ls *live, b dedupe.Batch, c classified, fresh []item, events []schemas.Event, now time.Time) {
	p.mu.Lock()
	ls.state = ls.state.Apply(b)
	ls.lastOK = now
	p.mu.Unlock()
	p.m.countPublished(ls.Dir, fresh)
	p.m.duplicates.WithLabelValues(string(ls.Dir)).Add(float64(len(c.items) - len(b.Seen)))
	for _, pc := range c.dropped {
		p.m.pendingDropped.Inc()
		p.log.Error("pending call fell behind the API horizon and is dropped", "stream", ls.key,
			"call_id", pc.CallID, "filter_time", pc.FilterTime, "horizon", Horizon(now, p.reach))
	}
	p.reportQuarantined(ls, b.Quarantined, c.bad)
	for _, sp := range c.suspect {
		p.m.suspect.Inc()
		p.log.Warn("window read only as far as the server would page it: some of its calls may be missing", "stream", ls.key,
			"window_start", sp.Start, "window_end", sp.End, "reason", sp.Reason)
	}
	if len(events) > 0 {
		p.onPub(events)
	}
}

// reportQuarantined counts and logs, once each, the rows this commit
// recorded as quarantined: the reason and the row's sum, never its content.
func (p *Poller) reportQuarantined(ls *live, marks []dedupe.Quarantined, bad []badRow) {
	if len(marks) == 0 {
		return
	}
	reason := make(map[string]string, len(bad))
	for _, r := range bad {
		reason[r.sum] = r.reason
	}
	p.m.quarantined.WithLabelValues(string(ls.Dir)).Add(float64(len(marks)))
	for _, q := range marks {
		p.log.Error("row quarantined: it cannot be published; the rows around it were", "stream", ls.key,
			"reason", reason[q.Sum], "row_sha256", q.Sum)
	}
}
