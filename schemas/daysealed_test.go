package schemas

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var sealStream = Stream{CCID: 1, VDN: 25, Dir: Out}

// sealedAt is when the golden complete seal was made.
var sealedAt = time.Date(2026, 3, 30, 0, 5, 0, 0, time.UTC)

func decodeSeal(t *testing.T, ev Event) DaySealedData {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(b); err != nil {
		t.Fatal(err)
	}
	_, d, err := DecodeDaySealed(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDaySealedWritesWhatTheSealingPassKnows(t *testing.T) {
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	s := incompleteSeal()
	ev := enc.DaySealed(sealStream, s, sealedAt.In(berlin).Add(300*time.Microsecond))
	if ev.Type != TypeDaySealed || ev.DataSchema != SchemaDaySealed || ev.Subject != "1/25/out" ||
		ev.PartitionKey != "25" || !ev.Time.Equal(sealedAt) {
		t.Errorf("attributes %+v", ev)
	}
	utc := func(sp Span) Span { return Span{sp.Start.UTC(), sp.End.UTC()} }
	want := DaySealedData{
		streamData: streamOf(sealStream), Day: "2026-03-29", Published: 17,
		ReadFrom: Timestamp{s.From.UTC()}, ReadTo: Timestamp{s.To.UTC()},
		Gaps:        []Span{utc(s.Gaps[0])},
		Suspect:     []Span{utc(s.Suspect[1]), utc(s.Suspect[0])}, // in order of start
		Quarantined: 2, LastChance: true, SealedAt: Timestamp{sealedAt},
	}
	if diff := cmp.Diff(want, decodeSeal(t, ev), cmp.AllowUnexported(DaySealedData{})); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
}

func TestACompleteDayListsNothingMissing(t *testing.T) {
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	ev := enc.DaySealed(sealStream, completeSeal(), sealedAt)
	if !strings.Contains(string(ev.Data), `"gaps":[],"suspect":[]`) {
		t.Errorf("want empty lists, not null: %s", ev.Data)
	}
	if d := decodeSeal(t, ev); !d.Complete || d.Day != "2026-03-29" || d.Published != 1234 {
		t.Errorf("data %+v, want the complete day 2026-03-29 with 1234 calls", d)
	}
}

// DaySealed is told Complete, but something it is also told contradicts
// that: the record must not call the day complete.
func TestDaySealedNeverCallsAContradictedDayComplete(t *testing.T) {
	day := completeSeal().From
	tests := []struct {
		name string
		edit func(s *DaySeal)
	}{
		{"a gap", func(s *DaySeal) { s.Gaps = []Span{{day, day.Add(time.Hour)}} }},
		{"a suspect span", func(s *DaySeal) { s.Suspect = []Span{{day, day.Add(time.Minute)}} }},
		{"a quarantined row", func(s *DaySeal) { s.Quarantined = 1 }},
		{"nothing read", func(s *DaySeal) { s.From, s.To = time.Time{}, time.Time{} }},
		{"an empty span read", func(s *DaySeal) { s.To = s.From }},
		{"a span read backwards", func(s *DaySeal) { s.From, s.To = s.To, s.From }},
		{"no start of the span read", func(s *DaySeal) { s.From = time.Time{} }},
	}
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := completeSeal()
			tt.edit(&s)
			ev := enc.DaySealed(sealStream, s, sealedAt)
			var d DaySealedData
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Fatal(err)
			}
			if d.Complete {
				t.Errorf("the record says complete: %s", ev.Data)
			}
		})
	}
}

