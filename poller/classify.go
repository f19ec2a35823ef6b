package poller

import (
	"encoding/json"
	"time"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/schemas"
)

// item is one completed call of a window: its store key and the call in
// normal form with its content hash, made together once.
type item struct {
	key  dedupe.Key
	call schemas.HashedCall
	// unended: the call never reported an end and will not be read again;
	// its key's CallEnd is its filter time (the store needs a day).
	unended bool
}

// badRow is a row that cannot be published: quarantined, reported once.
type badRow struct {
	raw    json.RawMessage // as received; phone numbers untreated
	reason string          // without the row's content
	sum    string          // schemas.RowSum of raw: the row's identity in the store and on the DLQ
}

func newBadRow(raw json.RawMessage, reason string) badRow {
	return badRow{raw: raw, reason: reason, sum: schemas.RowSum(raw)}
}

// classified is a window's rows sorted for delivery.
type classified struct {
	items    []item           // completed calls, in the order read
	pending  []dedupe.Pending // calls first seen running in this window
	resolved []string         // pending calls now completed or dropped
	dropped  []dedupe.Pending // pending calls the API can no longer return (also in resolved)
	bad      []badRow         // rows the source could not use
	suspect  []ccms.Suspect   // spans read as far as the server would page them
}

// classify sorts the rows of a window of stream s, whose state is st:
// completed calls become items; a running call not yet pending becomes
// pending, at its filter time (never before the horizon: the API returned it
// in a window inside its reach, so it can be read again from there); a
// pending call now completed is resolved; a pending call whose filter time is
// behind the horizon will never complete for us and is dropped; a running
// call whose filter time is before unendedBefore will not be read again and
// becomes an item without an end; a row the source could not use is a bad
// row, to be quarantined. Pure.
func classify(s Stream, st dedupe.StreamState, read ccms.Read, now, horizon, unendedBefore time.Time) classified {
	pending := make(map[string]bool, len(st.Pending))
	for _, pc := range st.Pending {
		pending[pc.CallID] = true
	}
	c := classified{suspect: read.Suspect}
	for _, b := range read.Bad {
		c.bad = append(c.bad, newBadRow(b.Raw, b.Reason))
	}
	for _, r := range read.Calls {
		switch ft := filterTime(r, now); {
		case !r.Completed() && ft.Before(unendedBefore):
			if pending[r.CallID] {
				delete(pending, r.CallID)
				c.resolved = append(c.resolved, r.CallID)
			}
			h := schemas.Hash(toSchema(s, r))
			c.items = append(c.items, item{call: h, unended: true,
				key: dedupe.Key{Stream: s.Key(), CallID: r.CallID, CallEnd: ft, Hash: h.Hash}})
		case !r.Completed() && !pending[r.CallID]:
			pending[r.CallID] = true
			c.pending = append(c.pending, dedupe.Pending{CallID: r.CallID,
				FilterTime: maxTime(ft, horizon), FirstSeen: now})
		case !r.Completed(): // already pending: keeps its filter time and first sighting
		default:
			if pending[r.CallID] {
				delete(pending, r.CallID)
				c.resolved = append(c.resolved, r.CallID)
			}
			h := schemas.Hash(toSchema(s, r))
			c.items = append(c.items, item{call: h,
				key: dedupe.Key{Stream: s.Key(), CallID: r.CallID, CallEnd: h.Call.CallEnd, Hash: h.Hash}})
		}
	}
	for _, pc := range st.Pending {
		if pending[pc.CallID] && pc.FilterTime.Before(horizon) {
			c.resolved = append(c.resolved, pc.CallID)
			c.dropped = append(c.dropped, pc)
		}
	}
	return c
}

// batch completes the planned batch with the window's calls: the published
// ones (fresh) are marked seen, pending calls upserted and resolved.
func (c classified) batch(b dedupe.Batch, fresh []item) dedupe.Batch {
	b.Pending, b.Resolved = c.pending, c.resolved
	b.Seen = make([]dedupe.Key, len(fresh))
	for i, it := range fresh {
		b.Seen[i] = it.key
	}
	return b
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

func toSchema(s Stream, c ccms.Call) schemas.Call {
	return schemas.Call{
		CCID: s.CCID, VDN: s.VDN, Inbound: s.Inbound(),
		CallID: c.CallID, CallerNo: c.CallerNo, CalleeNo: c.CalleeNo,
		CallType: c.CallType, LeaveReason: c.LeaveReason, MediaType: c.MediaType, SubMediaType: c.SubMediaType,
		LogDate: c.LogDate, WaitBegin: c.WaitBegin, AckBegin: c.AckBegin, CallBegin: c.CallBegin, CallEnd: c.CallEnd,
	}
}
