package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/callpub/callpub/publisher"
	"github.com/callpub/callpub/schemas"
)

// topicReader reads a topic from a time (or its beginning) up to the end it
// had when the read began: what verify judges is the topic as it stood
// then, however busy the service keeps it.
type topicReader struct {
	brokers []string
	dialer  *kafka.Dialer
	// only, when set, limits a read to these partitions.
	only map[int]bool
	// parallel: how many partitions are read at once (0, 1: one by one).
	parallel int
}

// topicRead is what a read found out about the topic besides its records.
type topicRead struct {
	records int
	// floor is the produce time of the oldest record still on the topic,
	// when retention has deleted older ones (zero when it has deleted
	// nothing): records produced before it are gone.
	floor time.Time
	// bad counts records that are not callpub events (ErrNotCloudEvent,
	// undecodable data): nobody can tell which day they belong to.
	bad     int
	badWhat error // the first of them
}

// readMargin is read before -from: a call ending just after -from may have
// been produced a little earlier by a clock that runs ahead of CC-CMS's.
const readMargin = time.Hour

// read hands every record of topic to take, each partition's in offset
// order, from the record produced at from minus readMargin (zero: from the
// beginning) up to the partition's end when read was called: partition by
// partition, or with tr.parallel > 1 that many partitions at a time (take is
// never called concurrently; partitions interleave). A take error counts the
// record as bad; any other failure ends the read.
func (tr topicReader) read(ctx context.Context, topic string, from time.Time, take func(schemas.Event) error) (topicRead, error) {
	var out topicRead
	partitions, err := topicPartitions(ctx, tr.brokers, tr.dialer, topic)
	if err != nil {
		return out, err
	}
	client := &kafka.Client{Addr: kafka.TCP(tr.brokers...), Timeout: 10 * time.Second,
		Transport: &kafka.Transport{TLS: tr.dialer.TLS, SASL: tr.dialer.SASLMechanism}}
	var mu sync.Mutex // out and take
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(tr.parallel, 1))
	for _, p := range partitions {
		if tr.only != nil && !tr.only[p.ID] {
			continue
		}
		g.Go(func() error {
			return tr.readOne(gctx, client, topic, p.ID, from, &mu, &out, take)
		})
	}
	return out, g.Wait()
}

// readOne is read of one partition; mu guards out and take.
func (tr topicReader) readOne(ctx context.Context, client *kafka.Client, topic string, partition int, from time.Time,
	mu *sync.Mutex, out *topicRead, take func(schemas.Event) error) error {
	first, last, start, err := tr.offsets(ctx, client, topic, partition, from)
	if err != nil {
		return err
	}
	if first > 0 && first < last { // retention deleted records: when was the oldest left produced?
		t, err := tr.produceTime(ctx, topic, partition, first)
		if err != nil {
			return err
		}
		mu.Lock()
		if t.After(out.floor) {
			out.floor = t
		}
		mu.Unlock()
	}
	if start >= last {
		return nil
	}
	return tr.readPartition(ctx, topic, partition, start, last, func(m kafka.Message) {
		e, err := publisher.Decode(m)
		mu.Lock()
		defer mu.Unlock()
		out.records++
		if err == nil {
			err = take(e)
		}
		if err != nil {
			if out.bad == 0 {
				out.badWhat = fmt.Errorf("%s[%d]@%d: %w", topic, m.Partition, m.Offset, err)
			}
			out.bad++
		}
	})
}

// offsets are a partition's first offset, its end (the offset the next
// record will get), and where a read from from starts.
func (tr topicReader) offsets(ctx context.Context, client *kafka.Client, topic string, partition int, from time.Time) (first, last, start int64, err error) {
	ask := func(req kafka.OffsetRequest) (kafka.PartitionOffsets, error) {
		return askOffsets(ctx, client, topic, partition, req)
	}
	po, err := ask(kafka.FirstOffsetOf(partition))
	if err != nil {
		return 0, 0, 0, err
	}
	first = po.FirstOffset
	if po, err = ask(kafka.LastOffsetOf(partition)); err != nil {
		return 0, 0, 0, err
	}
	last, start = po.LastOffset, first
	if !from.IsZero() {
		if po, err = ask(kafka.TimeOffsetOf(partition, from.Add(-readMargin))); err != nil {
			return 0, 0, 0, err
		}
		start = last // no record produced since: nothing to read
		for off := range po.Offsets {
			if off >= 0 {
				start = max(off, first)
			}
		}
	}
	return first, last, start, nil
}

// askOffsets asks for one offset of one partition, again for up to about
// 10 s while Kafka calls the failure temporary (a leader being elected or
// moving: a topic just created, a broker restarting).
func askOffsets(ctx context.Context, client *kafka.Client, topic string, partition int, req kafka.OffsetRequest) (kafka.PartitionOffsets, error) {
	po, err := listOffsets(ctx, client, topic, partition, req)
	for wait := 100 * time.Millisecond; temporary(err) && wait < 10*time.Second; wait *= 2 {
		select {
		case <-ctx.Done():
			return po, err
		case <-time.After(wait):
		}
		po, err = listOffsets(ctx, client, topic, partition, req)
	}
	return po, err
}

// temporary reports whether Kafka called err temporary.
func temporary(err error) bool {
	var kerr kafka.Error
	return errors.As(err, &kerr) && kerr.Temporary()
}

// listOffsets asks once for one offset of one partition.
func listOffsets(ctx context.Context, client *kafka.Client, topic string, partition int, req kafka.OffsetRequest) (kafka.PartitionOffsets, error) {
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {req}}})
	if err != nil {
		return kafka.PartitionOffsets{}, fmt.Errorf("offsets of %s[%d]: %w", topic, partition, err)
	}
	for _, po := range res.Topics[topic] {
		if po.Partition == partition {
			if po.Error != nil {
				return po, fmt.Errorf("offsets of %s[%d]: %w", topic, partition, po.Error)
			}
			return po, nil
		}
	}
	return kafka.PartitionOffsets{}, fmt.Errorf("offsets of %s[%d]: no answer", topic, partition)
}

// produceTime is the timestamp of the record at offset.
func (tr topicReader) produceTime(ctx context.Context, topic string, partition int, offset int64) (time.Time, error) {
	var t time.Time
	err := tr.readPartition(ctx, topic, partition, offset, offset+1, func(m kafka.Message) { t = m.Time })
	return t, err
}

// readPartition hands the records at offsets [start, end) to take.
func (tr topicReader) readPartition(ctx context.Context, topic string, partition int, start, end int64, take func(kafka.Message)) error {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: tr.brokers, Topic: topic, Partition: partition, Dialer: tr.dialer,
		MaxWait: 500 * time.Millisecond, MaxBytes: 10 << 20})
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		return fmt.Errorf("read %s[%d] from %d: %w", topic, partition, start, err)
	}
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if errors.Is(err, ctx.Err()) {
				return err
			}
			return fmt.Errorf("read %s[%d] at %d: %w", topic, partition, r.Offset(), err)
		}
		take(m)
		if m.Offset >= end-1 {
			return nil
		}
	}
}