func TestDaySealIDCoversWhatThePassFoundButNotWhenItSealed(t *testing.T) {
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	base := enc.DaySealed(sealStream, incompleteSeal(), sealedAt).ID
	day := incompleteSeal().From // the end of the gap
	others := map[string]func(s *DaySeal, st *Stream){
		"another stream":            func(_ *DaySeal, st *Stream) { st.Dir = In },
		"another day":               func(s *DaySeal, _ *Stream) { s.Day = "20260330" },
		"one more call":             func(s *DaySeal, _ *Stream) { s.Published++ },
		"another start of the read": func(s *DaySeal, _ *Stream) { s.From = s.From.Add(time.Millisecond) },
		"another end of the read":   func(s *DaySeal, _ *Stream) { s.To = s.To.Add(-time.Millisecond) },
		"another gap":               func(s *DaySeal, _ *Stream) { s.Gaps[0].End = day.Add(-time.Hour) },
		"one suspect span less":     func(s *DaySeal, _ *Stream) { s.Suspect = s.Suspect[:1] },
		"a suspect span as a gap":   func(s *DaySeal, _ *Stream) { s.Gaps, s.Suspect = append(s.Gaps, s.Suspect[0]), s.Suspect[1:] },
		"another quarantined count": func(s *DaySeal, _ *Stream) { s.Quarantined = 3 },
	}
	for name, edit := range others {
		s, st := incompleteSeal(), sealStream
		edit(&s, &st)
		if id := enc.DaySealed(st, s, sealedAt).ID; id == base {
			t.Errorf("%s gives the same id %s", name, id)
		}
	}
	complete := completeSeal()
	verdict := complete
	verdict.Complete = false
	if enc.DaySealed(sealStream, complete, sealedAt).ID == enc.DaySealed(sealStream, verdict, sealedAt).ID {
		t.Error("the same day complete and not complete have one id")
	}
	same := incompleteSeal()
	same.Day = "2026-03-29"
	same.Suspect[0], same.Suspect[1] = same.Suspect[1], same.Suspect[0]
	if id := enc.DaySealed(sealStream, same, sealedAt.Add(time.Hour)).ID; id != base {
		t.Errorf("the same facts sealed an hour later (day written with dashes, spans in another order) have id %s, want %s", id, base)
	}
	same.LastChance = false
	if id := enc.DaySealed(sealStream, same, sealedAt).ID; id != base {
		t.Errorf("the reconciliation that found what the last chance found has id %s, want the same %s", id, base)
	}
}

// Each case breaks one thing in a valid v2 day-sealed record. Unless the
// case is about the id, the id is made to fit the broken data, so that
// Validate must find the break itself.
func TestValidateRejectsBrokenDaySeals(t *testing.T) {
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	valid, err := json.Marshal(enc.DaySealed(sealStream, completeSeal(), sealedAt))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(valid); err != nil {
		t.Fatalf("the unbroken record is invalid: %v", err)
	}
	for _, tt := range brokenDaySeals() {
		t.Run(tt.name, func(t *testing.T) {
			keepID := false
			b := editEvent(t, valid, func(ev, d map[string]any) {
				id := ev["id"]
				tt.edit(ev, d)
				if keepID = ev["id"] == "keep"; keepID {
					ev["id"] = id
				} else {
					ev["id"] = fittingID(d)
				}
			})
			var ve *ValidationError
			if err := Validate(b); !errors.As(err, &ve) {
				t.Errorf("Validate = %v, want a *ValidationError", err)
			} else if !keepID && strings.Contains(err.Error(), "id is not") {
				t.Errorf("Validate refused only the id: %v", err)
			}
		})
	}
}

// brokenEvent is one edit that breaks a valid event.
type brokenEvent struct {
	name string
	edit func(ev, data map[string]any)
}

// brokenDaySeals are the edits TestValidateRejectsBrokenDaySeals makes.
func brokenDaySeals() []brokenEvent {
	return []brokenEvent{
		{"a complete seal with a gap", func(_, d map[string]any) {
			d["gaps"] = []any{span("2026-03-29T01:00:00.000Z", "2026-03-29T02:00:00.000Z")}
		}},
		{"a complete seal with a suspect span", func(_, d map[string]any) {
			d["suspect"] = []any{span("2026-03-29T01:00:00.000Z", "2026-03-29T02:00:00.000Z")}
		}},
		{"a complete seal with a quarantined row", func(_, d map[string]any) { d["quarantined"] = 1 }},
		{"a complete seal that read nothing", func(_, d map[string]any) { d["readFrom"], d["readTo"] = nil, nil }},
		{"a complete seal that read an empty span", func(_, d map[string]any) { d["readTo"] = d["readFrom"] }},
		{"a read span backwards", func(_, d map[string]any) {
			d["complete"], d["readFrom"], d["readTo"] = false, d["readTo"], d["readFrom"]
		}},
		{"a gap backwards", func(_, d map[string]any) {
			d["complete"], d["gaps"] = false, []any{span("2026-03-29T02:00:00.000Z", "2026-03-29T01:00:00.000Z")}
		}},
		{"an empty suspect span", func(_, d map[string]any) {
			d["complete"], d["suspect"] = false, []any{span("2026-03-29T02:00:00.000Z", "2026-03-29T02:00:00.000Z")}
		}},
		{"a span without an end", func(_, d map[string]any) {
			d["complete"], d["gaps"] = false, []any{map[string]any{"start": "2026-03-29T02:00:00.000Z"}}
		}},
		{"gaps that are null", func(_, d map[string]any) { d["gaps"] = nil }},
		{"no lastChance", func(_, d map[string]any) { delete(d, "lastChance") }},
		{"a negative quarantined count", func(_, d map[string]any) { d["complete"], d["quarantined"] = false, -1 }},
		{"a day that is not a date", func(_, d map[string]any) { d["day"] = "2026-02-30" }},
		{"a time that is not sealedAt", func(ev, _ map[string]any) { ev["time"] = "2026-03-30T00:06:00.000Z" }},
		{"an id that does not cover the count", func(ev, d map[string]any) { ev["id"], d["published"] = "keep", 1235 }},
		{"the v1 dataschema", func(ev, _ map[string]any) { ev["dataschema"] = SchemaDaySealedV1 }},
		{"a subject that is another stream", func(ev, _ map[string]any) { ev["subject"] = "1/25/in" }},
	}
}

