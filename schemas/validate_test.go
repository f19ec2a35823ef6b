package schemas

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// Each case breaks one thing in a valid event; Validate must notice. This
// keeps the schema honest: a schema that accepts anything fails here.
func TestValidateRejectsBrokenEvents(t *testing.T) {
	tests := []struct {
		name string
		edit func(ev map[string]any, data map[string]any)
	}{
		{"a missing id", func(ev, _ map[string]any) { delete(ev, "id") }},
		{"a random id that is not the call's", func(ev, _ map[string]any) { ev["id"] = strings.Repeat("ab", 16) }},
		{"another spec version", func(ev, _ map[string]any) { ev["specversion"] = "0.3" }},
		{"an unknown type", func(ev, _ map[string]any) { ev["type"] = "com.huawei.ccms.call.started.v1" }},
		{"a time with nanoseconds", func(ev, _ map[string]any) { ev["time"] = "2026-03-29T08:18:13.250400000Z" }},
		{"a time with an offset", func(ev, _ map[string]any) { ev["time"] = "2026-03-29T10:18:13.250+02:00" }},
		{"a time that is not callEnd", func(ev, _ map[string]any) { ev["time"] = "2026-03-29T08:18:14.250Z" }},
		{"a partition key with a leading zero", func(ev, _ map[string]any) { ev["partitionkey"] = "025" }},
		{"a partition key that is not the vdn", func(ev, _ map[string]any) { ev["partitionkey"] = "26" }},
		{"a subject that is not the call id", func(ev, _ map[string]any) { ev["subject"] = "other" }},
		{"a source for another vdn", func(ev, _ map[string]any) { ev["source"] = "/ccms/1/vdn/26" }},
		{"an absolute source URL", func(ev, _ map[string]any) { ev["source"] = "https://x/1/vdn/25" }},
		{"another dataschema", func(ev, _ map[string]any) { ev["dataschema"] = "https://example.com/x.json" }},
		{"data that is a string", func(ev, _ map[string]any) { ev["data"] = "{}" }},
		{"a missing callEnd", func(_, d map[string]any) { delete(d, "callEnd") }},
		{"a null callEnd", func(_, d map[string]any) { d["callEnd"] = nil }},
		{"vdn 0", func(_, d map[string]any) { d["vdn"] = 0 }},
		{"a direction spelled in", func(_, d map[string]any) { d["direction"] = "in" }},
		{"an unexpected data field", func(_, d map[string]any) { d["agentId"] = "7" }},
		{"a code without a name key", func(_, d map[string]any) { d["callType"] = map[string]any{"code": 0} }},
		{"a code as a bare number", func(_, d map[string]any) { d["callType"] = 0 }},
		{"an unanswered call with talk time", func(_, d map[string]any) {
			d["answered"], d["ackBegin"], d["talkMs"] = false, nil, 1000
		}},
		{"an answered call without ackBegin", func(_, d map[string]any) { d["ackBegin"] = nil }},
		{"a negative wait", func(_, d map[string]any) { d["waitMs"] = -1 }},
		{"an uppercase content hash", func(_, d map[string]any) { d["contentHash"] = "9671B40311EF2640" }},
		{"an update whose id does not cover its hash", func(_, d map[string]any) { d["update"] = true }},
		{"an unknown number policy", func(_, d map[string]any) { d["numberPolicy"] = "encrypt" }},
	}
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	ev, err := enc.CallCompleted(answeredCall(), false)
	if err != nil {
		t.Fatal(err)
	}
	valid, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(valid); err != nil {
		t.Fatalf("the unbroken event is invalid: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(valid, &m); err != nil {
				t.Fatal(err)
			}
			tt.edit(m, m["data"].(map[string]any))
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			err = Validate(b)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Errorf("Validate = %v, want a *ValidationError", err)
			}
		})
	}
}

func TestValidateRejectsBrokenControlRecords(t *testing.T) {
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	at := answeredCall().CallEnd
	otherSubject := enc.Heartbeat(Stream{CCID: 1, VDN: 25, Dir: In}, at, at)
	otherSubject.Subject = "1/26/in"
	noTime := enc.Heartbeat(Stream{CCID: 1, VDN: 25, Dir: In}, at, at)
	noTime.Time = time.Time{}
	tests := []struct {
		name  string
		event Event
	}{
		{"a gap for a malformed stream key", enc.Gap(Stream{CCID: 1, VDN: 25}, at, at, at)},
		{"a sealed day that is not a date", enc.DaySealed(Stream{CCID: 1, VDN: 25, Dir: In}, DaySeal{Day: "yesterday", Published: 1}, at)},
		{"a heartbeat whose subject is another stream", otherSubject},
		{"a heartbeat without a time", noTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.event)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(b); err == nil {
				t.Error("Validate accepted it")
			}
		})
	}
}

func TestValidateRejectsWhatIsNotJSON(t *testing.T) {
	for _, in := range []string{"", "{", "[]", "null", `{"type":"com.huawei.ccms.call.completed.v1"}`} {
		if err := Validate([]byte(in)); err == nil {
			t.Errorf("Validate(%q) = nil", in)
		}
	}
}
