package publisher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/callpub/callpub/schemas"
)

// The state changelog (Config.StateTopic): PublishState writes one stream's
// state record, ReadState reads the topic back from its beginning. The
// record format is schemas.StateRecord; this file only moves bytes.

// ErrNoStateTopic is returned by PublishState and ReadState when
// Config.StateTopic is "" (the changelog is off).
var ErrNoStateTopic = errors.New("no state topic (CALLPUB_KAFKA_STATE_TOPIC is not set)")

const (
	// stateFetchBytes is the most one fetch of a state partition returns,
	// unless twice MaxMessageBytes is more (fetchBytes).
	stateFetchBytes = 8 << 20
	// stateFetchWait is how long the broker holds a fetch that finds
	// nothing; ReadState only fetches below the end it saw, so it waits
	// only where compaction removed the records it asked for.
	stateFetchWait = 100 * time.Millisecond
)

// PublishState writes value, a schemas.EncodeState record (nil: a
// tombstone, after which compaction forgets the stream), to the state topic
// under the key stream, a stream key in canonical form ("1/25/in"). It
// returns nil only once every in-sync replica has it (acks=all), through the
// same writer as Publish: the key's murmur2 hash picks the partition, so a
// stream's records share one, in the order of PublishState calls, as long
// as a caller does not write one stream from two goroutines at once. A
// failed batch is retried as kafka-go retries (up to maxAttempts) and no
// more: the caller decides what a failure means.
//
// Errors: ErrNoStateTopic when the changelog is off; ErrTooLarge when the
// record would exceed MaxMessageBytes (nothing is sent); ErrClosed after
// Close; a *TopicError when the topic does not exist. If ctx ends first the
// outcome is unknown (the record may still be written) and errors.Is(err,
// ctx.Err()) holds.
func (p *Publisher) PublishState(ctx context.Context, stream string, value []byte) error {
	if p.cfg.StateTopic == "" {
		return ErrNoStateTopic
	}
	if _, err := schemas.ParseStream(stream); err != nil {
		return fmt.Errorf("publish state: key: %w", err)
	}
	return p.writeStateRecord(ctx, "publish state of "+stream, stream, value)
}

// ReadState reads the state topic of cfg (with cfg's TLS and SASL) from the
// first offset of each partition up to the end the partition had when
// ReadState began, so a service writing meanwhile does not keep it reading.
// It hands every record to take: partition by partition in ascending order,
// each in offset order, value nil for a tombstone. Offsets that compaction
// removed are skipped. It returns how many records it handed to take.
//
// take's error ends the read and is returned wrapped. So is any Kafka
// error (a missing topic is a *TopicError); nothing is retried beyond
// kafka-go's own connection handling, and a read that failed can simply be
// done again. If ctx ends first, errors.Is(err, ctx.Err()) holds. cfg is
// validated as New validates it; ErrNoStateTopic when StateTopic is "".
// value is a fresh slice for each record: take may keep it.
func ReadState(ctx context.Context, cfg Config, take func(key string, value []byte, offset int64, partition int) error) (int, error) {
	topic := cfg.StateTopic
	if topic == "" {
		return 0, ErrNoStateTopic
	}
	if err := cfg.validate(); err != nil {
		return 0, fmt.Errorf("kafka config: %w", err)
	}
	transport, err := cfg.transport()
	if err != nil {
		return 0, fmt.Errorf("kafka config: %w", err)
	}
	transport.MetadataTopics = []string{topic}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.WriteTimeout, Transport: transport}
	spans, err := stateStart(ctx, client, cfg)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range spans {
		if err := readStatePartition(ctx, client, s, take, &n); err != nil {
			return n, err
		}
	}
	return n, nil
}

// partitionSpan is the offsets [first, end) of one partition to read.
type partitionSpan struct {
	topic      string
	partition  int
	first, end int64
	// fetchBytes is the most one fetch returns: room for a whole batch
	// after the first (which the broker sends however large), so that a
	// fetch whose first batch compaction emptied past the offset asked for
	// still brings the next one, and an answer with nothing new means
	// there is nothing more below the high watermark.
	fetchBytes int64
}

