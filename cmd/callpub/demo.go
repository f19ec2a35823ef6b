package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/sethvargo/go-envconfig"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/publisher"
	"github.com/callpub/callpub/schemas"
)

const demoUsage = `Usage: callpub demo [-vdns N] [-for DURATION] [-verbose]

Starts the CC-CMS simulator (HTTPS, signed requests), Kafka (in-process, unless
CALLPUB_KAFKA_BROKERS names a cluster; the topic is created there if missing) and
the service with demo-friendly settings, and prints every published event as one
line plus a summary every 5 seconds. Ctrl-C stops it cleanly.

`

// demo runs the whole pipeline on this machine.
func demo(ctx context.Context, args []string, env envconfig.Lookuper, out, errOut io.Writer) (err error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() { fmt.Fprint(errOut, demoUsage); fs.PrintDefaults() }
	vdns := fs.Int("vdns", 20, "number of VDNs to simulate and poll (1..5000)")
	runFor := fs.Duration("for", 0, "stop after this long (0: until Ctrl-C)")
	verbose := fs.Bool("verbose", false, "show the service's info logs on stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usagef("demo: %v", err)
	}
	if *vdns < 1 || *vdns > 5000 {
		return usagef("demo: -vdns %d is outside 1..5000", *vdns)
	}
	if *runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *runFor)
		defer cancel()
	}
	tmp, err := os.MkdirTemp("", "callpub-demo-")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(tmp)) }()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: level}))

	// The simulator: busy enough that events show up every second or so.
	sim, err := ccmssim.New(ccmssim.Options{
		AK: "demo-ak", SK: "demo-sk", CCID: 1, VDNs: *vdns, Seed: time.Now().UnixNano(),
		Traffic: ccmssim.Traffic{BusyShare: 0.3, BusyPerHour: 600, QuietPerHour: 12, ListInProgress: true,
			IngestDelayMax: 20 * time.Second, MeanTalk: 90 * time.Second},
	})
	if err != nil {
		return err
	}
	srv, err := ccmssim.StartServer(sim, ccmssim.ServerOptions{TLS: true, CertDir: tmp})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, srv.Close()) }()

	// Kafka: the configured cluster, or kfake in process.
	brokers, _ := env.Lookup("CALLPUB_KAFKA_BROKERS")
	topic, ok := env.Lookup("CALLPUB_KAFKA_TOPIC")
	if !ok || topic == "" {
		topic = "callpub.demo.calls"
	}
	kafkaDesc := "external Kafka at " + brokers
	if brokers == "" {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(12, topic))
		if err != nil {
			return fmt.Errorf("in-process kafka: %w", err)
		}
		defer c.Close()
		brokers = c.ListenAddrs()[0]
		kafkaDesc = "in-process Kafka (kfake) at " + brokers
	}

	vars := map[string]string{
		"CALLPUB_CC_ID": "1", "CALLPUB_VDNS": "1-" + strconv.Itoa(*vdns), "CALLPUB_DIRECTIONS": "in,out",
		"CALLPUB_CCMS_URL": srv.URL, "CALLPUB_CCMS_AK": "demo-ak", "CALLPUB_CCMS_SK": "demo-sk",
		"CALLPUB_CCMS_CA_FILE":  srv.CAFile,
		"CALLPUB_POLL_INTERVAL": "2s", "CALLPUB_POLL_MAX_INTERVAL": "10s", "CALLPUB_LOOKBACK": "2m",
		"CALLPUB_START_AT": "now", "CALLPUB_SWEEP_INTERVAL": "1m", "CALLPUB_SWEEP_LOOKBACK": "5m",
		"CALLPUB_CCMS_RATE": "100", "CALLPUB_CCMS_MAX_IN_FLIGHT": "4",
		"CALLPUB_KAFKA_BROKERS": brokers, "CALLPUB_KAFKA_TOPIC": topic,
		"CALLPUB_STATE_DIR": tmp, "CALLPUB_HTTP_ADDR": "127.0.0.1:0", "CALLPUB_PII": "mask",
		"CALLPUB_LOG_FORMAT": "text",
	}
	for _, k := range []string{"CALLPUB_KAFKA_SASL_MECHANISM", "CALLPUB_KAFKA_USERNAME", "CALLPUB_KAFKA_PASSWORD",
		"CALLPUB_KAFKA_TLS", "CALLPUB_KAFKA_CA_FILE", "CALLPUB_HTTP_ADDR"} {
		if v, ok := env.Lookup(k); ok {
			vars[k] = v
		}
	}
	cfg, err := loadConfig(ctx, envconfig.MapLookuper(vars))
	if err != nil {
		return err
	}
	if !strings.HasPrefix(kafkaDesc, "in-process") {
		if err := ensureTopic(ctx, cfg.Kafka, 12); err != nil {
			return err
		}
	}

	var mu sync.Mutex // serialises lines on out
	var published, updates atomic.Int64
	onPublished := func(events []schemas.Event) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			var d schemas.CallCompletedData
			if err := json.Unmarshal(e.Data, &d); err != nil {
				fmt.Fprintf(out, "(undecodable event %s: %v)\n", e.ID, err)
				continue
			}
			published.Add(1)
			if d.Update {
				updates.Add(1)
			}
			fmt.Fprintln(out, callLine(d))
		}
	}
	fmt.Fprintf(out, "callpub demo: simulator at %s (%d VDNs, both directions), %s, topic %s\n", srv.URL, *vdns, kafkaDesc, topic)
	fmt.Fprintln(out, "callpub demo: starting at now minus 2m of lookback; Ctrl-C stops")

	g, gctx := errgroup.WithContext(ctx)
	var opsAddr atomic.Value
	g.Go(func() error {
		return serve(gctx, cfg, logger, hooks{onPublished: onPublished, onReady: func(addr string) {
			opsAddr.Store(addr)
			mu.Lock()
			fmt.Fprintf(out, "callpub demo: service ready; metrics and status at http://%s/metrics and /status\n", addr)
			mu.Unlock()
		}})
	})
	g.Go(func() error {
		start := time.Now()
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
				mu.Lock()
				fmt.Fprintf(out, "---- %s  published %d events (%d updates), %d signed requests to the simulator ----\n",
					time.Since(start).Round(time.Second), published.Load(), updates.Load(), sim.Requests())
				mu.Unlock()
			}
		}
	})
	err = g.Wait()
	fmt.Fprintf(out, "callpub demo: stopped after publishing %d events\n", published.Load())
	return err
}

// ensureTopic creates the topic on an external cluster if it is missing,
// with the cluster's default replication and the service's TLS and SASL
// settings (the demo only; the service never creates topics).
func ensureTopic(ctx context.Context, kc publisher.Config, partitions int) error {
	d, err := kc.Dialer()
	if err != nil {
		return err
	}
	c := &kafka.Client{Addr: kafka.TCP(kc.Brokers...), Timeout: 10 * time.Second,
		Transport: &kafka.Transport{TLS: d.TLS, SASL: d.SASLMechanism}}
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: kc.Topic, NumPartitions: partitions, ReplicationFactor: -1,
	}}})
	if err == nil {
		err = res.Errors[kc.Topic]
	}
	if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("demo: create topic %s on %s: %w", kc.Topic, strings.Join(kc.Brokers, ","), err)
	}
	return nil
}
