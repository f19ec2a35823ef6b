// Package publisher writes callpub's events to Kafka with segmentio/kafka-go.
//
// Its job: turn schemas.Event values into Kafka records (CloudEvents by the
// Kafka protocol binding, structured or binary as Config.EventMode says,
// keyed by VDN) and return only when Kafka has acknowledged every one of
// them, or say which were not. Decode reads such records back.
//
// Invariants:
//
//   - Publish returns nil only when every event was acknowledged by all
//     in-sync replicas (acks=all). Any other outcome is a *PublishError, and
//     the caller must not mark any of the events seen.
//   - The record key is the event's partitionkey, the VDN's decimal string,
//     and the partitioner is murmur2, so a VDN's events land on the partition a
//     Java producer would choose, in the order of Publish calls (one batch per
//     stream in flight; kafka-go writes a partition's batches one at a time).
//   - Delivery is at least once. kafka-go has no idempotent producer, so a
//     retried batch can land twice; deterministic event ids make that safe.
//   - An event larger than the topic accepts (Event.Size above
//     MaxMessageBytes) fails its batch before anything is sent; callers
//     check sizes first, so a large event never costs its neighbours.
//   - Topics are never created: auto-creation is off and CheckTopic looks
//     topics up with a Metadata request that cannot create them.
//   - No kafka-go default is relied on silently: every Writer and Transport
//     field is set in New with the reason.
//   - The SASL password is a Secret and appears in no log line and no error.
package publisher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/callpub/callpub/schemas"
)

// Publisher writes events to the call topic and the optional control and
// dead-letter topics through one kafka.Writer (messages carry their topic).
// It is safe for concurrent use.
type Publisher struct {
	cfg       Config
	log       *slog.Logger
	w         *kafka.Writer
	transport *kafka.Transport
	m         *metrics
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Settings that are not worth a variable, spelled out instead of kafka-go's
// defaults.
const (
	// maxAttempts per batch. kafka-go's default is 10; three attempts ride out
	// a leader election, and anything longer is the caller's retry (which
	// re-reads the window and keeps the cursor safe).
	maxAttempts     = 3
	writeBackoffMin = 100 * time.Millisecond // kafka-go default, spelled out
	writeBackoffMax = time.Second            // kafka-go default, spelled out
	// batchSize caps records per partition batch: kafka-go's default, spelled
	// out. kafka-go allocates room for batchSize messages (152 bytes each)
	// for every batch it opens, whatever goes into it, and most batches hold
	// a few events of one stream: at 1000, those allocations were 38 % of
	// everything `callpub run` allocated at 10,000 streams, and backfills
	// were no faster (BenchmarkBackfillLarge: 13,400 events/s at 100, 10,900
	// at 1000). A full batch is queued at once, the next one fills behind it.
	batchSize = 100
	// batchOverhead is the header of a Kafka record batch (v2): the broker
	// checks max.message.bytes against the whole batch, header included.
	batchOverhead = 61
	// recordFraming is what a batch of one event adds to the event's value
	// besides its ce_ headers: the batch header (61 bytes), the record's own
	// framing (recordFixed, 32), the key (at most 4) and the content-type
	// header (at most 45): 142, rounded up to leave room for a compression
	// frame. Compressed values are smaller in practice: JSON shrinks
	// several times.
	recordFraming = 256
	// metadataTTL is how long topic metadata is cached (kafka-go default 6 s).
	metadataTTL = 6 * time.Second
	// idleTimeout closes unused broker connections (kafka-go default 30 s).
	idleTimeout = 30 * time.Second
	clientID    = "callpub"
)

// New validates cfg and builds the writer. It connects to nothing: the first
// Publish or CheckTopic does. A nil logger discards; a nil reg registers the
// metrics nowhere.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Publisher, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("kafka config: %w", err)
	}
	transport, err := cfg.transport()
	if err != nil {
		return nil, fmt.Errorf("kafka config: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	if cfg.SASLMechanism == "PLAIN" && !cfg.TLS {
		logger.Warn("kafka SASL PLAIN without TLS sends the password in clear text", "component", "kafka")
	}
	w := &kafka.Writer{
		Addr: kafka.TCP(cfg.Brokers...),
		// No fixed Topic: every message names its topic, so one writer (one
		// connection pool, one metadata cache) serves every topic.
		Topic: "",
		// The Java client's partitioner: any producer hashing the key "25" with
		// murmur2 picks the same partition. The zero value is round-robin,
		// which ignores keys. Consistent only matters for nil keys, which
		// message() never sends.
		Balancer:        &kafka.Murmur2Balancer{Consistent: false},
		MaxAttempts:     maxAttempts,
		WriteBackoffMin: writeBackoffMin,
		WriteBackoffMax: writeBackoffMax,
		BatchSize:       batchSize,
		// A batch, with its header, stays within the topics' limit; kafka-go
		// refuses a single message above it (MaxMessageBytes keeps them below).
		BatchBytes:   int64(cfg.messageBytes() - batchOverhead),
		BatchTimeout: cfg.BatchTimeout, // the zero value means 1 s: each synchronous write would wait
		ReadTimeout:  cfg.WriteTimeout, // metadata lookups of the writer
		WriteTimeout: cfg.WriteTimeout,
		RequiredAcks: kafka.RequireAll, // the zero value is RequireNone: fire and forget
		// Synchronous: WriteMessages returns the outcome of every message.
		// Async has no backpressure and reports errors only to Completion.
		Async:       false,
		Completion:  nil,
		Compression: compressions[cfg.Compression],
		// kafka-go's chatty Logger stays off; its errors go to slog.
		Logger: nil,
		// Warn, not Error: kafka-go reports every failed attempt here, also
		// those its own retries then fix (a leader moving, say). A write that
		// finally fails comes back from Publish and is logged by the poller.
		ErrorLogger: kafka.LoggerFunc(func(f string, a ...any) {
			logger.Warn(fmt.Sprintf(f, a...), "component", "kafka")
		}),
		Transport: transport,
		// Off is the zero value; spelled out because a mistyped topic must
		// fail the write, not create a topic with broker defaults.
		AllowAutoTopicCreation: false,
	}
	return &Publisher{cfg: cfg, log: logger, w: w, transport: transport, m: m}, nil
}

