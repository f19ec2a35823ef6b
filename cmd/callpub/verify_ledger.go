package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/callpub/callpub/schemas"
)

// The ledger is verify's pure part: it takes the records of the event and
// control topics one at a time, in topic order, and then judges each
// (stream, day) against its latest seal. It does no I/O.
//
// How calls are counted, matching how a seal counts them (the calls the
// store has seen ending on the day):
//
//   - A call is one (stream, callId). It counts once, on the day its latest
//     call-completed event's time (callEnd) falls on in the tenant's zone; an
//     update that moved callEnd across midnight moves the call, as the store
//     does.
//   - A record whose event id was already read is a duplicate: delivery is at
//     least once, and a repeat carries the same id.
//   - An update (data.update true, a new id) is the same call published again
//     with other content: counted under updates, not as another call.
//   - A call published without an end (call.unended) is not in a seal's
//     count; it is counted under unended, on the day of its event time. The
//     same call completing later counts as a call like any other.
//
// A stream's records share a partition (their key is the VDN), so topic
// order is publish order: the latest seal of a (stream, day) is the last one
// read.

// dayKey names one (stream, day); day is YYYY-MM-DD in the tenant's zone.
type dayKey struct{ stream, day string }

// callSeen is what the ledger keeps of one call.
type callSeen struct {
	day string   // the day of its latest call-completed event
	ids []string // every event id read for it, usually one
}

// sealSeen is the latest seal of a (stream, day) and how many were read.
type sealSeen struct {
	data  schemas.DaySealedData
	v1    bool
	count int
}

// ledger accumulates what the topics hold. Its zero value is not usable:
// make one with newLedger.
type ledger struct {
	loc     *time.Location
	calls   map[string]map[string]*callSeen // stream -> callId -> call
	dups    map[dayKey]int
	updates map[dayKey]int
	unended map[dayKey]int
	seals   map[dayKey]*sealSeen
	gaps    map[string][]schemas.Span // stream -> spans lost to the horizon (gap records)
	streams map[string]bool           // every stream any record names
	other   int                       // records of other types, ignored
}

func newLedger(loc *time.Location) *ledger {
	return &ledger{loc: loc, calls: map[string]map[string]*callSeen{}, dups: map[dayKey]int{},
		updates: map[dayKey]int{}, unended: map[dayKey]int{}, seals: map[dayKey]*sealSeen{},
		gaps: map[string][]schemas.Span{}, streams: map[string]bool{}}
}

// dayOf names t's day in the tenant's zone, as seals name days.
func (l *ledger) dayOf(t time.Time) string { return t.In(l.loc).Format(time.DateOnly) }

// streamOf is the stream a call event's data names.
func streamOf(d schemas.CallCompletedData) string {
	return schemas.Stream{CCID: d.CCID, VDN: d.VDN, Dir: schemas.DirectionOf(d.Direction == "inbound")}.Key()
}

// event takes one record of the event topic.
func (l *ledger) event(e schemas.Event) error {
	switch e.Type {
	case schemas.TypeCallCompleted:
		d, err := schemas.CallCompletedOf(e)
		if err != nil {
			return err
		}
		stream := streamOf(d)
		l.streams[stream] = true
		calls := l.calls[stream]
		if calls == nil {
			calls = map[string]*callSeen{}
			l.calls[stream] = calls
		}
		day := l.dayOf(e.Time)
		c := calls[d.CallID]
		switch {
		case c == nil:
			calls[d.CallID] = &callSeen{day: day, ids: []string{e.ID}}
		case slices.Contains(c.ids, e.ID):
			l.dups[dayKey{stream, day}]++
		default:
			c.ids = append(c.ids, e.ID)
			c.day = day
			l.updates[dayKey{stream, day}]++
		}
	case schemas.TypeCallUnended:
		var d schemas.CallCompletedData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return fmt.Errorf("decode event %s data: %w", e.ID, err)
		}
		stream := streamOf(d)
		l.streams[stream] = true
		l.unended[dayKey{stream, l.dayOf(e.Time)}]++
	default:
		l.other++
	}
	return nil
}

// control takes one record of the control topic.
func (l *ledger) control(e schemas.Event) error {
	switch e.Type {
	case schemas.TypeDaySealed, schemas.TypeDaySealedV1:
		d, err := schemas.DaySealedOf(e)
		if err != nil {
			return err
		}
		l.streams[d.Stream] = true
		k := dayKey{d.Stream, d.Day}
		s := l.seals[k]
		if s == nil {
			s = &sealSeen{}
			l.seals[k] = s
		}
		s.data, s.v1 = d, e.Type == schemas.TypeDaySealedV1
		s.count++
	case schemas.TypeGap:
		var d schemas.GapData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return fmt.Errorf("decode event %s data: %w", e.ID, err)
		}
		if _, err := schemas.ParseStream(d.Stream); err != nil {
			return fmt.Errorf("decode event %s data: %w", e.ID, err)
		}
		l.streams[d.Stream] = true
		if d.LostStart.Before(d.LostEnd.Time) {
			l.gaps[d.Stream] = append(l.gaps[d.Stream], schemas.Span{Start: d.LostStart.Time, End: d.LostEnd.Time})
		}
	case schemas.TypeHeartbeat:
		var d schemas.HeartbeatData
		if err := json.Unmarshal(e.Data, &d); err == nil {
			if _, err := schemas.ParseStream(d.Stream); err == nil {
				l.streams[d.Stream] = true
			}
		}
	default:
		l.other++
	}
	return nil
}

