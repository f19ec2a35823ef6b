package publisher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/callpub/callpub/schemas"
)

// Signals on the state topic (Config.StateTopic): requests to whichever
// replica owns a stream, and their answers, under keys that are never
// stream keys (schemas.SignalKey, schemas.ReplaySignal). PublishSignal and
// WriteSignal write one; TailSignals follows the topic from its end and
// hands each new one over. Like state.go, this file only moves bytes.

const (
	// signalFetchWait is how long the broker holds a tail's fetch that finds
	// nothing new, and so about the most a new signal waits before it is
	// handed over. It also bounds how long a tail takes to see ctx end.
	signalFetchWait = 500 * time.Millisecond
	// A tail retries a transient failure after signalRetryMin, doubling up to
	// signalRetryMax while the failures go on.
	signalRetryMin = 100 * time.Millisecond
	signalRetryMax = 5 * time.Second
)

// PublishSignal writes value, a schemas.EncodeSignal signal (nil: a
// tombstone, after which compaction forgets the key), to the state topic
// under key, which must be a signal key (schemas.IsSignalKey: "replay/<id>"
// or "replay-done/<id>"; a stream key is refused, nothing is sent). It
// writes through the same writer, with the same guarantees, as
// PublishState: it returns nil only once every in-sync replica has the
// record (acks=all), and retries as kafka-go retries and no more.
//
// Errors: ErrNoStateTopic when the changelog is off; ErrTooLarge when the
// record would exceed MaxMessageBytes; ErrClosed after Close; a *TopicError
// when the topic does not exist. If ctx ends first the outcome is unknown
// (the record may still be written) and errors.Is(err, ctx.Err()) holds.
func (p *Publisher) PublishSignal(ctx context.Context, key string, value []byte) error {
	if p.cfg.StateTopic == "" {
		return ErrNoStateTopic
	}
	if !schemas.IsSignalKey(key) {
		return fmt.Errorf("publish signal: key %q is not a signal key (replay/<id> or replay-done/<id>)", key)
	}
	return p.writeStateRecord(ctx, "publish signal "+key, key, value)
}

// WriteSignal is PublishSignal for a program that publishes nothing else
// (`callpub replay`): it builds a publisher of cfg (New connects to nothing
// and needs neither a logger nor a registry), writes the one record and
// closes the publisher, with the errors of New, PublishSignal and Close.
func WriteSignal(ctx context.Context, cfg Config, key string, value []byte) (err error) {
	p, err := New(cfg, nil, nil)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, p.Close()) }()
	return p.PublishSignal(ctx, key, value)
}

// writeStateRecord writes one record to the state topic (PublishState's and
// PublishSignal's) and classifies the outcome; what ("publish signal
// replay/x") starts its errors.
func (p *Publisher) writeStateRecord(ctx context.Context, what, key string, value []byte) error {
	topic := p.cfg.StateTopic
	if n := len(key) + len(value) + recordFraming; n > p.cfg.messageBytes() {
		return fmt.Errorf("%s: a record of %d bytes with its framing, the topic takes %d: %w",
			what, n, p.cfg.messageBytes(), ErrTooLarge)
	}
	if p.closed.Load() {
		return fmt.Errorf("%s: %w", what, ErrClosed)
	}
	start := time.Now()
	err := p.w.WriteMessages(ctx, kafka.Message{Topic: topic, Key: []byte(key), Value: value})
	p.m.writeDuration.Observe(time.Since(start).Seconds())
	if err == nil {
		return nil
	}
	p.m.writeErrors.WithLabelValues(topic).Inc()
	var werrs kafka.WriteErrors
	switch {
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return fmt.Errorf("%s to %q: outcome unknown: %w", what, topic, err)
	case errors.Is(err, errWriterClosed):
		return fmt.Errorf("%s: %w", what, ErrClosed)
	case errors.As(err, &werrs) && len(werrs) == 1 && werrs[0] != nil:
		err = werrs[0]
	}
	return fmt.Errorf("%s to %q: %w", what, topic, p.topicError(topic, err))
}

// TailSignals follows the state topic of cfg (with cfg's TLS and SASL) from
// the end each partition has when TailSignals starts: it hands take every
// record written after that whose key is a signal key (schemas.IsSignalKey)
// and whose value is not nil; stream records and tombstones are skipped. A
// new record reaches take within about signalFetchWait (500 ms). Records
// come partition by partition in offset order (records of different
// partitions in no particular order); take is never called concurrently,
// and value is a fresh slice that take may keep. Signals written before
// TailSignals starts, or while it is not running, are never handed over.
//
// It runs until ctx ends, and then returns nil. take's error ends it and
// is returned wrapped: take should return one only when it wants the tail
// to stop, not for a signal it cannot decode. Once started, transient Kafka
// errors (a lost connection, a timeout, a moving leader, a temporary
// kafka.Error) are retried, with a pause that grows to signalRetryMax, for
// as long as they last, and nothing reports them; any other error ends it,
// wrapped. At the start, looking the topic up, transient errors are retried
// for up to cfg.WriteTimeout only, so that brokers that cannot be reached
// are reported rather than waited for; a missing topic is a *TopicError at
// once. cfg is validated as New validates it; ErrNoStateTopic when
// StateTopic is "". The partitions are those the topic has at the start.
//
// It reads each partition in a goroutine of its own, all of which have
// ended when it returns.
func TailSignals(ctx context.Context, cfg Config, take func(key string, value []byte) error) error {
	return tailSignals(ctx, cfg, nil, take)
}

