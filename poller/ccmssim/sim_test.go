package ccmssim

import (
	"cmp"
	"regexp"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
)

func TestPagingReturnsEveryRowExactlyOnceInOrder(t *testing.T) {
	s, _ := newSim(t, Options{Traffic: Traffic{ListInProgress: true}})
	earliest, _ := s.AllowedRange(testNow)
	for _, inbound := range []bool{true, false} {
		whole := page(t, s, queryBody(1, inbound, earliest, testNow, 0, 0)) // no limit: everything
		if whole.Count < 250 {
			t.Fatalf("busy VDN 1 has only %d rows since yesterday; the test needs several pages", whole.Count)
		}
		if len(whole.Data) != whole.Count {
			t.Fatalf("unpaged query returned %d rows, count %d", len(whole.Data), whole.Count)
		}
		paged := readAll(t, s, 1, inbound, earliest, testNow)
		if diff := gocmp.Diff(whole.Data, paged); diff != "" {
			t.Errorf("paged rows differ from the unpaged rows (-unpaged +paged):\n%s", diff)
		}
		seen := map[string]bool{}
		for i, r := range paged {
			if seen[r.CallID] {
				t.Errorf("callId %s returned twice", r.CallID)
			}
			seen[r.CallID] = true
			if i > 0 {
				prev := paged[i-1]
				if c := cmp.Or(cmp.Compare(filterTime(prev), filterTime(r)), cmp.Compare(prev.CallID, r.CallID)); c >= 0 {
					t.Errorf("rows %d and %d out of order: %+v then %+v", i-1, i, prev, r)
				}
			}
		}
	}
}

// filterTime is callBegin, or waitBegin for a call never answered.
func filterTime(r wireRow) int64 {
	if r.CallBegin != 0 {
		return r.CallBegin
	}
	return r.WaitBegin
}

func TestAnOffsetPastTheEndReturnsNoRowsAndTheCount(t *testing.T) {
	s, _ := newSim(t, Options{})
	p := page(t, s, queryBody(1, true, testNow.Add(-2*time.Hour), testNow, 100, 100000))
	if len(p.Data) != 0 || p.Count == 0 {
		t.Errorf("got %d rows and count %d, want 0 rows and the window's count", len(p.Data), p.Count)
	}
}

func TestTheOracleAgreesWithTheServerOnceEveryRowIsVisible(t *testing.T) {
	for _, filter := range []string{FilterCallBegin, FilterWaitBegin, FilterCallEnd, FilterLogDate} {
		t.Run("filtering on "+filter, func(t *testing.T) {
			s, clock := newSim(t, Options{VDNs: 4, FilterOn: filter, Traffic: Traffic{ListInProgress: true, LongCallShare: 0.05}})
			earliest, _ := s.AllowedRange(testNow)
			from, to := earliest.Add(8*time.Hour), earliest.Add(14*time.Hour) // yesterday 08:00-14:00
			clock.Set(testNow)                                                // 25 hours later: every call is done

			var fromServer []OracleCall
			for vdn := 1; vdn <= 4; vdn++ {
				for _, inbound := range []bool{true, false} {
					for _, r := range readAll(t, s, vdn, inbound, from, to.Add(-time.Millisecond)) {
						if r.CallEnd == 0 {
							t.Fatalf("call %s still in progress 25 hours later", r.CallID)
						}
						fromServer = append(fromServer, oracleOf(r, inbound, filter))
					}
				}
			}
			var fromOracle []OracleCall
			for _, c := range s.Oracle(from, to) {
				if !c.VisibleAt.After(testNow) {
					fromOracle = append(fromOracle, utcCall(c))
				}
			}
			if len(fromOracle) < 50 {
				t.Fatalf("the oracle holds only %d calls; the test needs more", len(fromOracle))
			}
			sortOracle(fromServer)
			if diff := gocmp.Diff(fromOracle, fromServer); diff != "" {
				t.Errorf("oracle and server disagree (-oracle +server):\n%s", diff)
			}
		})
	}
}

func oracleOf(r wireRow, inbound bool, filter string) OracleCall {
	t := func(ms int64) time.Time {
		if ms == 0 {
			return time.Time{}
		}
		return time.UnixMilli(ms).UTC()
	}
	ft := map[string]int64{FilterCallBegin: filterTime(r), FilterWaitBegin: r.WaitBegin, FilterCallEnd: r.CallEnd,
		FilterLogDate: r.LogDate}[filter]
	return OracleCall{VDN: r.VDN, Inbound: inbound, CallID: r.CallID, CallerNo: r.CallerNo, CalleeNo: r.CalleeNo,
		CallType: r.CallType, LeaveReason: r.LeaveReason, MediaType: r.MediaType, SubMediaType: r.SubMediaType,
		WaitBegin: t(r.WaitBegin), AckBegin: t(r.AckBegin), CallBegin: t(r.CallBegin), CallEnd: t(r.CallEnd),
		LogDate: t(r.LogDate), FilterTime: t(ft), VisibleAt: t(r.LogDate)}
}

