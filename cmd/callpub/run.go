package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/sethvargo/go-envconfig"
	"golang.org/x/sync/errgroup"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/publisher"
	"github.com/callpub/callpub/schemas"
)

// hooks let demo and tests observe a running service without changing it.
type hooks struct {
	onPublished func([]schemas.Event) // after each commit; must not block
	onReady     func(opsAddr string)  // once every start-up check passed
	transport   http.RoundTripper     // CC-CMS transport override (tests)
}

// storeFile is the store's file name inside CALLPUB_STATE_DIR.
const storeFile = "callpub.db"

func run(ctx context.Context, env envconfig.Lookuper, logOut io.Writer, h hooks) error {
	cfg, err := loadConfig(ctx, env)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, newLogger(cfg, logOut), h)
}

func newLogger(cfg config, out io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(out, opts))
	}
	return slog.New(slog.NewJSONHandler(out, opts))
}

// fingerprint identifies the upstream a store was filled from; it is recorded
// in the store's meta bucket for `callpub state show`.
func fingerprint(cfg config) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%d", cfg.CCMS.URL, cfg.CCMS.Timezone, cfg.Poll.CCID))
	return hex.EncodeToString(sum[:8])
}

// serve is the service: it builds the CC-CMS client (which sends nothing),
// opens the store in the client's day zone, the publisher, and checks the
// topic, then runs the poller's workers, the store's retention and the ops
// server under one errgroup until ctx ends (a normal stop, nil) or something
// fails. Close order (defers): workers stop, the publisher flushes, the
// store closes.
func serve(ctx context.Context, cfg config, logger *slog.Logger, h hooks) (err error) {
	sh, err := cfg.shard()
	if err != nil {
		return configError(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	budget := ccms.NewBudget(cfg.CCMS.Rate, cfg.CCMS.MaxInFlight)
	client, err := newClient(cfg.CCMS, logger, reg, budget, h.transport)
	if err != nil {
		return err
	}
	store, err := openStore(cfg, client.Reach().Loc, sh)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()

	pub, err := publisher.New(cfg.Kafka, logger, reg)
	if err != nil {
		return configError(err)
	}
	defer func() { err = errors.Join(err, pub.Close()) }() // runs first: flush, then close the store
	info, err := checkEventTopic(ctx, pub)
	if err != nil || ctx.Err() != nil {
		return err // nil: stopped during start-up
	}
	loops, err := detectBoundary(ctx, cfg, client, logger, reg)
	if err != nil {
		return err
	}
	enc, err := schemas.NewEncoder(schemas.EncoderOptions{PII: schemas.PIIMode(cfg.PII), PIIKey: []byte(cfg.PIIKey.Reveal())})
	if err != nil {
		return configError(fmt.Errorf("CALLPUB_PII: %w", err))
	}
	deps := poller.Deps{
		Source: client, Store: store, Publisher: pub, Encoder: enc, Budget: budget,
		Reach: client.Reach(), Logger: logger, OnPublished: h.onPublished,
		MaxEventBytes: pub.MaxMessageBytes(), PageSize: client.PageSize(), ClockOffset: client.ClockOffset,
	}
	w, more, err := newWorkload(ctx, cfg, kit{deps: deps, store: store, pub: pub, budget: budget, shard: sh,
		parts: info.Partitions, workers: client.Workers(), reg: reg})
	if err != nil || ctx.Err() != nil {
		return err
	}
	loops = append(loops, more...)
	ret, err := newRetention(cfg, store, client.Reach(), logger, reg)
	if err != nil {
		return err
	}
	started := func(addr string) {
		logger.Info("callpub running", "streams", w.streams(), "cc_id", cfg.Poll.CCID, "vdns", cfg.Poll.VDNs.String(),
			"directions", fmt.Sprint(cfg.Poll.Directions), "shard", sh.String(), "group", cfg.GroupID, "topic", info.Topic,
			"partitions", info.Partitions, "ccms_host", client.Host(), "timezone", client.Reach().Loc.String(), "ops_addr", addr)
		if h.onReady != nil {
			h.onReady(addr)
		}
	}
	err = runWorkers(ctx, cfg.HTTPAddr, w, w.gatherer(reg), started, append(loops, ret.run, ret.release)...)
	logger.Info("callpub stopping", "err", err)
	return err
}

// detectBoundary asks the server, for CALLPUB_CCMS_DAY_BOUNDARY_MODE=auto,
// whose midnight bounds its range before any stream starts, and returns the
// loop that asks again daily; nothing for the other modes.
func detectBoundary(ctx context.Context, cfg config, client *ccms.Client, logger *slog.Logger, reg prometheus.Registerer) ([]func(context.Context) error, error) {
	if client.Reach().Boundary != ccms.BoundaryAuto {
		return nil, nil
	}
	d, err := newBoundaryDetector(cfg, client, logger, reg)
	if err != nil {
		return nil, err
	}
	d.detect(ctx)
	return []func(context.Context) error{d.run}, nil
}

// newClient builds the CC-CMS client on the shared request budget, with its
// request metrics registered on reg.
func newClient(cfg ccms.Config, logger *slog.Logger, reg prometheus.Registerer, budget *ccms.Budget, rt http.RoundTripper) (*ccms.Client, error) {
	observe, err := budget.Instrument(reg)
	if err != nil {
		return nil, err
	}
	client, err := ccms.NewClient(cfg, ccms.Deps{Logger: logger, Limiter: budget, Observe: observe, Transport: rt})
	if err != nil {
		return nil, configError(err)
	}
	offset := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "callpub_ccms_clock_offset_seconds",
		Help: "CC-CMS's clock minus this host's, learned from its Date headers (or CALLPUB_CCMS_CLOCK_OFFSET); windows, day bounds and signatures follow the server's clock.",
	}, func() float64 { return client.ClockOffset().Seconds() })
	if err := reg.Register(offset); err != nil {
		return nil, err
	}
	return client, nil
}

