package publisher

import (
	"encoding/json"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/callpub/callpub/poller/pollertest"
	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// The publisher keeps the poller's Publisher contract on the broker: what it
// acknowledged is on the topic in order per VDN, control records on the
// control topic.
func TestPublisherKeepsThePollerContract(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic, control := kafkatest.Topic(t, brokers, 3), kafkatest.Topic(t, brokers, 1)
	p := newPublisher(t, brokers, topic, control, prometheus.NewRegistry())
	read := func(t *testing.T, n, nControl int) (events, ctl []schemas.Event) {
		return decodeAll(t, kafkatest.ReadAll(t, brokers, topic, 3, n)),
			decodeAll(t, kafkatest.ReadAll(t, brokers, control, 1, nControl))
	}
	pollertest.Publisher(t, p, read, true)
}

func decodeAll(t *testing.T, msgs []kafka.Message) []schemas.Event {
	t.Helper()
	out := make([]schemas.Event, len(msgs))
	for i, m := range msgs {
		if err := json.Unmarshal(m.Value, &out[i]); err != nil {
			t.Fatalf("decode %s: %v", m.Value, err)
		}
	}
	return out
}