func utcCall(c OracleCall) OracleCall {
	for _, p := range []*time.Time{&c.WaitBegin, &c.AckBegin, &c.CallBegin, &c.CallEnd, &c.LogDate, &c.FilterTime, &c.VisibleAt} {
		if !p.IsZero() {
			*p = p.UTC()
		}
	}
	return c
}

func sortOracle(calls []OracleCall) {
	slices.SortFunc(calls, func(a, b OracleCall) int {
		return cmp.Or(a.FilterTime.Compare(b.FilterTime), cmp.Compare(a.VDN, b.VDN),
			cmpBool(!a.Inbound, !b.Inbound), cmp.Compare(a.CallID, b.CallID))
	})
}

func TestTheSameSeedGivesTheSameCalls(t *testing.T) {
	from, to := testNow.Add(-30*time.Hour), testNow
	a, _ := newSim(t, Options{Seed: 42, VDNs: 8})
	b, _ := newSim(t, Options{Seed: 42, VDNs: 8})
	// Warm b's cache in another order: generation must not depend on it.
	readAll(t, b, 3, false, testNow.Add(-2*time.Hour), testNow)
	ca, cb := a.Oracle(from, to), b.Oracle(from, to)
	if len(ca) == 0 {
		t.Fatal("no calls")
	}
	if diff := gocmp.Diff(ca, cb); diff != "" {
		t.Errorf("same seed, different calls (-a +b):\n%s", diff)
	}
	c, _ := newSim(t, Options{Seed: 43, VDNs: 8})
	if gocmp.Equal(ca, c.Oracle(from, to)) {
		t.Error("seeds 42 and 43 gave the same calls")
	}
}

func TestTrafficIsRealistic(t *testing.T) {
	s, _ := newSim(t, Options{VDNs: 200, Traffic: Traffic{Start: testNow.Add(-24 * time.Hour)}})
	calls := s.Oracle(testNow.Add(-24*time.Hour), testNow)
	perVDN := map[int]int{}
	ids := map[string]bool{}
	idPattern := regexp.MustCompile(`^\d{10}-\d+$`)
	var abandoned, answered, outbound, long int
	for _, c := range calls {
		perVDN[c.VDN]++
		if ids[c.CallID] {
			t.Errorf("callId %s used twice", c.CallID)
		}
		ids[c.CallID] = true
		if !idPattern.MatchString(c.CallID) {
			t.Errorf("callId %q is not like 1762523104-538062", c.CallID)
		}
		if c.WaitBegin.Before(testNow.Add(-24 * time.Hour)) {
			t.Errorf("call %s waits from %v, before Traffic.Start", c.CallID, c.WaitBegin)
		}
		if !c.Inbound {
			outbound++
		}
		switch {
		case c.CallBegin.IsZero():
			if !c.AckBegin.IsZero() {
				t.Errorf("unanswered call %s has ackBegin", c.CallID)
			}
			if c.LeaveReason == 89 {
				abandoned++
			}
		default:
			answered++
			if c.CallEnd.Sub(c.CallBegin) >= time.Hour {
				long++
			}
		}
		if c.CallEnd.Before(c.WaitBegin) || c.LogDate.Before(c.CallEnd) {
			t.Errorf("call %s: times out of order %+v", c.CallID, c)
		}
	}
	busy := 0
	for v := 1; v <= 200; v++ {
		if s.Busy(v) {
			busy++
		}
	}
	if !s.Busy(1) || busy < 2 || busy > 40 {
		t.Errorf("%d of 200 VDNs are busy (VDN 1 busy: %v); want a few, VDN 1 among them", busy, s.Busy(1))
	}
	if perVDN[1] < 10*perVDN[2]+1 && !s.Busy(2) {
		t.Errorf("busy VDN 1 has %d calls, quiet VDN 2 has %d", perVDN[1], perVDN[2])
	}
	if abandoned == 0 || answered == 0 || outbound == 0 || long == 0 {
		t.Errorf("abandoned %d, answered %d, outbound %d, long %d: want some of each", abandoned, answered, outbound, long)
	}
}

func TestAnInProgressCallIsListedWithoutCallEndThenCompletes(t *testing.T) {
	s, clock := newSim(t, Options{Traffic: Traffic{ListInProgress: true, LongCallShare: 1}}) // every answered call is long
	from, to := testNow.Add(-40*time.Minute), testNow

	running := map[string]wireRow{}
	for _, r := range readAll(t, s, 1, true, from, to) {
		if r.CallEnd == 0 {
			if r.CallBegin == 0 || r.AckBegin == 0 || r.LogDate < r.CallBegin || r.LogDate > testNow.UnixMilli() {
				t.Errorf("in-progress row %+v: want callBegin, ackBegin and a logDate between callBegin and now", r)
			}
			running[r.CallID] = r
		}
	}
	if len(running) == 0 {
		t.Fatal("no call listed in progress")
	}
	if got := s.Oracle(from.Add(-time.Hour), to); slices.ContainsFunc(got, func(c OracleCall) bool { _, ok := running[c.CallID]; return ok }) {
		t.Error("the oracle lists a call that is still running")
	}

	clock.Advance(5 * time.Hour) // longer than the longest call plus ingestion
	done := map[string]wireRow{}
	for _, r := range readAll(t, s, 1, true, from, to) {
		done[r.CallID] = r
	}
	visible := map[string]time.Time{}
	for _, c := range s.Oracle(from, to.Add(time.Millisecond)) {
		visible[c.CallID] = c.VisibleAt
	}
	for id, before := range running {
		after, ok := done[id]
		switch {
		case !ok:
			t.Errorf("call %s disappeared", id)
		case after.CallEnd <= after.CallBegin || after.CallBegin != before.CallBegin || after.LogDate < after.CallEnd:
			t.Errorf("call %s completed as %+v after %+v", id, after, before)
		case !visible[id].After(testNow):
			t.Errorf("oracle says call %s was visible completed at %v, before it ended", id, visible[id])
		}
	}
}