// transport builds the connection settings shared by the writer and
// CheckTopic: TLS, SASL, timeouts and the metadata cache.
func (c Config) transport() (*kafka.Transport, error) {
	tlsCfg, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	mech, err := c.saslMechanism()
	if err != nil {
		return nil, err
	}
	return &kafka.Transport{
		Dial:        (&net.Dialer{Timeout: c.WriteTimeout}).DialContext,
		DialTimeout: c.WriteTimeout, // kafka-go default 5 s
		IdleTimeout: idleTimeout,
		MetadataTTL: metadataTTL,
		// Cache metadata of our topics only, not of every topic in the cluster.
		MetadataTopics: c.topics(),
		ClientID:       clientID,
		TLS:            tlsCfg, // nil: plaintext
		SASL:           mech,   // nil: no SASL
		Context:        nil,    // background; requests carry their own ctx
		Resolver:       nil,    // brokers' advertised addresses as given
	}, nil
}

// Publish writes events to the call topic and returns nil only once Kafka
// has acknowledged every one of them (acks=all). Otherwise it returns a
// *PublishError naming the events that were not acknowledged.
//
// If ctx ends before Kafka answers, the outcome is unknown: some or all of
// the events may still be written after Publish returns. The error then has
// Unknown set and errors.Is(err, ctx.Err()) holds. The caller must not mark
// anything seen, and must expect duplicates when it publishes again.
//
// Events of one VDN keep the order of the slice and of successive calls, as
// long as a caller does not publish two batches of one stream concurrently.
func (p *Publisher) Publish(ctx context.Context, events ...schemas.Event) error {
	return p.publish(ctx, p.cfg.Topic, events)
}

// PublishControl writes control records (schemas.Encoder Gap, DaySealed,
// Heartbeat) to the control topic, with the same guarantees as Publish. It is
// a no-op returning nil when no control topic is configured.
func (p *Publisher) PublishControl(ctx context.Context, events ...schemas.Event) error {
	if p.cfg.ControlTopic == "" {
		return nil
	}
	return p.publish(ctx, p.cfg.ControlTopic, events)
}

