package schemas

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeCallCompleted: DecodeCallCompleted never panics, and whatever it
// accepts meets its invariants and survives an encode/decode round trip.
func FuzzDecodeCallCompleted(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.golden.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"com.huawei.ccms.call.completed.v1","time":"2026-03-29T08:00:00Z","data":{"direction":"inbound","callId":"x","callEnd":"2026-03-29T08:00:00.000Z"}}`))
	f.Add([]byte(`{"type":"com.huawei.ccms.call.completed.v1","data":"x"}`))
	f.Add([]byte(`{"time":"not a time"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, d, err := DecodeCallCompleted(b)
		if err != nil {
			return
		}
		if ev.Type != TypeCallCompleted || d.CallID == "" || d.CallEnd.IsZero() ||
			(d.Direction != "inbound" && d.Direction != "outbound") {
			t.Fatalf("accepted an event that breaks the decoder's invariants: %+v %+v", ev, d)
		}
		again, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("a decoded event does not encode: %v", err)
		}
		ev2, d2, err := DecodeCallCompleted(again)
		if err != nil {
			t.Fatalf("a re-encoded event does not decode: %v\n%s", err, again)
		}
		if !ev2.Time.Equal(ev.Time.Truncate(1e6)) || ev2.ID != ev.ID || d2.CallID != d.CallID || !d2.CallEnd.Equal(d.CallEnd.Time) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, ev2)
		}
	})
}

// FuzzEventUnmarshal: any input either fails to decode or decodes to an
// Event whose encoding decodes again.
func FuzzEventUnmarshal(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"x","time":"2026-03-29T08:00:00.123456Z","data":{}}`))
	f.Add([]byte(`{"data":null}`))
	f.Add([]byte(`{"time":"9999-12-31T23:30:00-01:00","data":{}}`))
	f.Add([]byte(`{"data":[1]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return
		}
		out, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("decoded but does not encode: %v", err)
		}
		var back Event
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("encoded form does not decode: %v\n%s", err, out)
		}
	})
}

// FuzzDecodeDaySealed: DecodeDaySealed never panics, whatever it accepts
// keeps its promises (above all: a record that says complete lists nothing
// missing), and survives an encode/decode round trip.
func FuzzDecodeDaySealed(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "stream-day-sealed-*.golden.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"com.huawei.ccms.stream.day.sealed.v2","data":{"stream":"1/2/in","day":"2026-03-29","complete":true,"readFrom":"2026-03-29T00:00:00Z","readTo":"2026-03-30T00:00:00Z","gaps":[{"start":"2026-03-29T00:00:00Z","end":"2026-03-29T01:00:00Z"}]}}`))
	f.Add([]byte(`{"type":"com.huawei.ccms.stream.day.sealed.v1","data":{"stream":"1/2/out","day":"2026-03-29","complete":true}}`))
	f.Add([]byte(`{"type":"com.huawei.ccms.stream.day.sealed.v2","data":{"stream":"1/2/in","day":"2026-03-29","gaps":[{"start":null}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, d, err := DecodeDaySealed(b)
		if err != nil {
			return
		}
		if ev.Type != TypeDaySealed && ev.Type != TypeDaySealedV1 {
			t.Fatalf("accepted type %q", ev.Type)
		}
		if err := checkSeal(d); err != nil {
			t.Fatalf("accepted data that breaks its promises: %v: %+v", err, d)
		}
		if _, err := ParseStream(d.Stream); err != nil {
			t.Fatalf("accepted a bad stream: %v", err)
		}
		if ev.Type == TypeDaySealedV1 && (d.Complete || d.Gaps != nil || d.Suspect != nil || d.LastChance || !d.ReadFrom.IsZero()) {
			t.Fatalf("a v1 record decoded with v2 facts: %+v", d)
		}
		again, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("a decoded event does not encode: %v", err)
		}
		ev2, d2, err := DecodeDaySealed(again)
		if err != nil {
			t.Fatalf("a re-encoded event does not decode: %v\n%s", err, again)
		}
		if ev2.ID != ev.ID || d2.Day != d.Day || d2.Published != d.Published || d2.Complete != d.Complete || len(d2.Gaps) != len(d.Gaps) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", d, d2)
		}
	})
}
