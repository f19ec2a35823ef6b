package schemas

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// BenchmarkEncodeCallCompleted measures encoding a call into its event and
// the event into its Kafka value, the publisher's per-event work.
func BenchmarkEncodeCallCompleted(b *testing.B) {
	for _, mode := range []PIIMode{PIIPlain, PIIMask, PIIHash} {
		b.Run(string(mode), func(b *testing.B) {
			enc := newEncoder(b, EncoderOptions{PII: mode, PIIKey: []byte("bench-key")})
			calls := make([]Call, 1000)
			for i := range calls {
				c := answeredCall()
				c.VDN = 1 + i%500
				c.CallID = strconv.Itoa(1774772100+i) + "-1"
				c.CallEnd = c.CallEnd.Add(time.Duration(i) * time.Second)
				calls[i] = c
			}
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				ev, err := enc.CallCompleted(calls[n%len(calls)], false)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := json.Marshal(ev); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkValidate is the cost of Validate, which tests call per event.
func BenchmarkValidate(b *testing.B) {
	enc := newEncoder(b, EncoderOptions{PII: PIIPlain})
	ev, err := enc.CallCompleted(answeredCall(), false)
	if err != nil {
		b.Fatal(err)
	}
	v, _ := json.Marshal(ev)
	n := 0
	for b.Loop() {
		if err := Validate(v); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
