package schemas

import (
	"fmt"
	"testing"
	"time"
)

// These values are part of the wire contract: consumers dedupe on ids and
// dedupe stores content hashes. A failure here means every consumer's dedupe
// (or every stored hash) breaks; do not update the constants casually.
func TestEventIDIsPinned(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"an inbound call", EventID(1, 25, true, "1774772100-538062"), "353d88654b1a64d5185c083a26d8af69"},
		{"the same call id outbound differs", EventID(1, 25, false, "1774772100-538062"), "509c896c5476229f826f799b34472665"},
		{"an update covers the content hash", UpdateEventID(1, 25, true, "1774772100-538062", 0x0123456789abcdef), "54f94b16a3a41a9a808f22b66c23feb7"},
		{"an unended call has its own id", UnendedEventID(1, 25, true, "1774772100-538062"), "d22dd6e1b27496a09d7312e78126dd5d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("id = %s, want %s", tt.got, tt.want)
			}
		})
	}
}

func TestContentHashIsPinned(t *testing.T) {
	if got, want := fmt.Sprintf("%016x", ContentHash(answeredCall())), "9671b40311ef2640"; got != want {
		t.Errorf("ContentHash = %s, want %s", got, want)
	}
}

func TestEventIDSeparatesEveryPartOfTheIdentity(t *testing.T) {
	base := EventID(1, 25, true, "42")
	others := map[string]string{
		"another ccId":                         EventID(2, 25, true, "42"),
		"another vdn":                          EventID(1, 26, true, "42"),
		"another direction":                    EventID(1, 25, false, "42"),
		"another call id":                      EventID(1, 25, true, "43"),
		"digits moved between vdn and call id": EventID(1, 2, true, "542"),
		"an update of the same call":           UpdateEventID(1, 25, true, "42", 0),
		"the same call unended":                UnendedEventID(1, 25, true, "42"),
	}
	for name, id := range others {
		if id == base {
			t.Errorf("%s gives the same id %s", name, id)
		}
	}
	if EventID(1, 25, true, "42") != base {
		t.Error("EventID is not deterministic")
	}
}

func TestContentHash(t *testing.T) {
	c := answeredCall()
	tests := []struct {
		name   string
		change func(*Call)
		same   bool
	}{
		{"the same call in another time zone hashes the same", func(c *Call) { c.CallEnd = c.CallEnd.In(time.UTC) }, true},
		{"sub-millisecond noise does not change the hash", func(c *Call) { c.CallEnd = c.CallEnd.Add(300 * time.Microsecond) }, true},
		{"a new logDate alone is not a content change", func(c *Call) { c.LogDate = c.LogDate.Add(time.Hour) }, true},
		{"a changed leave reason is a content change", func(c *Call) { c.LeaveReason = 16 }, false},
		{"a corrected callEnd is a content change", func(c *Call) { c.CallEnd = c.CallEnd.Add(time.Second) }, false},
		{"a changed caller number is a content change", func(c *Call) { c.CallerNo = "+8613800009999" }, false},
		{"moving a character between numbers is a content change", func(c *Call) { c.CallerNo, c.CalleeNo = c.CallerNo+"4", c.CalleeNo[1:] }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := c
			tt.change(&d)
			if got := ContentHash(d) == ContentHash(c); got != tt.same {
				t.Errorf("same hash = %v, want %v", got, tt.same)
			}
		})
	}
}

func TestParseStream(t *testing.T) {
	tests := []struct {
		in      string
		ok      bool
		ccID    int
		vdn     int
		inbound bool
	}{
		{"1/25/in", true, 1, 25, true},
		{"65535/5000/out", true, 65535, 5000, false},
		{"1/025/in", false, 0, 0, false},
		{"1/25", false, 0, 0, false},
		{"1/25/both", false, 0, 0, false},
		{"0/25/in", false, 0, 0, false},
		{"1/+25/in", false, 0, 0, false},
		{"", false, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			st, err := ParseStream(tt.in)
			ccID, vdn, inbound := st.CCID, st.VDN, st.Inbound()
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if ccID != tt.ccID || vdn != tt.vdn || inbound != tt.inbound {
				t.Errorf("got %d %d %v", ccID, vdn, inbound)
			}
			if tt.ok && st.Key() != tt.in {
				t.Errorf("Key does not give %q back", tt.in)
			}
		})
	}
}
