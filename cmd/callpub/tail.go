package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/sethvargo/go-envconfig"
	"golang.org/x/sync/errgroup"

	"github.com/callpub/callpub/publisher"
	"github.com/callpub/callpub/schemas"
)

const tailUsage = `Usage: callpub tail [-from beginning|end|RFC3339] [-n N] [-raw] [-control]

Reads the topic (CALLPUB_KAFKA_TOPIC, or CALLPUB_KAFKA_CONTROL_TOPIC with -control)
from every partition and prints each event as one line, whichever CloudEvents
content mode it is in. Uses CALLPUB_KAFKA_BROKERS and the same TLS/SASL settings
as the service; commits no consumer offsets.

`

// tail reads the events topic (or the control topic) from every partition
// and prints each event as one line, until ctx ends or -n events are printed.
func tail(ctx context.Context, args []string, env envconfig.Lookuper, out io.Writer) error {
	f, err := parseTailFlags(args, out)
	if err != nil {
		return err
	}
	if f == nil {
		return nil // -help
	}
	kc, topic, err := tailConfig(ctx, env, f.control)
	if err != nil {
		return err
	}
	dialer, err := kc.Dialer()
	if err != nil {
		return configError(err)
	}
	partitions, err := topicPartitions(ctx, kc.Brokers, dialer, topic)
	if err != nil {
		return fmt.Errorf("tail: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr := &tailPrinter{out: out, limit: f.limit, stop: cancel}
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range partitions {
		rc := kafka.ReaderConfig{Brokers: kc.Brokers, Topic: topic, Partition: p.ID,
			Dialer: dialer, MaxWait: 500 * time.Millisecond}
		g.Go(func() error { return tailPartition(gctx, rc, f, pr) })
	}
	return g.Wait()
}

// tailFlags are tail's command-line settings.
type tailFlags struct {
	from    string    // "beginning", "end" or an RFC 3339 time
	start   time.Time // -from as a time; zero for beginning or end
	limit   int       // stop after this many events; 0: no limit
	raw     bool
	control bool
}

// parseTailFlags parses and checks tail's flags. It returns nil flags and a
// nil error when help was asked for (the usage is then printed).
func parseTailFlags(args []string, out io.Writer) (*tailFlags, error) {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { fmt.Fprint(out, tailUsage); fs.PrintDefaults() }
	from := fs.String("from", "end", "where to start: beginning, end, or an RFC 3339 time")
	limit := fs.Int("n", 0, "stop after N events (0: until Ctrl-C)")
	raw := fs.Bool("raw", false, "print each record as it is on the topic: a structured event's JSON; a binary record's headers and value as one JSON object")
	control := fs.Bool("control", false, "read the control topic (gaps, sealed days, heartbeats)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil
		}
		return nil, usagef("tail: %v", err)
	}
	f := &tailFlags{from: *from, limit: *limit, raw: *raw, control: *control}
	switch *from {
	case "beginning", "end":
	default:
		t, err := time.Parse(time.RFC3339, *from)
		if err != nil {
			return nil, usagef("tail: -from %q is not beginning, end or an RFC 3339 time", *from)
		}
		f.start = t
	}
	return f, nil
}

// tailConfig loads the Kafka settings from env (the CALLPUB_KAFKA_ variables,
// NAME_FILE included) and picks the topic to read: the events topic, or the
// control topic when control is set.
func tailConfig(ctx context.Context, env envconfig.Lookuper, control bool) (publisher.Config, string, error) {
	var cfg struct {
		Kafka publisher.Config `env:", prefix=KAFKA_"`
	}
	if err := loadReadConfig(ctx, env, &cfg); err != nil {
		return publisher.Config{}, "", err
	}
	if len(cfg.Kafka.Brokers) == 0 {
		return publisher.Config{}, "", configError(errors.New("CALLPUB_KAFKA_BROKERS: missing required value"))
	}
	topic := cfg.Kafka.Topic
	if control {
		if topic = cfg.Kafka.ControlTopic; topic == "" {
			return publisher.Config{}, "", configError(errors.New("CALLPUB_KAFKA_CONTROL_TOPIC: not set, so there is no control topic to read"))
		}
	}
	return cfg.Kafka, topic, nil
}

// loadReadConfig fills target, a struct of the few variables a reader of
// the topics needs (tail, verify), from env: CALLPUB_ plus the names in its
// tags, NAME_FILE included. Nothing else is required, so a reader needs no
// CC-CMS credentials.
func loadReadConfig(ctx context.Context, env envconfig.Lookuper, target any) error {
	files := &fileLookuper{env: env}
	err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: target, Lookuper: envconfig.PrefixLookuper("CALLPUB_", files)})
	if err := errors.Join(files.err, err); err != nil {
		return configError(err)
	}
	return nil
}

