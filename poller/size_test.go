package poller

import (
	"testing"
	"time"

	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/schemas"
)

// encodedSize must agree with Event.Size for whatever the encoder makes,
// characters that JSON escapes included.
func TestEncodedSizeIsTheEventsSize(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	calls := map[string]ccms.Call{
		"a plain call": {CallID: "1001-1", CallerNo: "13800138000", CalleeNo: "4001", CallBegin: at, CallEnd: at.Add(time.Minute)},
		"characters JSON escapes in its fields": {CallID: `a<b>&"c"\` + "\u2028\u2029\x01é", CallerNo: "<script>&amp;",
			CalleeNo: "\t\n", CallBegin: at, CallEnd: at.Add(time.Minute)},
		"a call without an end": {CallID: "1001-2", CallBegin: at},
	}
	for _, mode := range []schemas.PIIMode{schemas.PIIPlain, schemas.PIIMask} {
		enc, err := schemas.NewEncoder(schemas.EncoderOptions{PII: mode})
		if err != nil {
			t.Fatal(err)
		}
		for name, c := range calls {
			s := schemas.Stream{CCID: 1, VDN: 25, Dir: schemas.In}
			h := schemas.Hash(toSchema(s, c))
			var e schemas.Event
			if c.CallEnd.IsZero() {
				e, err = enc.Unended(h, at)
			} else {
				e, err = enc.Completed(h, false)
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			want, err := e.Size()
			if err != nil {
				t.Fatal(err)
			}
			if got, err := encodedSize(e); err != nil || got != want {
				t.Errorf("%s (%s): encodedSize %d, %v; Size %d", name, mode, got, err, want)
			}
		}
	}
}
