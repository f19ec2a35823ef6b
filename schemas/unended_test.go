package schemas

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestUnendedCallCarriesWhatIsKnownAndSaysTheEndWasNeverReported(t *testing.T) {
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	h := Hash(unendedCall())
	ev, err := enc.Unended(h, lastSeen.In(berlin).Add(400*time.Microsecond))
	if err != nil {
		t.Fatal(err)
	}
	c := h.Call
	if ev.Type != TypeCallUnended || ev.DataSchema != SchemaCallUnended || ev.Subject != c.CallID ||
		ev.PartitionKey != "25" || ev.Source != "/ccms/1/vdn/25" {
		t.Errorf("attributes %+v", ev)
	}
	if want := UnendedEventID(1, 25, true, c.CallID); ev.ID != want {
		t.Errorf("id %s, want UnendedEventID %s", ev.ID, want)
	}
	if !ev.Time.Equal(c.CallBegin) {
		t.Errorf("time %v, want callBegin %v", ev.Time, c.CallBegin)
	}
	var d CallUnendedData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.EndReported || !d.CallEnd.IsZero() || !d.LastSeen.Equal(lastSeen) || d.LastSeen.Location() != time.UTC {
		t.Errorf("endReported %v, callEnd %v, lastSeen %v: want false, null and %v in UTC", d.EndReported, d.CallEnd, d.LastSeen, lastSeen)
	}
	if !d.Answered || d.WaitMs != 12500 || d.TalkMs != 0 || d.Update {
		t.Errorf("answered %v waitMs %d talkMs %d update %v, want true 12500 0 false", d.Answered, d.WaitMs, d.TalkMs, d.Update)
	}
	if d.ContentHash != "40709517bd639f03" {
		t.Errorf("contentHash %s is not that of the call without an end", d.ContentHash)
	}
	if diff := cmp.Diff(c, d.Call()); diff != "" {
		t.Errorf("the data does not give back the call (-sent +decoded):\n%s", diff)
	}
}

func TestAnUnansweredUnendedCallHasNoWaitOrTalkTime(t *testing.T) {
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	ev := must(t)(enc.Unended(Hash(unendedWaitingCall()), lastSeen))
	var d CallUnendedData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.Answered || d.WaitMs != 0 || d.TalkMs != 0 {
		t.Errorf("answered %v waitMs %d talkMs %d: without an end nothing is known of either", d.Answered, d.WaitMs, d.TalkMs)
	}
}

func TestUnendedTimeIsTheLatestTimeTheCallHas(t *testing.T) {
	full := Hash(unendedCall()).Call
	tests := []struct {
		name string
		edit func(c *Call)
		want time.Time
	}{
		{"callBegin when there is one", func(*Call) {}, full.CallBegin},
		{"ackBegin without callBegin", func(c *Call) { c.CallBegin = time.Time{} }, full.AckBegin},
		{"waitBegin without callBegin or ackBegin", func(c *Call) { c.CallBegin, c.AckBegin = time.Time{}, time.Time{} }, full.WaitBegin},
		{"logDate alone", func(c *Call) { c.CallBegin, c.AckBegin, c.WaitBegin = time.Time{}, time.Time{}, time.Time{} }, full.LogDate},
	}
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := full
			tt.edit(&c)
			ev := must(t)(enc.Unended(Hash(c), lastSeen))
			if !ev.Time.Equal(tt.want) {
				t.Errorf("time %v, want %v", ev.Time, tt.want)
			}
			b, _ := json.Marshal(ev)
			if err := Validate(b); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestUnendedRefusesCallsThatCannotBeUnendedEvents(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(c *Call)
		lastSeen time.Time
		field    string
	}{
		{"a call with an end (encode it with Completed)", func(c *Call) { c.CallEnd = c.CallBegin.Add(time.Minute) }, lastSeen, "callEnd"},
		{"a call with no time at all", func(c *Call) { *c = Call{CCID: 1, VDN: 25, CallID: "x"} }, lastSeen, "callBegin"},
		{"a call never seen", func(*Call) {}, time.Time{}, "lastSeen"},
		{"vdn 0", func(c *Call) { c.VDN = 0 }, lastSeen, "vdn"},
		{"ccId 70000", func(c *Call) { c.CCID = 70000 }, lastSeen, "ccId"},
		{"an empty call id", func(c *Call) { c.CallID = "" }, lastSeen, "callId"},
	}
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := unendedCall()
			tt.edit(&c)
			_, err := enc.Unended(Hash(c), tt.lastSeen)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("Unended = %v, want a *FieldError on %s", err, tt.field)
			}
		})
	}
}