// editEvent is valid with edit applied to the event and its data.
func editEvent(t *testing.T, valid []byte, edit func(ev, data map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(valid, &m); err != nil {
		t.Fatal(err)
	}
	edit(m, m["data"].(map[string]any))
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func span(start, end string) map[string]any { return map[string]any{"start": start, "end": end} }

// fittingID is the id a v2 day-sealed record with this data would have.
func fittingID(data any) string {
	b, _ := json.Marshal(data)
	var d DaySealedData
	_ = json.Unmarshal(b, &d)
	return idOf(sealCanonical(d))
}

func TestAnOldDaySealedRecordStillValidatesAndDecodes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "stream-day-sealed-v1.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(b); err != nil {
		t.Fatal(err)
	}
	ev, d, err := DecodeDaySealed(b)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != TypeDaySealedV1 || d.Stream != "1/25/out" || d.Day != "2026-03-29" || d.Published != 1234 ||
		!d.SealedAt.Equal(sealedAt) {
		t.Errorf("decoded %+v %+v", ev, d)
	}
	if d.Complete || d.LastChance || !d.ReadFrom.IsZero() || d.Gaps != nil {
		t.Errorf("a v1 record decodes with v2 facts it never carried: %+v", d)
	}
}

func TestDecodeDaySealedIgnoresV2FieldsSmuggledIntoV1(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "stream-day-sealed-v1.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), `"published": 1234,`, `"published": 1234, "complete": true,`, 1))
	if _, d, err := DecodeDaySealed(b); err != nil || d.Complete {
		t.Errorf("DecodeDaySealed = %+v, %v: want a record that does not say complete", d, err)
	}
}

func TestDecodeDaySealedRefusesWhatItCannotTrust(t *testing.T) {
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	valid, _ := json.Marshal(enc.DaySealed(sealStream, completeSeal(), sealedAt))
	tests := map[string]string{
		"a complete seal with a gap": strings.Replace(string(valid), `"gaps":[]`,
			`"gaps":[{"start":"2026-03-29T01:00:00.000Z","end":"2026-03-29T02:00:00.000Z"}]`, 1),
		"a complete seal with a quarantined row": strings.Replace(string(valid), `"quarantined":0`, `"quarantined":4`, 1),
		"a heartbeat":                            strings.Replace(string(valid), TypeDaySealed, TypeHeartbeat, 1),
		"a stream that is not a key":             strings.Replace(string(valid), `"stream":"1/25/out"`, `"stream":"1/25/x"`, 1),
		"a day that is not a date":               strings.Replace(string(valid), `"day":"2026-03-29"`, `"day":"29.03.2026"`, 1),
		"data that is not an object":             strings.Replace(string(valid), `"data":{`, `"data":[{`, 1) + "]",
		"a negative count of calls":              strings.Replace(string(valid), `"published":1234`, `"published":-1`, 1),
		"a read span that is reversed":           strings.Replace(string(valid), `"readFrom":"2026-03-28T23:00:00.000Z"`, `"readFrom":"2026-03-30T23:00:00.000Z"`, 1),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if in == string(valid) {
				t.Fatal("the edit did not apply")
			}
			if _, d, err := DecodeDaySealed([]byte(in)); err == nil {
				t.Errorf("DecodeDaySealed accepted it: %+v", d)
			}
		})
	}
}

func TestSpanRoundTripsThroughJSON(t *testing.T) {
	in := Span{Start: time.Date(2026, 3, 29, 1, 0, 0, 0, berlin), End: time.Date(2026, 3, 29, 3, 0, 0, 0, berlin)}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"start":"2026-03-29T00:00:00.000Z","end":"2026-03-29T01:00:00.000Z"}`; string(b) != want {
		t.Errorf("%s, want %s", b, want)
	}
	var out Span
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !out.Start.Equal(in.Start) || !out.End.Equal(in.End) || out.Start.Location() != time.UTC {
		t.Errorf("%+v, want %+v in UTC", out, in)
	}
}
