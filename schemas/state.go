package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// The state changelog: one record per change of a stream's durable state,
// on a compacted topic (CALLPUB_KAFKA_STATE_TOPIC) keyed by the stream key
// ("1/25/in"), so that compaction keeps each stream's latest record and a
// replica that lost its disk rebuilds its store from the topic.
//
// A record is not a CloudEvent: it is callpub's own JSON, read only by
// callpub, versioned by its "v" member:
//
//	{"v":1,"stream":"1/25/in","seq":42,"cursor":"2026-03-29T08:00:00.123456789Z",
//	 "last_sweep":"…","sealed_day":"20260328","last_chance_day":"20260327",
//	 "pending":[{"call_id":"…","filter_time":"…","first_seen":"…"}],
//	 "gaps":[{"start":"…","end":"…","detected_at":"…"}],
//	 "quarantined":[{"sum":"…","detected_at":"…"}],
//	 "owner":"callpub-0","written_at":"…"}
//
// Times are RFC 3339 in UTC with nine fractional digits (the store keeps
// nanoseconds); a zero time, an empty day, owner or list is left out.
// DecodeState ignores members it does not know; a change that a version 1
// reader must not ignore needs a new version.
//
// A tombstone (a record whose value is nil) says the stream was forgotten.
// It has no body to decode: callers check for a nil value before they call
// DecodeState, which refuses an empty value.

// StateVersion is the version EncodeState writes and DecodeState reads.
const StateVersion = 1

// ErrStateVersion is wrapped by DecodeState's error for a record of a
// version it does not read (one written by a newer callpub, or a value that
// has no "v"): skipping it would rebuild the stream from an older record.
var ErrStateVersion = errors.New("unknown state record version")

// StateRecord is one stream's durable state: what the store holds for it
// (dedupe.StreamState, its gap log entries and quarantined rows) at Seq.
type StateRecord struct {
	// Stream is the stream key, Stream.Key ("1/25/in"), and the record's
	// Kafka key.
	Stream string
	// Seq numbers the stream's records: each record of a stream has a higher
	// Seq than the one before it.
	Seq uint64
	// Cursor: every call whose filter time is before it was published,
	// except the pending ones. Zero: the stream has not started.
	Cursor    time.Time
	LastSweep time.Time // zero: never swept
	// SealedDay and LastChanceDay are days, "YYYYMMDD", or "".
	SealedDay     string
	LastChanceDay string
	Pending       []StatePending // in the store's order
	Gaps          []StateGap
	Quarantined   []StateQuarantined
	// Owner names the replica that wrote the record (free text).
	Owner     string
	WrittenAt time.Time
}

// StatePending is a call seen without callEnd (dedupe.Pending).
type StatePending struct {
	CallID     string
	FilterTime time.Time // required: it holds the cursor back
	FirstSeen  time.Time
}

// StateGap is a span [Start, End) lost to the API's horizon (dedupe.Gap).
type StateGap struct {
	Start, End time.Time // both required, Start before End
	DetectedAt time.Time
}

// StateQuarantined is a row reported as unusable (dedupe.Quarantined).
type StateQuarantined struct {
	Sum        string // required: identifies the row
	DetectedAt time.Time
}

// stateTimeLayout is RFC 3339 with all nine fractional digits.
const stateTimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// The wire form. Member order is the order of the fields.
type (
	stateWire struct {
		V             int           `json:"v"`
		Stream        string        `json:"stream"`
		Seq           uint64        `json:"seq"`
		Cursor        string        `json:"cursor,omitempty"`
		LastSweep     string        `json:"last_sweep,omitempty"`
		SealedDay     string        `json:"sealed_day,omitempty"`
		LastChanceDay string        `json:"last_chance_day,omitempty"`
		Pending       []pendingWire `json:"pending,omitempty"`
		Gaps          []gapWire     `json:"gaps,omitempty"`
		Quarantined   []quarantWire `json:"quarantined,omitempty"`
		Owner         string        `json:"owner,omitempty"`
		WrittenAt     string        `json:"written_at,omitempty"`
	}
	pendingWire struct {
		CallID     string `json:"call_id"`
		FilterTime string `json:"filter_time"`
		FirstSeen  string `json:"first_seen,omitempty"`
	}
	gapWire struct {
		Start      string `json:"start"`
		End        string `json:"end"`
		DetectedAt string `json:"detected_at,omitempty"`
	}
	quarantWire struct {
		Sum        string `json:"sum"`
		DetectedAt string `json:"detected_at,omitempty"`
	}
)