// PublishDLQ writes quarantine records (schemas.Encoder Quarantined) to the
// dead-letter topic, with the same guarantees as Publish. It is a no-op
// returning nil when no dead-letter topic is configured.
func (p *Publisher) PublishDLQ(ctx context.Context, events ...schemas.Event) error {
	if p.cfg.DLQTopic == "" {
		return nil
	}
	return p.publish(ctx, p.cfg.DLQTopic, events)
}

// MaxMessageBytes is the largest event, in schemas.Event.Size bytes, that
// Publish, PublishControl and PublishDLQ accept: the configured
// MaxMessageBytes less the room the record's key, headers and batch framing
// take. In structured mode that includes schemas.StructuredHeaderRoom for
// the ce_ headers; a binary record is no larger than the event's Size, as
// its headers take no more than the attributes do in JSON. Check events
// against it before publishing: a larger one fails its whole batch, before
// anything is sent.
func (p *Publisher) MaxMessageBytes() int {
	n := p.cfg.messageBytes() - recordFraming
	if p.cfg.mode() == schemas.Structured {
		n -= schemas.StructuredHeaderRoom
	}
	return n
}

// maxRecordBytes is the most one record may take in a batch that the
// topic's max.message.bytes still accepts.
func (p *Publisher) maxRecordBytes() int { return p.cfg.messageBytes() - batchOverhead }

func (p *Publisher) publish(ctx context.Context, topic string, events []schemas.Event) error {
	if len(events) == 0 {
		return nil
	}
	fail := func(err error, failed []string, unknown bool) error {
		p.m.writeErrors.WithLabelValues(topic).Inc()
		return &PublishError{Topic: topic, Events: len(events), Failed: failed, Unknown: unknown, Err: err}
	}
	if p.closed.Load() {
		return fail(ErrClosed, ids(events), false)
	}
	msgs := make([]kafka.Message, len(events))
	for i, e := range events {
		m, err := message(topic, e, p.cfg.mode(), p.MaxMessageBytes(), p.maxRecordBytes())
		if err != nil {
			return fail(err, ids(events), false) // nothing was sent
		}
		msgs[i] = m
	}
	start := time.Now()
	err := p.w.WriteMessages(ctx, msgs...)
	p.m.writeDuration.Observe(time.Since(start).Seconds())
	if err == nil {
		p.countPublished(topic, events, nil)
		return nil
	}
	var werrs kafka.WriteErrors
	switch {
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return fail(err, ids(events), true)
	case errors.As(err, &werrs) && len(werrs) == len(events):
		var failed []string
		var causes []error
		seen := map[string]bool{}
		for i, e := range werrs {
			if e == nil {
				continue
			}
			failed = append(failed, events[i].ID)
			if s := e.Error(); !seen[s] {
				seen[s] = true
				causes = append(causes, p.topicError(topic, e))
			}
		}
		p.countPublished(topic, events, werrs)
		return fail(errors.Join(causes...), failed, false)
	case errors.Is(err, errWriterClosed):
		return fail(ErrClosed, ids(events), false)
	default: // before any batch was sent: metadata, a missing topic, a closed writer
		return fail(p.topicError(topic, err), ids(events), false)
	}
}

// errWriterClosed is what kafka.Writer returns after Close.
var errWriterClosed = io.ErrClosedPipe

// topicError turns Kafka's "unknown topic" into a *TopicError that tells the
// operator what to do.
func (p *Publisher) topicError(topic string, err error) error {
	if errors.Is(err, kafka.UnknownTopicOrPartition) {
		return &TopicError{Topic: topic, Brokers: p.cfg.Brokers, Missing: true, Err: err}
	}
	return err
}

func (p *Publisher) countPublished(topic string, events []schemas.Event, werrs kafka.WriteErrors) {
	for i, e := range events {
		if werrs == nil || werrs[i] == nil {
			p.m.published.WithLabelValues(topic, e.Type).Inc()
		}
	}
}

func ids(events []schemas.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// Close waits for writes in flight to finish (their Publish calls return
// their outcome), then closes the broker connections. Publish after Close
// returns a *PublishError wrapping ErrClosed. Close is safe to call twice.
func (p *Publisher) Close() error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		err := p.w.Close()
		p.transport.CloseIdleConnections()
		if err != nil {
			p.closeErr = fmt.Errorf("close kafka writer: %w", err)
		}
	})
	return p.closeErr
}
