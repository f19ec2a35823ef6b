package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
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
from every partition and prints each event as one line. Uses CALLPUB_KAFKA_BROKERS and
the same TLS/SASL settings as the service; commits no consumer offsets.

`

func tail(ctx context.Context, args []string, env envconfig.Lookuper, out io.Writer) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { fmt.Fprint(out, tailUsage); fs.PrintDefaults() }
	from := fs.String("from", "end", "where to start: beginning, end, or an RFC 3339 time")
	limit := fs.Int("n", 0, "stop after N events (0: until Ctrl-C)")
	raw := fs.Bool("raw", false, "print each event's JSON as it is on the topic")
	control := fs.Bool("control", false, "read the control topic (gaps, sealed days, heartbeats)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usagef("tail: %v", err)
	}
	var start time.Time
	switch *from {
	case "beginning", "end":
	default:
		t, err := time.Parse(time.RFC3339, *from)
		if err != nil {
			return usagef("tail: -from %q is not beginning, end or an RFC 3339 time", *from)
		}
		start = t
	}
	var cfg struct {
		Kafka publisher.Config `env:", prefix=KAFKA_"`
	}
	files := &fileLookuper{env: env}
	err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &cfg, Lookuper: envconfig.PrefixLookuper("CALLPUB_", files)})
	if err := errors.Join(files.err, err); err != nil {
		return configError(err)
	}
	if len(cfg.Kafka.Brokers) == 0 {
		return configError(errors.New("CALLPUB_KAFKA_BROKERS: missing required value"))
	}
	topic := cfg.Kafka.Topic
	if *control {
		if topic = cfg.Kafka.ControlTopic; topic == "" {
			return configError(errors.New("CALLPUB_KAFKA_CONTROL_TOPIC: not set, so there is no control topic to read"))
		}
	}
	dialer, err := cfg.Kafka.Dialer()
	if err != nil {
		return configError(err)
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Kafka.Brokers...), Timeout: 10 * time.Second,
		Transport: &kafka.Transport{TLS: dialer.TLS, SASL: dialer.SASLMechanism}}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("tail: metadata of %s: %w", topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return fmt.Errorf("tail: topic %s: %v", topic, md.Topics)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	printed := 0
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range md.Topics[0].Partitions {
		g.Go(func() error {
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Kafka.Brokers, Topic: topic, Partition: p.ID,
				Dialer: dialer, MaxWait: 500 * time.Millisecond})
			defer r.Close()
			var err error
			switch {
			case !start.IsZero():
				err = r.SetOffsetAt(gctx, start)
			case *from == "beginning":
				err = r.SetOffset(kafka.FirstOffset)
			default:
				err = r.SetOffset(kafka.LastOffset)
			}
			if err != nil {
				if gctx.Err() != nil {
					return nil // -n reached or stopped by a signal while positioning
				}
				return fmt.Errorf("tail: %s[%d]: %w", topic, p.ID, err)
			}
			for {
				m, err := r.ReadMessage(gctx)
				if err != nil {
					if gctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("tail: read %s[%d]: %w", topic, p.ID, err)
				}
				line := eventLine(m.Value, *raw)
				mu.Lock()
				if *limit == 0 || printed < *limit {
					fmt.Fprintln(out, line)
					printed++
				}
				if *limit > 0 && printed >= *limit {
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	return g.Wait()
}

// eventLine renders one record's value: a call line, a control line, or the raw JSON.
func eventLine(value []byte, raw bool) string {
	if raw {
		return string(value)
	}
	var e schemas.Event
	if err := json.Unmarshal(value, &e); err != nil {
		return fmt.Sprintf("(not a CloudEvent: %v) %q", err, value)
	}
	if e.Type != schemas.TypeCallCompleted {
		return controlLine(e)
	}
	var d schemas.CallCompletedData
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return fmt.Sprintf("(undecodable data of %s: %v)", e.ID, err)
	}
	return callLine(d)
}