// dayVerdict is the judgement of one (stream, day): a row of the report.
type dayVerdict struct {
	Stream string `json:"stream"`
	Day    string `json:"day"`
	// Sealed is the latest seal's count of calls; nil without a seal.
	Sealed     *int `json:"sealed"`
	Found      int  `json:"found"`      // distinct calls on the topic whose latest event falls on the day
	Duplicates int  `json:"duplicates"` // records repeating an event id already read
	Updates    int  `json:"updates"`    // re-publications of a call with other content
	Unended    int  `json:"unended"`    // calls published without an end (not in a seal's count)
	Seals      int  `json:"seals"`      // day-sealed records read for the day; the last one counts
	LastChance bool `json:"lastChance"` // the latest seal is the last-chance read's
	// Complete is the latest seal's own verdict.
	Complete bool `json:"complete"`
	// OK: sealed complete, and the topic holds exactly the calls sealed.
	OK bool `json:"ok"`
	// Verdict is complete, incomplete, mismatch, not sealed or not read.
	Verdict string   `json:"verdict"`
	Reasons []string `json:"reasons"`
}

// Verdicts.
const (
	verdictComplete   = "complete"
	verdictIncomplete = "incomplete"
	verdictMismatch   = "mismatch"
	verdictNotSealed  = "not sealed"
	verdictNotRead    = "not read"
)

// selection says which (stream, day)s to judge.
type selection struct {
	stream   string    // "" for every stream
	from, to string    // a range of days, YYYY-MM-DD; "" for every day read
	floor    time.Time // days starting before it are not (wholly) on what was read
	why      string    // why the floor: "-from" or the topic's retention
}

// keys are the (stream, day)s sel asks for, in order. With days named, it
// is every stream any record names (or sel's) on each of them, so a stream
// whose seal is missing altogether is not overlooked; without, every
// (stream, day) a call, seal or gap falls on, from the floor on.
func (l *ledger) keys(sel selection) []dayKey {
	streams := []string{}
	if sel.stream != "" {
		streams = append(streams, sel.stream)
	} else {
		for s := range l.streams {
			streams = append(streams, s)
		}
	}
	set := map[dayKey]bool{}
	if sel.from != "" {
		start, _ := time.ParseInLocation(time.DateOnly, sel.from, l.loc)
		end, _ := time.ParseInLocation(time.DateOnly, sel.to, l.loc)
		for d := start; !d.After(end); d = d.AddDate(0, 0, 1) {
			for _, s := range streams {
				set[dayKey{s, d.Format(time.DateOnly)}] = true
			}
		}
	} else {
		add := func(k dayKey) {
			if (sel.stream == "" || k.stream == sel.stream) && !l.dayStart(k.day).Before(sel.floor) {
				set[k] = true
			}
		}
		for stream, calls := range l.calls {
			for _, c := range calls {
				add(dayKey{stream, c.day})
			}
		}
		for k := range l.seals {
			add(k)
		}
		for k := range l.unended {
			add(k)
		}
		for stream, spans := range l.gaps {
			for _, sp := range spans {
				for d := l.dayStart(l.dayOf(sp.Start)); d.Before(sp.End); d = d.AddDate(0, 0, 1) {
					add(dayKey{stream, d.Format(time.DateOnly)})
				}
			}
		}
	}
	out := make([]dayKey, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b dayKey) int { return cmp.Or(cmp.Compare(a.day, b.day), compareStreams(a.stream, b.stream)) })
	return out
}

// compareStreams orders streams by ccId, VDN and direction, numerically.
func compareStreams(a, b string) int {
	sa, errA := schemas.ParseStream(a)
	sb, errB := schemas.ParseStream(b)
	if errA != nil || errB != nil {
		return cmp.Compare(a, b)
	}
	return cmp.Or(cmp.Compare(sa.CCID, sb.CCID), cmp.Compare(sa.VDN, sb.VDN), cmp.Compare(sa.Dir, sb.Dir))
}

// dayStart is 00:00 of day in the tenant's zone.
func (l *ledger) dayStart(day string) time.Time {
	t, _ := time.ParseInLocation(time.DateOnly, day, l.loc)
	return t
}

