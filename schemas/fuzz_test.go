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
