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
	f, err := parseDemoFlags(args, errOut)
	if err != nil {
		return err
	}
	if f == nil {
		return nil // -help
	}
	if f.runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.runFor)
		defer cancel()
	}
	tmp, err := os.MkdirTemp("", "callpub-demo-")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(tmp)) }()
	logger := demoLogger(errOut, f.verbose)

	sim, srv, err := startDemoSim(f.vdns, tmp)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, srv.Close()) }()
	k, err := demoKafka(env)
	if err != nil {
		return err
	}
	if k.cluster != nil {
		defer k.cluster.Close()
	}
	cfg, err := loadConfig(ctx, envconfig.MapLookuper(demoVars(env, f.vdns, srv, k, tmp)))
	if err != nil {
		return err
	}
	if k.cluster == nil {
		if err := ensureTopic(ctx, cfg.Kafka, 12); err != nil {
			return err
		}
	}

	o := &demoOutput{out: out}
	fmt.Fprintf(out, "callpub demo: simulator at %s (%d VDNs, both directions), %s, topic %s\n", srv.URL, f.vdns, k.desc, k.topic)
	fmt.Fprintln(out, "callpub demo: starting at now minus 2m of lookback; Ctrl-C stops")
	err = runDemo(ctx, cfg, logger, sim, o)
	fmt.Fprintf(out, "callpub demo: stopped after publishing %d events\n", o.published.Load())
	return err
}

// demoFlags are the demo's command-line settings.
type demoFlags struct {
	vdns    int
	runFor  time.Duration
	verbose bool
}

// parseDemoFlags parses and checks the demo's flags. It returns nil flags
// and a nil error when help was asked for (the usage is then printed).
func parseDemoFlags(args []string, errOut io.Writer) (*demoFlags, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() { fmt.Fprint(errOut, demoUsage); fs.PrintDefaults() }
	vdns := fs.Int("vdns", 20, "number of VDNs to simulate and poll (1..5000)")
	runFor := fs.Duration("for", 0, "stop after this long (0: until Ctrl-C)")
	verbose := fs.Bool("verbose", false, "show the service's info logs on stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil
		}
		return nil, usagef("demo: %v", err)
	}
	if *vdns < 1 || *vdns > 5000 {
		return nil, usagef("demo: -vdns %d is outside 1..5000", *vdns)
	}
	return &demoFlags{vdns: *vdns, runFor: *runFor, verbose: *verbose}, nil
}

// demoLogger is the service's text logger on errOut: warnings and errors,
// plus info when verbose.
func demoLogger(errOut io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: level}))
}

// startDemoSim starts the CC-CMS simulator for vdns VDNs over HTTPS, with its
// certificate in certDir: busy enough that events show up every second or so.
// The caller closes the server.
func startDemoSim(vdns int, certDir string) (*ccmssim.Sim, *ccmssim.Server, error) {
	sim, err := ccmssim.New(ccmssim.Options{
		AK: "demo-ak", SK: "demo-sk", CCID: 1, VDNs: vdns, Seed: time.Now().UnixNano(),
		Traffic: ccmssim.Traffic{BusyShare: 0.3, BusyPerHour: 600, QuietPerHour: 12, ListInProgress: true,
			IngestDelayMax: 20 * time.Second, MeanTalk: 90 * time.Second},
	})
	if err != nil {
		return nil, nil, err
	}
	srv, err := ccmssim.StartServer(sim, ccmssim.ServerOptions{TLS: true, CertDir: certDir})
	if err != nil {
		return nil, nil, err
	}
	return sim, srv, nil
}

// kafkaTarget is where the demo publishes.
type kafkaTarget struct {
	brokers, topic string
	desc           string         // for the banner
	cluster        *kfake.Cluster // the in-process cluster, nil for an external one
}

// demoKafka picks the demo's Kafka: the cluster CALLPUB_KAFKA_BROKERS names,
// or else a kfake cluster in process, which the caller closes. The topic is
// CALLPUB_KAFKA_TOPIC or callpub.demo.calls.
func demoKafka(env envconfig.Lookuper) (kafkaTarget, error) {
	brokers, _ := env.Lookup("CALLPUB_KAFKA_BROKERS")
	topic, ok := env.Lookup("CALLPUB_KAFKA_TOPIC")
	if !ok || topic == "" {
		topic = "callpub.demo.calls"
	}
	if brokers != "" {
		return kafkaTarget{brokers: brokers, topic: topic, desc: "external Kafka at " + brokers}, nil
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(12, topic))
	if err != nil {
		return kafkaTarget{}, fmt.Errorf("in-process kafka: %w", err)
	}
	brokers = c.ListenAddrs()[0]
	return kafkaTarget{brokers: brokers, topic: topic, desc: "in-process Kafka (kfake) at " + brokers, cluster: c}, nil
}

