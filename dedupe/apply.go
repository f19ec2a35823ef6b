package dedupe

import (
	"cmp"
	"slices"
	"time"
)

// Apply returns the state of st's stream after b was committed: the rule
// Commit applies to the cursor record and the pending set. A process that
// owns a stream loads its state once and advances it with Apply after each
// successful Commit, instead of reading back what it wrote; the store's State
// after Commit(b) equals st.Apply(b) (TestStateAfterCommitIsApply). b must be
// valid (Commit accepted it) and of st's stream. st is not changed.
//
//   - Pending: b.Pending upserted (the filter time replaced, the earliest
//     non-zero FirstSeen kept), then b.Resolved and every call of b.Seen
//     removed; sorted by FilterTime, then CallID.
//   - Cursor, LastSweep, SealedDay, LastChanceDay: replaced when b sets them.
//
// Seen marks, gaps and quarantined rows are not part of StreamState.
func (st StreamState) Apply(b Batch) StreamState {
	next := st
	next.Pending = applyPending(st.Pending, b)
	if b.Cursor != nil {
		next.Cursor = *b.Cursor
	}
	if b.LastSweep != nil {
		next.LastSweep = *b.LastSweep
	}
	if b.SealedDay != "" {
		next.SealedDay = b.SealedDay
	}
	if b.LastChanceDay != "" {
		next.LastChanceDay = b.LastChanceDay
	}
	return next
}

func applyPending(old []Pending, b Batch) []Pending {
	byID := make(map[string]int, len(old)+len(b.Pending)) // call id -> index in out
	out := slices.Clone(old)
	for i, pc := range out {
		byID[pc.CallID] = i
	}
	for _, pc := range b.Pending {
		i, known := byID[pc.CallID]
		if !known {
			byID[pc.CallID] = len(out)
			out = append(out, pc)
			continue
		}
		pc.FirstSeen = earliestSet(out[i].FirstSeen, pc.FirstSeen)
		out[i] = pc
	}
	gone := make(map[string]bool, len(b.Resolved)+len(b.Seen))
	for _, id := range b.Resolved {
		gone[id] = true
	}
	for _, k := range b.Seen {
		gone[k.CallID] = true
	}
	out = slices.DeleteFunc(out, func(pc Pending) bool { return gone[pc.CallID] })
	slices.SortStableFunc(out, func(a, b Pending) int {
		if c := a.FilterTime.Compare(b.FilterTime); c != 0 {
			return c
		}
		return cmp.Compare(a.CallID, b.CallID)
	})
	return out
}

// earliestSet is the earlier of two times, ignoring a zero one.
func earliestSet(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}