// openStore opens (or creates) the store in CALLPUB_STATE_DIR, its day
// buckets in the API's day zone.
func openStore(cfg config, loc *time.Location, sh shard) (*dedupe.Store, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	return dedupe.Open(dedupe.Options{
		Path:        filepath.Join(cfg.StateDir, storeFile),
		LockTimeout: cfg.LockTimeout,
		CCID:        cfg.Poll.CCID,
		Fingerprint: fingerprint(cfg),
		Location:    loc,
		Shard:       sh.String(),
	})
}

// checkEventTopic checks that the event topic exists, within 30 seconds. A stop
// during the check is not an error: the caller sees ctx.Err().
func checkEventTopic(ctx context.Context, pub *publisher.Publisher) (publisher.TopicInfo, error) {
	checkCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	info, err := pub.CheckTopic(checkCtx)
	if err != nil && ctx.Err() == nil {
		return info, fmt.Errorf("kafka: %w", err)
	}
	return info, nil
}

// kit is what serve built that a workload uses.
type kit struct {
	deps    poller.Deps // Owns, Metrics, Changelog, Slots, Rebuilt left to the workload
	store   *dedupe.Store
	pub     *publisher.Publisher
	budget  *ccms.Budget
	shard   shard
	parts   int // of the event topic
	workers int // Work goroutines: ccms.Client.Workers
	reg     prometheus.Registerer
}

// newWorkload builds what the service runs — the group's generations, or one
// poller (after the rebuild from the state topic, if any) — and, with a state
// topic, the loop that hands replay requests to it. A stop during the
// rebuild returns nil, nil, nil.
func newWorkload(ctx context.Context, cfg config, k kit) (workload, []func(context.Context) error, error) {
	var rp *replays
	var loops []func(context.Context) error
	if cfg.Kafka.StateTopic != "" {
		rp = newReplays(cfg.Kafka, k.pub, k.deps.Logger)
		loops = append(loops, rp.run)
	}
	if cfg.GroupID != "" {
		g, err := newGroup(cfg, k, rp)
		return g, loops, err
	}
	w, err := newStatic(ctx, cfg, k, rp)
	return w, loops, err
}

// workload is what the service runs: the poller of this replica's streams
// (static), or the group's generations (group.go).
type workload interface {
	statusSource
	// run runs until ctx ends (nil) or something fails.
	run(ctx context.Context) error
	// gatherer is base plus the workload's own metrics.
	gatherer(base prometheus.Gatherer) prometheus.Gatherer
	// streams is how many streams run now (group mode: 0 until assigned).
	streams() int
}

// static is one poller over the streams of this replica's shard (all of
// them without one), its metrics on the service's registry.
type static struct {
	*poller.Poller
	workers int
}

// newStatic brings the store up to the state topic, if any, and builds the
// poller. A stop during the rebuild returns nil, nil.
func newStatic(ctx context.Context, cfg config, k kit, rp *replays) (workload, error) {
	changelog, rebuilt, err := startChangelog(ctx, cfg, k.store, k.pub, k.shard, k.deps.Reach, k.deps.Logger)
	if err != nil || ctx.Err() != nil {
		return nil, err
	}
	deps := k.deps
	deps.Owns, deps.Metrics, deps.Changelog, deps.Rebuilt = k.shard.owns, k.reg, changelog, rebuilt
	p, err := poller.New(cfg.Poll, deps)
	if err != nil {
		return nil, err
	}
	p.SetStreamSeriesMax(cfg.MetricsPerStreamMax)
	if rp != nil {
		rp.use(p)
	}
	return static{Poller: p, workers: k.workers}, nil
}

// run runs the poller's workers (their number caps the requests in flight).
func (s static) run(ctx context.Context) error {
	var g errgroup.Group
	for range s.workers {
		g.Go(func() error { return s.Work(ctx) })
	}
	return g.Wait()
}

func (s static) gatherer(base prometheus.Gatherer) prometheus.Gatherer { return base }
func (s static) streams() int                                          { return s.Streams() }

// runWorkers listens on the ops address and runs, under one errgroup, the
// workload, the ops server and the loops (the store's retention), until ctx
// ends or one of them fails. started is told the ops address once
// everything runs.
func runWorkers(ctx context.Context, addr string, w workload, metrics prometheus.Gatherer,
	started func(addr string), loops ...func(context.Context) error) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("ops listener CALLPUB_HTTP_ADDR=%s: %w", addr, err)
	}
	var ready atomic.Bool
	srv := &http.Server{Handler: opsHandler(metrics, &ready, w), ReadHeaderTimeout: 5 * time.Second}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.run(gctx) })
	for _, loop := range loops {
		g.Go(func() error { return loop(gctx) })
	}
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("ops server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	})
	ready.Store(true)
	started(ln.Addr().String())
	return g.Wait()
}
