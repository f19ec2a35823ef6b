package publisher

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	writeDuration prometheus.Histogram
	writeErrors   *prometheus.CounterVec // {topic}
	published     *prometheus.CounterVec // {topic, type}
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		writeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "callpub_kafka_write_duration_seconds",
			Help: "Time from handing a batch to Kafka until every record was acknowledged (or the write failed).",
			// 1 ms .. ~16 s: a healthy write is BatchTimeout plus a round trip.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callpub_kafka_write_errors_total",
			Help: "Publish calls that returned an error (the batch was not fully acknowledged).",
		}, []string{"topic"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callpub_events_published_total",
			Help: "Events acknowledged by Kafka, by topic and CloudEvents type.",
		}, []string{"topic", "type"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.writeDuration, m.writeErrors, m.published} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register kafka metrics: %w", err)
		}
	}
	return m, nil
}
