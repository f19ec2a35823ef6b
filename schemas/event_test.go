package schemas

import (
	"encoding/json"
	"testing"
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
