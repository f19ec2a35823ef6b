package publisher

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/segmentio/kafka-go"

	"github.com/callpub/callpub/schemas"
)

// contentTypeHeader marks structured mode (CloudEvents Kafka binding).
var contentTypeHeader = []kafka.Header{{Key: "content-type", Value: []byte(schemas.ContentType)}}

// message turns one event into its record: the whole CloudEvent as the value,
// the partitionkey (the VDN's decimal string) as the key, so murmur2 puts
// every event of a VDN on one partition, the partition a Java producer would
// pick. Time is left zero: kafka-go stamps the produce time (the event's own
// time is inside the value). An event whose value is longer than maxValue
// bytes is refused with ErrTooLarge.
func message(topic string, e schemas.Event, maxValue int) (kafka.Message, error) {
	if err := checkKey(e.PartitionKey); err != nil {
		return kafka.Message{}, fmt.Errorf("event %s: %w", e.ID, err)
	}
	value, err := json.Marshal(e)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	if len(value) > maxValue { // len(value) is e.Size()
		return kafka.Message{}, fmt.Errorf("event %s: %d bytes, above the %d that fit: %w", e.ID, len(value), maxValue, ErrTooLarge)
	}
	return kafka.Message{
		Topic:   topic,
		Key:     []byte(e.PartitionKey),
		Value:   value,
		Headers: contentTypeHeader, // read-only, shared by every message
	}, nil
}

// checkKey insists on the canonical decimal form: "25", never "025", "",
// or anything a Java producer would hash differently.
func checkKey(k string) error {
	n, err := strconv.Atoi(k)
	if err != nil || n <= 0 || strconv.Itoa(n) != k {
		return fmt.Errorf("partitionkey %q is not a VDN in decimal", k)
	}
	return nil
}
