package ccms

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// benchPage is a full page of 100 rows, every second row with numbers as
// strings, as the real server mixes them.
func benchPage() []byte {
	var b bytes.Buffer
	b.WriteString(`{"resultCode":"0100000","resultDesc":{"data":[`)
	for i := range 100 {
		if i > 0 {
			b.WriteByte(',')
		}
		t := int64(1735689600000 + i*37_000)
		if i%2 == 0 {
			fmt.Fprintf(&b, `{"logDate":%d,"callerNo":"86138%08d","calleeNo":"4001","callId":"%d-%d","callType":0,"waitBegin":%d,"ackBegin":%d,"callBegin":%d,"callEnd":%d,"vdn":25,"leaveReason":15,"mediaType":5,"subMediaType":0}`,
				t+65_000, i, t/1000, i, t, t+4_000, t+4_000, t+60_000)
		} else {
			fmt.Fprintf(&b, `{"logDate":"%d","callerNo":"86138%08d","calleeNo":"4001","callId":"%d-%d","callType":"0","waitBegin":"%d","ackBegin":"%d","callBegin":"%d","callEnd":"%d","vdn":25,"leaveReason":"15","mediaType":53,"subMediaType":1}`,
				t+65_000, i, t/1000, i, t, t+4_000, t+4_000, t+60_000)
		}
	}
	b.WriteString(`],"count":"100"}}`)
	return b.Bytes()
}

func BenchmarkDecodePage(b *testing.B) {
	body := benchPage()
	loc := time.UTC
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var records int
	for b.Loop() {
		p, err := decodeResponse(200, body, loc)
		if err != nil {
			b.Fatal(err)
		}
		records += len(p.Calls)
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}