// tailSignals is TailSignals calling started, when not nil, once it has
// the partitions' ends: a record acknowledged after that is handed over.
func tailSignals(ctx context.Context, cfg Config, started func(), take func(key string, value []byte) error) error {
	client, done, err := stateClient(cfg, signalFetchWait)
	if err != nil {
		return err
	}
	defer done()
	spans, err := stateStart(ctx, client, cfg)
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tail signals: %w", err)
	}
	if started != nil {
		started()
	}
	g, gctx := errgroup.WithContext(ctx)
	st := &serialTake{ctx: gctx, take: take}
	for _, s := range spans {
		g.Go(func() error { return tailPartition(gctx, client, s, st) })
	}
	return g.Wait()
}

// stateClient is a client for the state topic of cfg, and the function
// that closes its connections. Its timeout leaves room for fetches the
// broker holds up to wait.
func stateClient(cfg Config, wait time.Duration) (*kafka.Client, func(), error) {
	if cfg.StateTopic == "" {
		return nil, nil, ErrNoStateTopic
	}
	if err := cfg.validate(); err != nil {
		return nil, nil, fmt.Errorf("kafka config: %w", err)
	}
	transport, err := cfg.transport()
	if err != nil {
		return nil, nil, fmt.Errorf("kafka config: %w", err)
	}
	transport.MetadataTopics = []string{cfg.StateTopic}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.WriteTimeout + wait, Transport: transport}
	return client, transport.CloseIdleConnections, nil
}

// stateStart is stateSpans of the state topic (ReadState's start, and
// TailSignals'), trying again for up to cfg.WriteTimeout a failure that may
// pass (a topic whose leaders are still being elected or move, a lost
// connection); a missing topic, or a broker that says no, is not.
func stateStart(ctx context.Context, client *kafka.Client, cfg Config) ([]partitionSpan, error) {
	deadline := time.Now().Add(cfg.WriteTimeout)
	for retry := signalRetryMin; ; retry = min(2*retry, signalRetryMax) {
		spans, err := stateSpans(ctx, client, cfg, cfg.StateTopic)
		if err == nil || ctx.Err() != nil || !startTransient(err) || time.Now().Add(retry).After(deadline) {
			return spans, err
		}
		if !pause(ctx, retry) {
			return nil, ctx.Err()
		}
	}
}

// tailPartition hands st the records of s's partition from s.end on, until
// ctx ends (nil), st's take fails, or Kafka fails for good.
func tailPartition(ctx context.Context, client *kafka.Client, s partitionSpan, st *serialTake) error {
	next := s.end
	s.end = math.MaxInt64 // no end: takeRecords hands over whatever a fetch brings
	for retry := signalRetryMin; ; {
		res, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: s.topic, Partition: s.partition, Offset: next,
			MinBytes: 1, MaxBytes: s.fetchBytes, MaxWait: signalFetchWait})
		if err == nil {
			err = res.Error
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && !transient(err):
			return fmt.Errorf("tail signals: read %s[%d] at %d: %w", s.topic, s.partition, next, err)
		case err != nil:
			if !pause(ctx, retry) {
				return nil
			}
			retry = min(2*retry, signalRetryMax)
			continue
		}
		retry = signalRetryMin
		before, n := next, 0
		if err := takeRecords(res.Records, s, &next, st.call, &n); err != nil {
			return fmt.Errorf("tail signals: %w", err)
		}
		// Nothing at or after next, though the partition holds records
		// there: compaction emptied the rest of a batch, which the broker
		// sends at once instead of holding the fetch. Wait as a held fetch
		// would, rather than ask again and again.
		if next == before && res.HighWatermark > next && !pause(ctx, signalFetchWait) {
			return nil
		}
	}
}

// serialTake hands signal records to take one at a time, and none once
// take has failed or ctx has ended.
type serialTake struct {
	ctx    context.Context
	take   func(key string, value []byte) error
	mu     sync.Mutex
	failed bool
}

// call is takeRecords' take: it skips stream records and tombstones.
func (s *serialTake) call(key string, value []byte, _ int64, _ int) error {
	if value == nil || !schemas.IsSignalKey(key) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed || s.ctx.Err() != nil {
		return nil
	}
	if err := s.take(key, value); err != nil {
		s.failed = true
		return err
	}
	return nil
}

// transient reports whether a fetch that failed with err may succeed when
// asked again: a kafka.Error that Kafka calls temporary (a moving leader, an
// unknown topic or partition, a timeout), or a network error (a refused or
// lost connection, a timeout, including the client's own). A kafka.Error is
// a net.Error too, so it is looked at first.
func transient(err error) bool {
	var kerr kafka.Error
	if errors.As(err, &kerr) {
		return kerr.Temporary()
	}
	var nerr net.Error
	return errors.As(err, &nerr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.ErrClosedPipe)
}

// startTransient is transient for stateStart's errors: a *TopicError may
// pass unless the topic is missing (a partition without a leader yet).
func startTransient(err error) bool {
	var te *TopicError
	if errors.As(err, &te) {
		return !te.Missing
	}
	return transient(err)
}

// pause waits d, or less if ctx ends first; it reports whether ctx is
// still going.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
