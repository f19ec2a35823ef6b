package schemas

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A day-sealed record says what callpub knows of one (stream, day) once a
// sealing pass (the reconciliation after the day closed, or the last-chance
// read before the day leaves the API's reach) has read it: how many calls
// ending that day were published, which span of the day was read, and
// whether that makes the day complete or, if not, why (spans lost to the
// horizon, spans the server would not page through, quarantined rows).
// Version 2 replaced version 1, which carried the count alone and so could
// not say that a day was incomplete.

// Span is a half-open [Start, End) of filter time.
type Span struct{ Start, End time.Time }

// spanWire is a Span on the wire.
type spanWire struct {
	Start Timestamp `json:"start"`
	End   Timestamp `json:"end"`
}

// MarshalJSON writes {"start": …, "end": …}, each a wire time (RFC 3339 UTC
// milliseconds, null when zero).
func (s Span) MarshalJSON() ([]byte, error) {
	return json.Marshal(spanWire{Timestamp{s.Start}, Timestamp{s.End}})
}

// UnmarshalJSON reads what MarshalJSON writes; times come back in UTC.
func (s *Span) UnmarshalJSON(b []byte) error {
	var w spanWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = Span{Start: w.Start.Time, End: w.End.Time}
	return nil
}

// DaySeal is what a sealing pass knows about one (stream, day).
type DaySeal struct {
	Day         string    // YYYYMMDD (written YYYY-MM-DD)
	Published   int       // calls published whose callEnd falls on Day
	From, To    time.Time // the span of the day the sealing pass read
	Complete    bool      // the whole day was read, with no gap, no suspect span and no quarantined row
	Gaps        []Span    // spans of the day lost to the API's horizon
	Suspect     []Span    // spans read only as far as the server would page them
	Quarantined int       // rows of the day that could not be published
	LastChance  bool      // sealed by the last-chance read (the day's final seal)
}

// DaySealedData is the data of a day-sealed record. It holds both versions:
// v2 (stream-day-sealed.v2.schema.json), which DaySealed writes, and v1
// (stream-day-sealed.v1.schema.json), which carried Day, Published and
// SealedAt only; DecodeDaySealed leaves the fields v2 added zero for a v1
// record, so a v1 record never says Complete.
type DaySealedData struct {
	streamData
	Day       string `json:"day"` // YYYY-MM-DD, in the API's day zone
	Published int    `json:"published"`
	// ReadFrom and ReadTo are the span [ReadFrom, ReadTo) of the day the
	// sealing pass read (null: it read nothing).
	ReadFrom Timestamp `json:"readFrom"`
	ReadTo   Timestamp `json:"readTo"`
	// Complete says every call ending on Day was read and published: the
	// whole day was read, with no gap, no suspect span and no quarantined
	// row. A record never says Complete while listing any of those.
	Complete    bool      `json:"complete"`
	Gaps        []Span    `json:"gaps"`        // spans of the day lost to the API's horizon
	Suspect     []Span    `json:"suspect"`     // spans read only as far as the server would page them
	Quarantined int       `json:"quarantined"` // rows of the day that could not be published
	LastChance  bool      `json:"lastChance"`  // sealed by the last-chance read: the day's final seal
	SealedAt    Timestamp `json:"sealedAt"`
}

// DaySealed encodes the completeness record of a stream's day (v2), sealed
// at at (the event time). d.Day is "YYYYMMDD", as dedupe names days, or
// "YYYY-MM-DD"; it is written YYYY-MM-DD. The record says complete only when
// d.Complete does and nothing in d contradicts it: no gap, no suspect span,
// no quarantined row, and a read span with From before To. Spans are written
// in order of start. The id covers what the pass found (the stream, the day,
// the count, the verdict, the span read, the gaps, the suspect spans and the
// quarantined rows), not when or by which pass it was sealed (at,
// LastChance): a re-seal with more calls or another verdict is a new record,
// one that finds the same (the last-chance read of a day nothing changed in)
// a repeat with the same id.
func (e *Encoder) DaySealed(s Stream, d DaySeal, at time.Time) Event {
	data := DaySealedData{
		streamData: streamOf(s), Day: dashedDay(d.Day), Published: d.Published,
		ReadFrom: Timestamp{normaliseTime(d.From)}, ReadTo: Timestamp{normaliseTime(d.To)},
		Gaps: normaliseSpans(d.Gaps), Suspect: normaliseSpans(d.Suspect),
		Quarantined: d.Quarantined, LastChance: d.LastChance, SealedAt: Timestamp{normaliseTime(at)},
	}
	data.Complete = d.Complete && whyIncomplete(data) == nil
	return e.control(TypeDaySealed, SchemaDaySealed, sealCanonical(data), s, at, data)
}

// dashedDay writes a "YYYYMMDD" day as "YYYY-MM-DD"; anything else is kept.
func dashedDay(day string) string {
	if len(day) == 8 {
		if t, err := time.Parse("20060102", day); err == nil {
			return t.Format(time.DateOnly)
		}
	}
	return day
}

// normaliseSpans copies spans with normalised times, ordered by start then
// end; never nil, so the wire has [] rather than null.
func normaliseSpans(spans []Span) []Span {
	out := make([]Span, 0, len(spans))
	for _, s := range spans {
		out = append(out, Span{Start: normaliseTime(s.Start), End: normaliseTime(s.End)})
	}
	slices.SortFunc(out, func(a, b Span) int {
		return cmp.Or(a.Start.Compare(b.Start), a.End.Compare(b.End))
	})
	return out
}

