package publisher

import (
	"fmt"
	"sync"
	"testing"

	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// BenchmarkPublish publishes 100-event pages (one page per Publish, as a
// stream step does) to a 12-partition topic with 1 and 4 concurrent
// publishers sharing one Publisher, and reports acknowledged events/s.
// Run it against a real broker:
//
//	eval "$(scripts/kafka/start.sh)"; go test -run '^$' -bench . ./publisher/; scripts/kafka/stop.sh
func BenchmarkPublish(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("publishers=%d", workers), func(b *testing.B) {
			brokers := kafkatest.Brokers(b)
			topic := kafkatest.Topic(b, brokers, 12) // set up before the timed loop
			p := newPublisher(b, brokers, topic, "", nil)
			const page = 100
			pages := make([][]schemas.Event, workers)
			for w := range pages {
				for i := range page {
					pages[w] = append(pages[w], callEvent(b, 1+(w*page+i)%500, i))
				}
			}
			calls := 0
			for b.Loop() {
				var wg sync.WaitGroup
				errs := make([]error, workers)
				for w := range workers {
					wg.Go(func() { errs[w] = p.Publish(b.Context(), pages[w]...) })
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				calls++
			}
			b.ReportMetric(float64(calls*workers*page)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