// stateSpans looks the topic up (it must exist) and returns each
// partition's first offset and its end (the high watermark) as of now, in
// partition order.
func stateSpans(ctx context.Context, client *kafka.Client, cfg Config, topic string) ([]partitionSpan, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("kafka metadata from brokers %s: %w", cfg.brokerList(), err)
	}
	partitions, err := (&Publisher{cfg: cfg}).partitions(md, topic)
	if err != nil {
		return nil, err
	}
	reqs := make([]kafka.OffsetRequest, 0, 2*partitions)
	for p := range partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("offsets of %s: %w", topic, err)
	}
	spans := make([]partitionSpan, partitions)
	found := make([]bool, partitions)
	for _, po := range res.Topics[topic] {
		if po.Partition < 0 || po.Partition >= partitions {
			continue
		}
		if po.Error != nil {
			return nil, fmt.Errorf("offsets of %s[%d]: %w", topic, po.Partition, po.Error)
		}
		spans[po.Partition] = partitionSpan{topic: topic, partition: po.Partition,
			first: po.FirstOffset, end: po.LastOffset, fetchBytes: max(stateFetchBytes, 2*int64(cfg.messageBytes()))}
		found[po.Partition] = true
	}
	for p, ok := range found {
		if !ok {
			return nil, fmt.Errorf("offsets of %s[%d]: no answer", topic, p)
		}
	}
	return spans, nil
}

// readStatePartition hands the records of s to take, counting them in n.
func readStatePartition(ctx context.Context, client *kafka.Client, s partitionSpan,
	take func(key string, value []byte, offset int64, partition int) error, n *int) error {
	next := s.first
	for next < s.end {
		res, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: s.topic, Partition: s.partition, Offset: next,
			MinBytes: 1, MaxBytes: s.fetchBytes, MaxWait: stateFetchWait})
		if err == nil {
			err = res.Error
		}
		if err != nil {
			return fmt.Errorf("read %s[%d] at %d: %w", s.topic, s.partition, next, err)
		}
		before := next
		if err := takeRecords(res.Records, s, &next, take, n); err != nil {
			return err
		}
		// Nothing at or after next below the high watermark: compaction
		// removed the rest of the span (the broker returns the next batch
		// there is, however far past next it starts). A throttled answer is
		// empty for another reason, and is asked again.
		if next == before && res.Throttle == 0 && res.HighWatermark >= s.end {
			return nil
		}
	}
	return nil
}

// takeRecords hands the records of one fetch at or after *next and before
// s.end to take, advancing *next past each.
func takeRecords(records kafka.RecordReader, s partitionSpan, next *int64,
	take func(key string, value []byte, offset int64, partition int) error, n *int) error {
	for *next < s.end {
		rec, err := records.ReadRecord()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s[%d] at %d: %w", s.topic, s.partition, *next, err)
		}
		if rec.Offset < *next { // a batch starts before the offset asked for
			continue
		}
		if rec.Offset >= s.end {
			*next = s.end
			return nil
		}
		key, kerr := readBytes(rec.Key)
		value, verr := readBytes(rec.Value)
		if err := errors.Join(kerr, verr); err != nil {
			return fmt.Errorf("read %s[%d] at %d: %w", s.topic, s.partition, rec.Offset, err)
		}
		*next = rec.Offset + 1
		*n++
		if err := take(string(key), value, rec.Offset, s.partition); err != nil {
			return fmt.Errorf("state record %s[%d] at %d: %w", s.topic, s.partition, rec.Offset, err)
		}
	}
	return nil
}

// readBytes copies b (nil stays nil: a tombstone) and releases it.
func readBytes(b kafka.Bytes) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	defer b.Close()
	out := make([]byte, b.Len())
	_, err := io.ReadFull(b, out)
	return out, err
}