func TestRowsAppearOnlyAfterTheirIngestionDelay(t *testing.T) {
	s, clock := newSim(t, Options{Traffic: Traffic{IngestDelayMax: 10 * time.Minute}})
	from := testNow.Add(-3 * time.Hour)
	calls := s.Oracle(from, testNow)
	var late OracleCall
	for _, c := range calls {
		if c.VDN == 1 && c.Inbound && c.VisibleAt.After(testNow) {
			late = c
			break
		}
	}
	if late.CallID == "" {
		t.Fatal("no call completed but not yet written")
	}
	ids := func() map[string]bool {
		m := map[string]bool{}
		for _, r := range readAll(t, s, 1, true, from, testNow) {
			m[r.CallID] = true
		}
		return m
	}
	if ids()[late.CallID] {
		t.Errorf("call %s listed before its row was written at %v", late.CallID, late.VisibleAt)
	}
	clock.Set(late.VisibleAt.Add(-time.Millisecond))
	if ids()[late.CallID] {
		t.Errorf("call %s listed 1 ms before its row was written", late.CallID)
	}
	clock.Set(late.VisibleAt)
	if !ids()[late.CallID] {
		t.Errorf("call %s not listed once its row was written", late.CallID)
	}
}

func TestCallerAndCalleeFiltersSelectMatchingRows(t *testing.T) {
	s, _ := newSim(t, Options{})
	from := testNow.Add(-2 * time.Hour)
	all := readAll(t, s, 1, true, from, testNow)
	if len(all) == 0 {
		t.Fatal("no rows")
	}
	q := queryBody(1, true, from, testNow, 100, 0)
	q["callerNo"] = all[0].CallerNo
	p := page(t, s, q)
	if p.Count < 1 || len(p.Data) != p.Count {
		t.Fatalf("callerNo filter: count %d, %d rows", p.Count, len(p.Data))
	}
	for _, r := range p.Data {
		if r.CallerNo != all[0].CallerNo {
			t.Errorf("row %s has callerNo %s", r.CallID, r.CallerNo)
		}
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	base := Options{AK: "a", SK: "s", CCID: 1, VDNs: 1}
	tests := []struct {
		name   string
		change func(*Options)
	}{
		{"an empty SK is refused", func(o *Options) { o.SK = "" }},
		{"ccId 0 is refused", func(o *Options) { o.CCID = 0 }},
		{"5001 VDNs are refused", func(o *Options) { o.VDNs = 5001 }},
		{"an unknown filter time is refused", func(o *Options) { o.FilterOn = "ackBegin" }},
		{"a fault probability above 1 is refused", func(o *Options) { o.Faults.ServerError = 1.5 }},
		{"a poison share above 1 is refused", func(o *Options) { o.Faults.Poison = 1.5 }},
		{"a poison kind that does not exist is refused", func(o *Options) { o.Faults.PoisonKind = "gremlin" }},
		{"a negative page cap is refused", func(o *Options) { o.Faults.PageCap = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.change(&o)
			if _, err := New(o); err == nil {
				t.Error("New accepted the options")
			}
		})
	}
	if _, err := New(base); err != nil {
		t.Errorf("New(minimal options) = %v", err)
	}
}

func TestManyVDNsOverSeveralDaysCostLittle(t *testing.T) {
	s, _ := newSim(t, Options{VDNs: 5000})
	earliest, latest := s.AllowedRange(testNow)
	// One query per stream over the whole range touches ~60 slots per stream
	// for 10,000 streams; the cache stays bounded.
	for vdn := 1; vdn <= 5000; vdn += 499 {
		for _, inbound := range []bool{true, false} {
			page(t, s, queryBody(vdn, inbound, earliest, latest, 100, 0))
		}
	}
	s.cache.mu.Lock()
	n, calls := len(s.cache.m), s.cache.calls
	s.cache.mu.Unlock()
	if n == 0 || n > slotCacheMax || calls > slotCacheMaxCalls {
		t.Errorf("cache holds %d slots and %d calls, want 1..%d and at most %d", n, calls, slotCacheMax, slotCacheMaxCalls)
	}
}