// EncodeState is r's record value. It refuses what DecodeState would refuse
// (a bad stream key or day, a pending call without id or filter time, an
// empty gap, a row without sum, a string that is not UTF-8, a time whose UTC
// year is outside 0000-9999), so whatever it writes decodes to r, with times
// in UTC and empty lists nil.
func EncodeState(r StateRecord) ([]byte, error) {
	if err := checkStream(r.Stream); err != nil {
		return nil, fmt.Errorf("encode state record: %w", err)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("encode state record of %s: %w", r.Stream, err)
	}
	w := stateWire{
		V: StateVersion, Stream: r.Stream, Seq: r.Seq,
		Cursor: formatStateTime(r.Cursor), LastSweep: formatStateTime(r.LastSweep),
		SealedDay: r.SealedDay, LastChanceDay: r.LastChanceDay,
		Owner: r.Owner, WrittenAt: formatStateTime(r.WrittenAt),
	}
	for _, p := range r.Pending {
		w.Pending = append(w.Pending, pendingWire{p.CallID, formatStateTime(p.FilterTime), formatStateTime(p.FirstSeen)})
	}
	for _, g := range r.Gaps {
		w.Gaps = append(w.Gaps, gapWire{formatStateTime(g.Start), formatStateTime(g.End), formatStateTime(g.DetectedAt)})
	}
	for _, q := range r.Quarantined {
		w.Quarantined = append(w.Quarantined, quarantWire{q.Sum, formatStateTime(q.DetectedAt)})
	}
	b, err := json.Marshal(w)
	if err != nil { // strings and numbers only: cannot happen
		return nil, fmt.Errorf("encode state record of %s: %w", r.Stream, err)
	}
	return b, nil
}

// DecodeState reads a record value written by EncodeState. It refuses an
// empty value (a tombstone is not decoded: the caller takes a nil value as
// "stream forgotten"), a version other than StateVersion (ErrStateVersion),
// a missing or invalid stream key, a malformed time or day, and anything
// else EncodeState would not write. Times come back in UTC.
func DecodeState(value []byte) (StateRecord, error) {
	if len(value) == 0 {
		return StateRecord{}, errors.New("decode state record: empty value (a tombstone is not a record)")
	}
	var w stateWire
	if err := json.Unmarshal(value, &w); err != nil {
		return StateRecord{}, fmt.Errorf("decode state record: %w", err)
	}
	if w.V != StateVersion {
		return StateRecord{}, fmt.Errorf("decode state record of %q: version %d, want %d: %w",
			w.Stream, w.V, StateVersion, ErrStateVersion)
	}
	if err := checkStream(w.Stream); err != nil {
		return StateRecord{}, fmt.Errorf("decode state record: %w", err)
	}
	r, err := w.record()
	if err == nil {
		err = r.check()
	}
	if err != nil {
		return StateRecord{}, fmt.Errorf("decode state record of %s: %w", w.Stream, err)
	}
	return r, nil
}

// record converts the wire form, parsing its times.
func (w stateWire) record() (StateRecord, error) {
	r := StateRecord{Stream: w.Stream, Seq: w.Seq, SealedDay: w.SealedDay, LastChanceDay: w.LastChanceDay, Owner: w.Owner}
	var ts timeParser
	r.Cursor = ts.parse("cursor", w.Cursor)
	r.LastSweep = ts.parse("last_sweep", w.LastSweep)
	r.WrittenAt = ts.parse("written_at", w.WrittenAt)
	for i, p := range w.Pending {
		r.Pending = append(r.Pending, StatePending{CallID: p.CallID,
			FilterTime: ts.parse(fmt.Sprintf("pending[%d].filter_time", i), p.FilterTime),
			FirstSeen:  ts.parse(fmt.Sprintf("pending[%d].first_seen", i), p.FirstSeen)})
	}
	for i, g := range w.Gaps {
		r.Gaps = append(r.Gaps, StateGap{
			Start:      ts.parse(fmt.Sprintf("gaps[%d].start", i), g.Start),
			End:        ts.parse(fmt.Sprintf("gaps[%d].end", i), g.End),
			DetectedAt: ts.parse(fmt.Sprintf("gaps[%d].detected_at", i), g.DetectedAt)})
	}
	for i, q := range w.Quarantined {
		r.Quarantined = append(r.Quarantined, StateQuarantined{Sum: q.Sum,
			DetectedAt: ts.parse(fmt.Sprintf("quarantined[%d].detected_at", i), q.DetectedAt)})
	}
	if ts.err != nil {
		return StateRecord{}, ts.err
	}
	return r, nil
}

