package ccmssim

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// OracleCall is one completed call as the simulator holds it. Times are in
// the simulator's Location; a zero time is a 0 on the wire.
type OracleCall struct {
	VDN          int
	Inbound      bool
	CallID       string
	CallerNo     string
	CalleeNo     string
	CallType     int
	LeaveReason  int
	MediaType    int
	SubMediaType int
	WaitBegin    time.Time
	AckBegin     time.Time
	CallBegin    time.Time
	CallEnd      time.Time
	LogDate      time.Time // the completed row's write time; equals VisibleAt
	FilterTime   time.Time // the completed row's filter time (Options.FilterOn)
	VisibleAt    time.Time // when its completed row is first returned
	// NeverEnds marks a call that never ends (Traffic.NeverEndShare): it is
	// listed in progress forever. CallEnd is zero, and LogDate, FilterTime
	// and VisibleAt are those of its in-progress row.
	NeverEnds bool
}

// Oracle returns every call that has completed by the clock's now
// (callEnd <= now) and whose completed row's filter time is in [from, to),
// over every VDN and both directions, sorted by filter time, VDN, direction
// (inbound first) and callId. A call may have completed while its row is
// not written yet: VisibleAt tells when the server first returns it. With
// Traffic.NeverEndShare it also returns every call that never ends and has
// begun by now, with NeverEnds set and the in-progress row's times. Poison
// rows (Faults.Poison) are not calls and never appear.
func (s *Sim) Oracle(from, to time.Time) []OracleCall {
	return s.oracle(from.UnixMilli(), to.UnixMilli(), 0, s.set.clock.Now().UnixMilli())
}

// oracle is Oracle in epoch ms, optionally for one VDN (vdn > 0).
func (s *Sim) oracle(from, to int64, vdn int, now int64) []OracleCall {
	var out []OracleCall
	if from >= to {
		return out
	}
	lo, hi := 1, s.set.vdns
	if vdn > 0 {
		lo, hi = vdn, vdn
	}
	first := floorDiv(from-ms(s.set.lookback()), slotMillis)
	last := floorDiv(min(to-1, now), slotMillis)
	for v := lo; v <= hi; v++ {
		for _, inbound := range []bool{true, false} {
			for slot := first; slot <= last; slot++ {
				calls := s.set.generate(slotKey{vdn: v, inbound: inbound, slot: slot}) // not cached: a full scan would evict the server's slots
				for i := range calls {
					if oc, ok := s.oracleOf(v, inbound, &calls[i], from, to, now); ok {
						out = append(out, oc)
					}
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b OracleCall) int {
		return cmp.Or(a.FilterTime.Compare(b.FilterTime), cmp.Compare(a.VDN, b.VDN),
			cmpBool(!a.Inbound, !b.Inbound), cmp.Compare(a.CallID, b.CallID))
	})
	return out
}

// oracleOf is c as the oracle lists it, when it does for [from, to) at now:
// completed by now, or never ending and begun by now.
func (s *Sim) oracleOf(vdn int, inbound bool, c *call, from, to, now int64) (OracleCall, bool) {
	at := c.logDate // the completed row
	switch {
	case c.neverEnds && c.callBegin > now, !c.neverEnds && c.callEnd > now:
		return OracleCall{}, false
	case c.neverEnds:
		at = c.progressAt // the in-progress row, listed forever
	}
	r, ok := s.set.visible(c, at)
	if !ok || r.ft < from || r.ft >= to {
		return OracleCall{}, false
	}
	return s.oracleCall(vdn, inbound, c, r.ft), true
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

func (s *Sim) oracleCall(vdn int, inbound bool, c *call, ft int64) OracleCall {
	t := func(msec int64) time.Time {
		if msec == 0 {
			return time.Time{}
		}
		return time.UnixMilli(msec).In(s.set.loc)
	}
	oc := OracleCall{
		VDN: vdn, Inbound: inbound, CallID: c.id, CallerNo: c.callerNo, CalleeNo: c.calleeNo,
		CallType: c.callType, LeaveReason: c.leaveReason, MediaType: c.mediaType, SubMediaType: c.subMediaType,
		WaitBegin: t(c.waitBegin), AckBegin: t(c.ackBegin), CallBegin: t(c.callBegin), CallEnd: t(c.callEnd),
		LogDate: t(c.logDate), FilterTime: t(ft), VisibleAt: t(c.logDate),
	}
	if c.neverEnds {
		oc.LogDate, oc.VisibleAt, oc.NeverEnds = t(c.progressAt), t(c.progressAt), true
	}
	return oc
}

// serveOracle answers GET /sim/oracle?from=<ms>&to=<ms>[&vdn=<id>] with a
// JSON array of calls, times in epoch ms (0 when absent), "neverEnds" true
// for a call that never ends.
func (s *Sim) serveOracle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	qs := r.URL.Query()
	from, err1 := strconv.ParseInt(qs.Get("from"), 10, 64)
	to, err2 := strconv.ParseInt(qs.Get("to"), 10, 64)
	vdn := 0
	var err3 error
	if v := qs.Get("vdn"); v != "" {
		vdn, err3 = strconv.Atoi(v)
		if err3 == nil && (vdn < 1 || vdn > s.set.vdns) {
			err3 = errBadOracleQuery
		}
	}
	if err1 != nil || err2 != nil || err3 != nil || from > to {
		http.Error(w, errBadOracleQuery.Error()+" (vdn optional, 1..VDNs)", http.StatusBadRequest)
		return
	}
	calls := s.oracle(from, to, vdn, s.set.clock.Now().UnixMilli())
	b := []byte{'['}
	for i, c := range calls {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendOracleCall(b, c)
	}
	b = append(b, ']')
	writeJSON(w, http.StatusOK, b)
}

func appendOracleCall(b []byte, c OracleCall) []byte {
	msOf := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixMilli()
	}
	b = append(b, `{"vdn":`...)
	b = strconv.AppendInt(b, int64(c.VDN), 10)
	b = append(b, `,"inbound":`...)
	b = strconv.AppendBool(b, c.Inbound)
	b = append(b, `,"neverEnds":`...)
	b = strconv.AppendBool(b, c.NeverEnds)
	for _, f := range []struct {
		name string
		v    string
	}{{"callId", c.CallID}, {"callerNo", c.CallerNo}, {"calleeNo", c.CalleeNo}} {
		b = append(b, `,"`+f.name+`":`...)
		b = appendString(b, f.v)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"callType", int64(c.CallType)}, {"leaveReason", int64(c.LeaveReason)},
		{"mediaType", int64(c.MediaType)}, {"subMediaType", int64(c.SubMediaType)},
		{"waitBegin", msOf(c.WaitBegin)}, {"ackBegin", msOf(c.AckBegin)}, {"callBegin", msOf(c.CallBegin)},
		{"callEnd", msOf(c.CallEnd)}, {"logDate", msOf(c.LogDate)}, {"filterTime", msOf(c.FilterTime)},
		{"visibleAt", msOf(c.VisibleAt)},
	} {
		b = append(b, `,"`+f.name+`":`...)
		b = strconv.AppendInt(b, f.v, 10)
	}
	return append(b, '}')
}
