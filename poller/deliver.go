package poller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/schemas"
)

// deliver publishes what is new in a classified window and commits the turn.
// It is the delivery invariant (DESIGN.md 1 and 9) in one place: control
// records that are facts of their own (gaps) go out before the call events,
// so a control topic that is down fails the turn before anything was
// published; the events are acknowledged by Kafka before anything is marked
// seen; the day seal follows the day's events; then seen-marks, pending
// calls, the cursor, the sealed day and gaps land in one store transaction.
// A crash before the commit publishes the same events again, with the same
// ids; none is lost. It returns how many call events were published.
func (p *Poller) deliver(ctx context.Context, ls *live, pl plan, c classified, now time.Time) (int, error) {
	fresh, err := p.unseen(c.items)
	if err != nil {
		return 0, err
	}
	events, err := p.encode(fresh)
	if err != nil {
		return 0, err
	}
	if gaps := p.gapRecords(ls, pl.batch.Gaps); len(gaps) > 0 {
		if err := p.pub.PublishControl(ctx, gaps...); err != nil {
			return 0, fmt.Errorf("publish %d control records: %w", len(gaps), err)
		}
	}
	if len(events) > 0 {
		if err := p.pub.Publish(ctx, events...); err != nil {
			return 0, fmt.Errorf("publish %d events: %w", len(events), err)
		}
	}
	b := c.batch(pl.batch, fresh)
	sealErr := p.seal(ctx, ls, pl, fresh, now, &b)
	if err := p.store.Commit(b); err != nil {
		return 0, errors.Join(sealErr, fmt.Errorf("commit: %w", err))
	}
	p.committed(ls, b, c, events, now)
	return len(events), sealErr
}

// unseen returns the items the store has not seen with this content, in the
// order read, each key marked Update when the call was published with other
// content. Store.Unseen answers a subsequence of its keys in their order, so
// its answer is walked alongside the items.
func (p *Poller) unseen(items []item) ([]item, error) {
	keys := make([]dedupe.Key, len(items))
	for i, it := range items {
		keys[i] = it.key
	}
	fresh, err := p.store.Unseen(keys)
	if err != nil {
		return nil, err
	}
	out := make([]item, 0, len(fresh))
	i := 0
	for _, k := range fresh {
		for i < len(items) && items[i].key.CallID != k.CallID {
			i++
		}
		if i == len(items) {
			return nil, fmt.Errorf("store answered call %s out of order or not asked for", k.CallID)
		}
		out = append(out, item{key: k, call: items[i].call})
		i++
	}
	return out, nil
}

// encode makes the call events of items.
func (p *Poller) encode(items []item) ([]schemas.Event, error) {
	events := make([]schemas.Event, 0, len(items))
	for _, it := range items {
		e, err := p.enc.Completed(it.call, it.key.Update)
		if err != nil {
			return nil, fmt.Errorf("encode call %s: %w", it.key.CallID, err)
		}
		events = append(events, e)
	}
	return events, nil
}

// gapRecords are the control records of the gaps a turn records.
func (p *Poller) gapRecords(ls *live, gaps []dedupe.Gap) []schemas.Event {
	var out []schemas.Event
	for _, g := range gaps {
		out = append(out, p.enc.Gap(ls.Stream, g.Start, g.End, g.DetectedAt))
	}
	return out
}

// seal publishes the sealed record of the planned day, after the day's
// events. It counts the calls whose callEnd falls on that day: those already
// seen plus the new ones this turn publishes. A seal that fails does not undo
// the events: they are acknowledged, so they are committed as seen without
// the sealed day (b.SealedDay is cleared), and the retry publishes the seal
// alone.
func (p *Poller) seal(ctx context.Context, ls *live, pl plan, fresh []item, now time.Time, b *dedupe.Batch) error {
	if pl.seal.IsZero() {
		return nil
	}
	n, err := p.store.CountSeen(ls.key, pl.seal)
	if err == nil {
		for _, it := range fresh {
			if !it.key.Update && DayKey(it.key.CallEnd, p.loc) == b.SealedDay {
				n++
			}
		}
		if err = p.pub.PublishControl(ctx, p.enc.DaySealed(ls.Stream, b.SealedDay, n, now)); err != nil {
			err = fmt.Errorf("publish 1 control records: %w", err)
		}
	}
	if err != nil {
		b.SealedDay = ""
	}
	return err
}

// committed advances the stream's state by the batch the store just
// committed, and counts and tells what the commit did.
func (p *Poller) committed(ls *live, b dedupe.Batch, c classified, events []schemas.Event, now time.Time) {
	p.mu.Lock()
	ls.state = ls.state.Apply(b)
	ls.lastOK = now
	p.mu.Unlock()
	p.m.countPublished(ls.Dir, b.Seen)
	p.m.duplicates.WithLabelValues(string(ls.Dir)).Add(float64(len(c.items) - len(b.Seen)))
	for _, pc := range c.dropped {
		p.m.pendingDropped.Inc()
		p.log.Error("pending call fell behind the API horizon and is dropped", "stream", ls.key,
			"call_id", pc.CallID, "filter_time", pc.FilterTime, "horizon", Horizon(now, p.reach))
	}
	if len(events) > 0 {
		p.onPub(events)
	}
}