// whyIncomplete says why d cannot call its day complete, or nil if it can.
func whyIncomplete(d DaySealedData) error {
	switch {
	case len(d.Gaps) > 0:
		return fmt.Errorf("%d gaps are listed", len(d.Gaps))
	case len(d.Suspect) > 0:
		return fmt.Errorf("%d suspect spans are listed", len(d.Suspect))
	case d.Quarantined != 0:
		return fmt.Errorf("%d rows were quarantined", d.Quarantined)
	case d.ReadFrom.IsZero() || d.ReadTo.IsZero() || !d.ReadFrom.Before(d.ReadTo.Time):
		return errors.New("the span read is empty")
	}
	return nil
}

// sealCanonical is the canonical string of a v2 day-sealed record's id:
// "ccms-day-sealed-v2/<stream>/<published>/<complete 0|1>/<readFrom ms>/
// <readTo ms>/<quarantined>/<gaps>/<suspect>/<day>", each span list
// "start:end" in ms joined by ',' (no '/' inside), the day last.
func sealCanonical(d DaySealedData) string {
	complete := 0
	if d.Complete {
		complete = 1
	}
	return fmt.Sprintf("ccms-day-sealed-v2/%s/%d/%d/%d/%d/%d/%s/%s/%s", d.Stream, d.Published, complete,
		ms(d.ReadFrom.Time), ms(d.ReadTo.Time), d.Quarantined, spanList(d.Gaps), spanList(d.Suspect), d.Day)
}

func spanList(spans []Span) string {
	parts := make([]string, len(spans))
	for i, s := range spans {
		parts[i] = strconv.FormatInt(ms(s.Start), 10) + ":" + strconv.FormatInt(ms(s.End), 10)
	}
	return strings.Join(parts, ",")
}

// checkSeal checks what a day-sealed record's data promises whatever its
// version: a date, counts that are not negative, spans that run forward, and
// Complete only when whyIncomplete has nothing to say.
func checkSeal(d DaySealedData) error {
	if _, err := time.Parse(time.DateOnly, d.Day); err != nil {
		return fmt.Errorf("data.day %q is not a date", d.Day)
	}
	if d.Published < 0 || d.Quarantined < 0 {
		return fmt.Errorf("data.published %d or data.quarantined %d is negative", d.Published, d.Quarantined)
	}
	if !d.ReadFrom.IsZero() && !d.ReadTo.IsZero() && d.ReadTo.Before(d.ReadFrom.Time) {
		return fmt.Errorf("data.readTo %s is before data.readFrom %s", FormatTime(d.ReadTo.Time), FormatTime(d.ReadFrom.Time))
	}
	for _, list := range []struct {
		name  string
		spans []Span
	}{{"gaps", d.Gaps}, {"suspect", d.Suspect}} {
		for i, s := range list.spans {
			if s.Start.IsZero() || s.End.IsZero() || !s.Start.Before(s.End) {
				return fmt.Errorf("data.%s[%d] does not run forward", list.name, i)
			}
		}
	}
	if d.Complete {
		if err := whyIncomplete(d); err != nil {
			return fmt.Errorf("data.complete is true, but %w", err)
		}
	}
	return nil
}

// checkDaySealed checks what stream-day-sealed.v2.schema.json cannot: time is
// sealedAt, checkSeal holds and the id is the record's.
func checkDaySealed(id, eventTime string, data json.RawMessage) error {
	var d DaySealedData
	if err := json.Unmarshal(data, &d); err != nil {
		return err
	}
	if want := FormatTime(d.SealedAt.Time); eventTime != want {
		return fmt.Errorf("time %s is not data.sealedAt %s", eventTime, want)
	}
	if err := checkSeal(d); err != nil {
		return err
	}
	if want := idOf(sealCanonical(d)); id != want {
		return fmt.Errorf("id is not the id of the record (want %s)", want)
	}
	return nil
}

// DecodeDaySealed decodes a day-sealed record's value (the Kafka record
// value of a structured record) of either version, and its data: DaySealedOf
// of the event.
func DecodeDaySealed(value []byte) (Event, DaySealedData, error) {
	var ev Event
	if err := json.Unmarshal(value, &ev); err != nil {
		return Event{}, DaySealedData{}, fmt.Errorf("decode event: %w", err)
	}
	d, err := DaySealedOf(ev)
	if err != nil {
		return Event{}, DaySealedData{}, err
	}
	return ev, d, nil
}

// DaySealedOf decodes the data of a day-sealed event of either version
// (from a record in either content mode, DecodeRecord). It checks the type,
// the stream, and what the data promises (checkSeal: above all, that a
// record saying complete lists no gap, suspect span or quarantined row);
// Validate checks the full schema. Of a v1 record only stream, day,
// published and sealedAt are read.
func DaySealedOf(ev Event) (DaySealedData, error) {
	if ev.Type != TypeDaySealed && ev.Type != TypeDaySealedV1 {
		return DaySealedData{}, fmt.Errorf("decode event %s: type %q is not %s or %s", ev.ID, ev.Type, TypeDaySealed, TypeDaySealedV1)
	}
	var d DaySealedData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return DaySealedData{}, fmt.Errorf("decode event %s data: %w", ev.ID, err)
	}
	if ev.Type == TypeDaySealedV1 {
		d = DaySealedData{streamData: d.streamData, Day: d.Day, Published: d.Published, SealedAt: d.SealedAt}
	}
	if _, err := ParseStream(d.Stream); err != nil {
		return DaySealedData{}, fmt.Errorf("decode event %s data: %w", ev.ID, err)
	}
	if err := checkSeal(d); err != nil {
		return DaySealedData{}, fmt.Errorf("decode event %s data: %w", ev.ID, err)
	}
	return d, nil
}