func TestAnUnendedCallIsNotARepeatOfItsCompletedEvent(t *testing.T) {
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	unended := must(t)(enc.Unended(Hash(unendedCall()), lastSeen))
	completed := must(t)(enc.CallCompleted(answeredCall(), false))
	if unended.ID == completed.ID {
		t.Errorf("both have id %s: a consumer would drop the completed call as a duplicate", unended.ID)
	}
	again := must(t)(enc.Unended(Hash(unendedCall()), lastSeen.Add(time.Hour)))
	if again.ID != unended.ID {
		t.Errorf("published again it has id %s, want the same %s", again.ID, unended.ID)
	}
}

// Each case breaks one thing in a valid unended event; Validate must notice.
func TestValidateRejectsBrokenUnendedEvents(t *testing.T) {
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	completedID := must(t)(enc.CallCompleted(answeredCall(), false)).ID
	tests := []struct {
		name string
		edit func(ev, data map[string]any)
	}{
		{"an unended event with a callEnd", func(_, d map[string]any) { d["callEnd"] = "2026-03-29T08:18:13.250Z" }},
		{"an end said to be reported", func(_, d map[string]any) { d["endReported"] = true }},
		{"no endReported", func(_, d map[string]any) { delete(d, "endReported") }},
		{"no lastSeen", func(_, d map[string]any) { delete(d, "lastSeen") }},
		{"a null lastSeen", func(_, d map[string]any) { d["lastSeen"] = nil }},
		{"talk time without an end", func(_, d map[string]any) { d["talkMs"] = 1000 }},
		{"an update", func(_, d map[string]any) { d["update"] = true }},
		{"a time that is not callBegin", func(ev, _ map[string]any) { ev["time"] = "2026-03-29T08:15:12.750Z" }},
		{"a time that is not logDate when logDate is all there is", func(ev, d map[string]any) {
			d["waitBegin"], d["ackBegin"], d["callBegin"], d["answered"], d["waitMs"] = nil, nil, nil, false, 0
		}},
		{"no time at all", func(ev, d map[string]any) {
			d["waitBegin"], d["ackBegin"], d["callBegin"], d["logDate"], d["answered"], d["waitMs"] = nil, nil, nil, nil, false, 0
		}},
		{"the id of the completed call", func(ev, _ map[string]any) { ev["id"] = completedID }},
		{"a subject that is not the call id", func(ev, _ map[string]any) { ev["subject"] = "other" }},
		{"a partition key that is not the vdn", func(ev, _ map[string]any) { ev["partitionkey"] = "26" }},
		{"the completed call's type", func(ev, _ map[string]any) { ev["type"] = TypeCallCompleted }},
		{"the completed call's dataschema", func(ev, _ map[string]any) { ev["dataschema"] = SchemaCallCompleted }},
		{"an unknown number policy", func(_, d map[string]any) { d["numberPolicy"] = "encrypt" }},
	}
	valid, err := json.Marshal(must(t)(enc.Unended(Hash(unendedCall()), lastSeen)))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(valid); err != nil {
		t.Fatalf("the unbroken event is invalid: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ve *ValidationError
			if err := Validate(editEvent(t, valid, tt.edit)); !errors.As(err, &ve) {
				t.Errorf("Validate = %v, want a *ValidationError", err)
			}
		})
	}
}

func TestUnendedPhoneNumbersFollowThePolicy(t *testing.T) {
	c := unendedCall()
	for _, o := range []EncoderOptions{{PII: PIIMask}, {PII: PIIHash, PIIKey: []byte("k")}} {
		ev := must(t)(newEncoder(t, o).Unended(Hash(c), lastSeen))
		if strings.Contains(string(ev.Data), c.CallerNo) || strings.Contains(string(ev.Data), c.CalleeNo) {
			t.Errorf("%s: a phone number is in the clear: %s", o.PII, ev.Data)
		}
	}
}
