package publisher

import (
	"fmt"
	"strconv"

	"github.com/segmentio/kafka-go"

	"github.com/callpub/callpub/schemas"
)

// message turns one event into its record in mode, by the CloudEvents
// Kafka binding (schemas.Event.Record): structured, the whole CloudEvent as
// the value with its content-type and ce_ headers, or binary, the data as
// the value and the attributes as headers. The key is the partitionkey (the
// VDN's decimal string), so murmur2 puts every event of a VDN on one
// partition, the partition a Java producer would pick. Time is left zero:
// kafka-go stamps the produce time (the event's own time is an attribute).
//
// An event whose Size is above maxEvent, or whose record would take more
// than maxRecord bytes in Kafka's record format, is refused with
// ErrTooLarge. The second cannot happen to an event within maxEvent (see
// MaxMessageBytes); it stays as the check of what the broker will measure.
func message(topic string, e schemas.Event, mode schemas.Mode, maxEvent, maxRecord int) (kafka.Message, error) {
	if err := checkKey(e.PartitionKey); err != nil {
		return kafka.Message{}, fmt.Errorf("event %s: %w", e.ID, err)
	}
	r, err := e.Record(mode)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	size := len(r.Value) // structured: the value is the event, Size bytes
	if mode != schemas.Structured {
		if size, err = e.Size(); err != nil {
			return kafka.Message{}, fmt.Errorf("encode event %s: %w", e.ID, err)
		}
	}
	if size > maxEvent {
		return kafka.Message{}, fmt.Errorf("event %s: %d bytes, above the %d that fit: %w", e.ID, size, maxEvent, ErrTooLarge)
	}
	if n := recordBytes(r); n > maxRecord {
		return kafka.Message{}, fmt.Errorf("event %s: a record of %d bytes, above the %d that fit: %w", e.ID, n, maxRecord, ErrTooLarge)
	}
	headers := make([]kafka.Header, len(r.Headers))
	for i, h := range r.Headers {
		headers[i] = kafka.Header{Key: h.Key, Value: h.Value}
	}
	return kafka.Message{Topic: topic, Key: r.Key, Value: r.Value, Headers: headers}, nil
}

// recordFixed bounds what a record (v2) takes besides its key, value and
// headers: its length, attributes, timestamp and offset deltas, and the
// varint lengths of key and value and the header count.
const recordFixed = 32

// recordBytes is what r takes in a record batch: recordFixed, the key, the
// value, and each header's name and value with their varint lengths.
func recordBytes(r schemas.Record) int {
	n := recordFixed + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += varintLen(len(h.Key)) + len(h.Key) + varintLen(len(h.Value)) + len(h.Value)
	}
	return n
}

// varintLen is the length of n as Kafka's zig-zag varint.
func varintLen(n int) int {
	z := uint64(n) << 1
	l := 1
	for z >= 0x80 {
		z >>= 7
		l++
	}
	return l
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

// Decode reads a record of the call, control or dead-letter topic, in
// either content mode (schemas.DecodeRecord): what `callpub tail` and
// `callpub verify` read, and what any Go consumer may use.
func Decode(m kafka.Message) (schemas.Event, error) {
	headers := make([]schemas.Header, len(m.Headers))
	for i, h := range m.Headers {
		headers[i] = schemas.Header{Key: h.Key, Value: h.Value}
	}
	e, err := schemas.DecodeRecord(headers, m.Value)
	if err != nil {
		return schemas.Event{}, fmt.Errorf("record %s[%d]@%d: %w", m.Topic, m.Partition, m.Offset, err)
	}
	return e, nil
}