// topicPartitions asks brokers for topic's partitions; a missing topic is an
// error.
func topicPartitions(ctx context.Context, brokers []string, dialer *kafka.Dialer, topic string) ([]kafka.Partition, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second,
		Transport: &kafka.Transport{TLS: dialer.TLS, SASL: dialer.SASLMechanism}}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return nil, fmt.Errorf("topic %s: %v", topic, md.Topics)
	}
	return md.Topics[0].Partitions, nil
}

// tailPartition reads the partition rc names from where f.from says and
// hands each event's line to pr, until ctx ends (a nil error) or a read fails.
func tailPartition(ctx context.Context, rc kafka.ReaderConfig, f *tailFlags, pr *tailPrinter) error {
	r := kafka.NewReader(rc)
	defer r.Close()
	if err := seekStart(ctx, r, f); err != nil {
		if ctx.Err() != nil {
			return nil // -n reached or stopped by a signal while positioning
		}
		return fmt.Errorf("tail: %s[%d]: %w", rc.Topic, rc.Partition, err)
	}
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tail: read %s[%d]: %w", rc.Topic, rc.Partition, err)
		}
		pr.print(eventLine(m, f.raw))
	}
}

// seekStart positions r at the -from time, or at the partition's first or
// last offset.
func seekStart(ctx context.Context, r *kafka.Reader, f *tailFlags) error {
	switch {
	case !f.start.IsZero():
		return r.SetOffsetAt(ctx, f.start)
	case f.from == "beginning":
		return r.SetOffset(kafka.FirstOffset)
	default:
		return r.SetOffset(kafka.LastOffset)
	}
}

// tailPrinter prints the lines of every partition one at a time, and stops
// the tail once limit lines are printed (0: no limit).
type tailPrinter struct {
	mu      sync.Mutex
	out     io.Writer
	limit   int
	printed int
	stop    context.CancelFunc
}

// print prints line unless the limit is already reached.
func (p *tailPrinter) print(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limit == 0 || p.printed < p.limit {
		fmt.Fprintln(p.out, line)
		p.printed++
	}
	if p.limit > 0 && p.printed >= p.limit {
		p.stop()
	}
}

// eventLine renders one record, in either CloudEvents content mode: a call
// line, a control line, or with raw the record as it is on the topic.
func eventLine(m kafka.Message, raw bool) string {
	if raw {
		return rawLine(m)
	}
	e, err := publisher.Decode(m)
	if err != nil {
		return fmt.Sprintf("(not a CloudEvent: %v) %q", err, m.Value)
	}
	if e.Type != schemas.TypeCallCompleted && e.Type != schemas.TypeCallUnended {
		return controlLine(e)
	}
	var d schemas.CallCompletedData
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return fmt.Sprintf("(undecodable data of %s: %v)", e.ID, err)
	}
	return callLine(d)
}

// rawLine is a record as it is on the topic: a structured record's value
// (the CloudEvent's JSON); for any other record, its headers and value as
// one JSON object, {"headers":[{"key":"ce_id","value":"…"},…],"value":…}
// (headers in order), the value as JSON
// when it is JSON (a binary record's data) and as a string otherwise.
func rawLine(m kafka.Message) string {
	for _, h := range m.Headers {
		if strings.EqualFold(h.Key, schemas.HeaderContentType) && strings.HasPrefix(string(h.Value), schemas.ContentType) {
			return string(m.Value)
		}
	}
	type header struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	var r struct {
		Headers []header `json:"headers"`
		Value   any      `json:"value"`
	}
	r.Headers = []header{}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, header{h.Key, string(h.Value)})
	}
	r.Value = string(m.Value)
	if json.Valid(m.Value) {
		r.Value = json.RawMessage(m.Value)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Sprintf("(unprintable record: %v)", err)
	}
	return string(b)
}