// judge gives the verdict of every (stream, day) sel asks for.
func (l *ledger) judge(sel selection) []dayVerdict {
	keys := l.keys(sel)
	found := map[dayKey]int{}
	for stream, calls := range l.calls {
		for _, c := range calls {
			found[dayKey{stream, c.day}]++
		}
	}
	out := make([]dayVerdict, 0, len(keys))
	for _, k := range keys {
		v := dayVerdict{Stream: k.stream, Day: k.day, Found: found[k], Duplicates: l.dups[k], Updates: l.updates[k],
			Unended: l.unended[k], Reasons: []string{}}
		start := l.dayStart(k.day)
		end := start.AddDate(0, 0, 1)
		if start.Before(sel.floor) {
			v.Verdict = verdictNotRead
			v.Reasons = append(v.Reasons, fmt.Sprintf("the day starts before %s, %s: its calls are not all read",
				sel.floor.In(l.loc).Format(time.RFC3339), sel.why))
		}
		s := l.seals[k]
		if s == nil {
			if v.Verdict == "" {
				v.Verdict = verdictNotSealed
			}
			lost := overlapping(l.gaps[k.stream], start, end)
			for _, sp := range lost {
				v.Reasons = append(v.Reasons, "lost to the API's horizon: "+l.spanText(sp, start)+" (gap record)")
			}
			if len(lost) == 0 {
				v.Reasons = append(v.Reasons, "no day-sealed record on the control topic (not sealed yet, or the record has left the topic)")
			}
			out = append(out, v)
			continue
		}
		sealed := s.data.Published
		v.Sealed, v.Seals, v.LastChance, v.Complete = &sealed, s.count, s.data.LastChance, s.data.Complete
		why := l.incomplete(s, start, end)
		if sealed != v.Found {
			diff := fmt.Sprintf("%d missing from the topic", sealed-v.Found)
			if v.Found > sealed {
				diff = fmt.Sprintf("%d more on the topic than sealed", v.Found-sealed)
			}
			why = append(why, fmt.Sprintf("sealed %d calls, the topic holds %d: %s", sealed, v.Found, diff))
		}
		v.Reasons = append(v.Reasons, why...)
		switch {
		case v.Verdict != "":
		case !s.data.Complete:
			v.Verdict = verdictIncomplete
		case sealed != v.Found:
			v.Verdict = verdictMismatch
		default:
			v.Verdict, v.OK = verdictComplete, true
		}
		out = append(out, v)
	}
	return out
}

// incomplete says why a seal does not call its day complete.
func (l *ledger) incomplete(s *sealSeen, start, end time.Time) []string {
	d := s.data
	if s.v1 {
		return []string{"sealed by an earlier release (day.sealed.v1), which does not say whether the whole day was read"}
	}
	if d.Complete {
		return nil
	}
	var why []string
	if len(d.Gaps) > 0 {
		why = append(why, "lost to the API's horizon: "+l.spansText(d.Gaps, start))
	}
	if len(d.Suspect) > 0 {
		why = append(why, "read only as far as the server would page: "+l.spansText(d.Suspect, start))
	}
	if d.Quarantined > 0 {
		why = append(why, fmt.Sprintf("%d quarantined rows (on the dead-letter topic)", d.Quarantined))
	}
	switch {
	case d.ReadFrom.IsZero() || d.ReadTo.IsZero() || !d.ReadFrom.Before(d.ReadTo.Time):
		why = append(why, "the sealing read read nothing of the day")
	case d.ReadFrom.After(start) || d.ReadTo.Before(end):
		why = append(why, "read only "+l.spanText(schemas.Span{Start: d.ReadFrom.Time, End: d.ReadTo.Time}, start)+" of the day")
	}
	if len(why) == 0 {
		why = append(why, "the seal does not say the day is complete")
	}
	return why
}

// overlapping are the spans that overlap [start, end), cut to it.
func overlapping(spans []schemas.Span, start, end time.Time) []schemas.Span {
	var out []schemas.Span
	for _, sp := range spans {
		if sp.Start.Before(end) && sp.End.After(start) {
			out = append(out, schemas.Span{Start: maxT(sp.Start, start), End: minT(sp.End, end)})
		}
	}
	return out
}

func maxT(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minT(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// spanText writes a span in the tenant's zone, its times as clock times
// when on the day starting at dayStart ("24:00" for its end), as dates and
// times otherwise.
func (l *ledger) spanText(sp schemas.Span, dayStart time.Time) string {
	at := func(t time.Time) string {
		switch d := t.Sub(dayStart); {
		case t.Equal(dayStart.AddDate(0, 0, 1)):
			return "24:00"
		case d >= 0 && t.Before(dayStart.AddDate(0, 0, 1)):
			return t.In(l.loc).Format("15:04")
		}
		return t.In(l.loc).Format("2006-01-02 15:04")
	}
	return at(sp.Start) + "–" + at(sp.End)
}

func (l *ledger) spansText(spans []schemas.Span, dayStart time.Time) string {
	parts := make([]string, len(spans))
	for i, sp := range spans {
		parts[i] = l.spanText(sp, dayStart)
	}
	return strings.Join(parts, ", ")
}
