package schemas

import (
	"encoding/json"
	"testing"
	"time"
)

func TestSizeIsTheEncodedLength(t *testing.T) {
	for name, ev := range goldenEvents(t) {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		n, err := ev.Size()
		if err != nil || n != len(b) {
			t.Errorf("%s: Size = %d, %v; encoded length %d", name, n, err, len(b))
		}
	}
	bad := Event{ID: "x", Data: json.RawMessage(`{"a":`)}
	if _, err := bad.Size(); err == nil {
		t.Error("Size of an event with broken data is not an error")
	}
}

// Record and Size call MarshalJSON directly, skipping the second pass
// json.Marshal makes over a Marshaler's output: the bytes must not differ.
func TestMarshalJSONIsWhatJSONMarshalGives(t *testing.T) {
	enc, err := NewEncoder(EncoderOptions{PII: PIIPlain})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	e := enc.Heartbeat(Stream{CCID: 1, VDN: 7, Dir: In}, at, at)
	e.Subject = `<odd> & "quoted" ` + "\u2028"
	direct, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	viaMarshal, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if string(direct) != string(viaMarshal) {
		t.Errorf("MarshalJSON:\n%s\njson.Marshal:\n%s", direct, viaMarshal)
	}
}