// demoVars is the service's environment for the demo: demo-friendly polling
// against srv and k, state in stateDir, and the Kafka security settings (and
// ops address) passed through from env.
func demoVars(env envconfig.Lookuper, vdns int, srv *ccmssim.Server, k kafkaTarget, stateDir string) map[string]string {
	vars := map[string]string{
		"CALLPUB_CC_ID": "1", "CALLPUB_VDNS": "1-" + strconv.Itoa(vdns), "CALLPUB_DIRECTIONS": "in,out",
		"CALLPUB_CCMS_URL": srv.URL, "CALLPUB_CCMS_AK": "demo-ak", "CALLPUB_CCMS_SK": "demo-sk",
		"CALLPUB_CCMS_CA_FILE":  srv.CAFile,
		"CALLPUB_POLL_INTERVAL": "2s", "CALLPUB_POLL_MAX_INTERVAL": "10s", "CALLPUB_LOOKBACK": "2m",
		"CALLPUB_START_AT": "now", "CALLPUB_SWEEP_INTERVAL": "1m", "CALLPUB_SWEEP_LOOKBACK": "5m",
		"CALLPUB_CCMS_RATE": "100", "CALLPUB_CCMS_MAX_IN_FLIGHT": "4",
		"CALLPUB_KAFKA_BROKERS": k.brokers, "CALLPUB_KAFKA_TOPIC": k.topic,
		"CALLPUB_STATE_DIR": stateDir, "CALLPUB_HTTP_ADDR": "127.0.0.1:0", "CALLPUB_PII": "mask",
		"CALLPUB_LOG_FORMAT": "text",
	}
	for _, name := range []string{"CALLPUB_KAFKA_SASL_MECHANISM", "CALLPUB_KAFKA_USERNAME", "CALLPUB_KAFKA_PASSWORD",
		"CALLPUB_KAFKA_TLS", "CALLPUB_KAFKA_CA_FILE", "CALLPUB_HTTP_ADDR"} {
		if v, ok := env.Lookup(name); ok {
			vars[name] = v
		}
	}
	return vars
}

// runDemo runs the service and the 5-second summaries until ctx ends or the
// service fails.
func runDemo(ctx context.Context, cfg config, logger *slog.Logger, sim *ccmssim.Sim, o *demoOutput) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return serve(gctx, cfg, logger, hooks{onPublished: o.onPublished, onReady: o.onReady})
	})
	g.Go(func() error {
		o.summarise(gctx, sim)
		return nil
	})
	return g.Wait()
}

// demoOutput prints the demo's lines on out, one at a time, and counts the
// published events for the summaries.
type demoOutput struct {
	mu                 sync.Mutex // serialises lines on out
	out                io.Writer
	published, updates atomic.Int64
}

// onPublished prints one line per published event.
func (o *demoOutput) onPublished(events []schemas.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range events {
		var d schemas.CallCompletedData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			fmt.Fprintf(o.out, "(undecodable event %s: %v)\n", e.ID, err)
			continue
		}
		o.published.Add(1)
		if d.Update {
			o.updates.Add(1)
		}
		fmt.Fprintln(o.out, callLine(d))
	}
}

// onReady tells where the service's metrics and status are served.
func (o *demoOutput) onReady(addr string) {
	o.mu.Lock()
	fmt.Fprintf(o.out, "callpub demo: service ready; metrics and status at http://%s/metrics and /status\n", addr)
	o.mu.Unlock()
}

// summarise prints a summary line every 5 seconds until ctx ends.
func (o *demoOutput) summarise(ctx context.Context, sim *ccmssim.Sim) {
	start := time.Now()
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			o.mu.Lock()
			fmt.Fprintf(o.out, "---- %s  published %d events (%d updates), %d signed requests to the simulator ----\n",
				time.Since(start).Round(time.Second), o.published.Load(), o.updates.Load(), sim.Requests())
			o.mu.Unlock()
		}
	}
}

// ensureTopic creates the topic on an external cluster if it is missing,
// with the cluster's default replication and the service's TLS and SASL
// settings (the demo only; the service never creates topics).
func ensureTopic(ctx context.Context, kc publisher.Config, partitions int) error {
	d, err := kc.Dialer()
	if err != nil {
		return withVarNames(err)
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
