package poller_test

import (
	"context"
	"encoding/json"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/schemas"
)

// lateSource holds one call, listed only from visibleAt on, in windows
// that hold its queue start.
type lateSource struct {
	call      ccms.Call
	visibleAt time.Time
}

func (s lateSource) ReadWindow(ctx context.Context, w ccms.Window) (ccms.Read, error) {
	if err := ctx.Err(); err != nil {
		return ccms.Read{}, err
	}
	r := ccms.Read{Stats: ccms.ReadStats{Requests: 1, Pages: 1}}
	if !time.Now().Before(s.visibleAt) && !s.call.WaitBegin.Before(w.Start) && s.call.WaitBegin.Before(w.End) {
		r.Calls = []ccms.Call{s.call}
	}
	return r, nil
}

// A call from 22:00 that becomes visible at 12:00 the next day — after the
// reconciliation (04:00) and beyond the sweeps' six hours — is found by the
// last-chance read at 23:00, just before the API forgets its day, and the
// day is sealed again with it counted.
func TestAVeryLateRowIsPublishedByTheLastChanceRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		midnight := time.Now() // synctest starts at 2000-01-01 00:00 UTC
		call := completedCall("late", "13800138000", midnight.Add(-time.Hour))
		src := lateSource{call: call, visibleAt: midnight.Add(12 * time.Hour)}
		store := openStore(t)
		if err := store.SetCursor("1/1/in", midnight.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		pub := &fakePublisher{}
		p := oneStreamPoller(t, store, src, pub, 0)
		ctx, cancel := context.WithTimeout(t.Context(), 22*time.Hour+50*time.Minute)
		if err := p.Work(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		if len(pub.events) != 0 {
			t.Fatalf("published before the last chance: %v", callIDs(pub.events))
		}
		ctx, cancel = context.WithTimeout(t.Context(), 30*time.Minute)
		defer cancel()
		if err := p.Work(ctx); err != nil {
			t.Fatal(err)
		}
		if got := callIDs(pub.events); len(got) != 1 || got[0] != "late" {
			t.Fatalf("published %v by 23:20, want the late call", got)
		}
		var counts []int
		for _, e := range pub.control {
			if e.Type == schemas.TypeDaySealed {
				var d schemas.DaySealedData
				_ = json.Unmarshal(e.Data, &d)
				counts = append(counts, d.Published)
			}
		}
		if len(counts) != 2 || counts[0] != 0 || counts[1] != 1 {
			t.Errorf("day-sealed counts %v, want the reconciliation's 0, then the last chance's 1", counts)
		}
		if st, _ := store.State("1/1/in"); st.LastChanceDay != "19991231" {
			t.Errorf("last-chance day %q, want 19991231", st.LastChanceDay)
		}
	})
}

// A call from 22:00 still listed as running when the last-chance read comes
// (ccms-api.md A17: perhaps abandoned) is published as a call without an end
// instead of being dropped at the horizon, and leaves the pending set.
func TestACallThatNeverEndsIsPublishedWithoutAnEndAtTheLastChance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		midnight := time.Now()
		running := completedCall("forever", "13800138000", midnight.Add(-time.Hour))
		running.CallEnd = time.Time{}
		src := lateSource{call: running, visibleAt: midnight.Add(-2 * time.Hour)}
		store := openStore(t)
		if err := store.SetCursor("1/1/in", midnight.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		pub := &fakePublisher{}
		p := oneStreamPoller(t, store, src, pub, 0)
		ctx, cancel := context.WithTimeout(t.Context(), 23*time.Hour+20*time.Minute)
		defer cancel()
		if err := p.Work(ctx); err != nil {
			t.Fatal(err)
		}
		if len(pub.events) != 1 || pub.events[0].Type != schemas.TypeCallUnended {
			t.Fatalf("events %v, want the call published once without an end", callIDs(pub.events))
		}
		var d schemas.CallCompletedData
		if err := json.Unmarshal(pub.events[0].Data, &d); err != nil || !d.CallEnd.IsZero() {
			t.Errorf("data %s: want callEnd null (%v)", pub.events[0].Data, err)
		}
		if st, _ := store.State("1/1/in"); len(st.Pending) != 0 {
			t.Errorf("still pending after the last chance: %+v", st.Pending)
		}
	})
}