// timeParser parses times until the first error, which it keeps.
type timeParser struct{ err error }

func (p *timeParser) parse(member, s string) time.Time {
	if s == "" || p.err != nil {
		return time.Time{}
	}
	t, err := parseTime(s)
	if err != nil {
		p.err = fmt.Errorf("%s: %q is not an RFC 3339 time: %w", member, s, err)
	}
	return t
}

func formatStateTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(stateTimeLayout)
}

// checkStream requires a stream key in Stream.Key's canonical form.
func checkStream(key string) error {
	if key == "" {
		return errors.New("stream missing")
	}
	_, err := ParseStream(key)
	return err
}

// check is what EncodeState and DecodeState require of a record besides its
// stream key. It returns the first problem it finds.
func (r StateRecord) check() error {
	for _, err := range []error{
		checkDay("sealed_day", r.SealedDay), checkDay("last_chance_day", r.LastChanceDay),
		checkText("owner", r.Owner),
		checkTimes(namedTime{"cursor", r.Cursor}, namedTime{"last_sweep", r.LastSweep}, namedTime{"written_at", r.WrittenAt}),
		r.checkPending(), r.checkGaps(), r.checkQuarantined(),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

func (r StateRecord) checkPending() error {
	seen := make(map[string]bool, len(r.Pending))
	for i, p := range r.Pending {
		at := fmt.Sprintf("pending[%d]", i)
		switch {
		case p.CallID == "":
			return fmt.Errorf("%s: call_id missing", at)
		case seen[p.CallID]:
			return fmt.Errorf("%s: call %q listed twice", at, p.CallID)
		case p.FilterTime.IsZero():
			return fmt.Errorf("%s (call %q): filter_time missing", at, p.CallID)
		}
		seen[p.CallID] = true
		if err := checkText(at+".call_id", p.CallID); err != nil {
			return err
		}
		if err := checkTimes(namedTime{at + ".filter_time", p.FilterTime}, namedTime{at + ".first_seen", p.FirstSeen}); err != nil {
			return err
		}
	}
	return nil
}

func (r StateRecord) checkGaps() error {
	for i, g := range r.Gaps {
		at := fmt.Sprintf("gaps[%d]", i)
		if g.Start.IsZero() || g.End.IsZero() || !g.Start.Before(g.End) {
			return fmt.Errorf("%s: [%s, %s) is empty or unbounded", at, formatStateTime(g.Start), formatStateTime(g.End))
		}
		err := checkTimes(namedTime{at + ".start", g.Start}, namedTime{at + ".end", g.End},
			namedTime{at + ".detected_at", g.DetectedAt})
		if err != nil {
			return err
		}
	}
	return nil
}

func (r StateRecord) checkQuarantined() error {
	seen := make(map[string]bool, len(r.Quarantined))
	for i, q := range r.Quarantined {
		at := fmt.Sprintf("quarantined[%d]", i)
		switch {
		case q.Sum == "":
			return fmt.Errorf("%s: sum missing", at)
		case seen[q.Sum]:
			return fmt.Errorf("%s: row %q listed twice", at, q.Sum)
		}
		seen[q.Sum] = true
		if err := checkText(at+".sum", q.Sum); err != nil {
			return err
		}
		if err := checkTimes(namedTime{at + ".detected_at", q.DetectedAt}); err != nil {
			return err
		}
	}
	return nil
}

// checkDay accepts "" and a real day written YYYYMMDD.
func checkDay(member, day string) error {
	if day == "" {
		return nil
	}
	if t, err := time.Parse("20060102", day); err != nil || t.Format("20060102") != day {
		return fmt.Errorf("%s: %q is not a day written YYYYMMDD", member, day)
	}
	return nil
}

// checkText refuses a string that JSON would not carry unchanged.
func checkText(member, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s: not valid UTF-8", member)
	}
	return nil
}

// namedTime is a time and the member that carries it.
type namedTime struct {
	member string
	t      time.Time
}

// checkTimes refuses a time that RFC 3339 cannot write in UTC with a
// four-digit year.
func checkTimes(ts ...namedTime) error {
	for _, nt := range ts {
		if y := nt.t.UTC().Year(); !nt.t.IsZero() && (y < 0 || y > 9999) {
			return fmt.Errorf("%s: year %d in UTC is outside 0000-9999", nt.member, y)
		}
	}
	return nil
}
