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

// serve is the service: it opens the store, the publisher and the CC-CMS
// client, checks the topic, and runs the poller's workers and the ops server
// under one errgroup until ctx ends (a normal stop, nil) or something fails.
// Close order (defers): workers stop, the publisher flushes, the store closes.
func serve(ctx context.Context, cfg config, logger *slog.Logger, h hooks) (err error) {
	loc, err := time.LoadLocation(cfg.CCMS.Timezone)
	if err != nil {
		return configError(fmt.Errorf("CALLPUB_CCMS_TIMEZONE: %w", err))
	}
	sh, err := cfg.shard()
	if err != nil {
		return configError(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	store, err := dedupe.Open(dedupe.Options{
		Path:        filepath.Join(cfg.StateDir, storeFile),
		LockTimeout: cfg.LockTimeout,
		CCID:        cfg.Poll.CCID,
		Fingerprint: fingerprint(cfg),
		Location:    loc,
		Shard:       sh.String(),
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()

	pub, err := publisher.New(cfg.Kafka, logger, reg)
	if err != nil {
		return configError(err)
	}
	defer func() { err = errors.Join(err, pub.Close()) }() // runs first: flush, then close the store

	checkCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	info, err := pub.CheckTopic(checkCtx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped during start-up
		}
		return fmt.Errorf("kafka: %w", err)
	}

	budget := poller.NewBudget(cfg.Poll.Rate, cfg.Poll.MaxInFlight)
	observe, err := budget.Instrument(reg)
	if err != nil {
		return err
	}
	client, err := ccms.NewClient(cfg.CCMS, ccms.Deps{
		Logger: logger, Limiter: budget, Observe: observe, Transport: h.transport,
	})
	if err != nil {
		return configError(err)
	}
	enc, err := schemas.NewEncoder(schemas.EncoderOptions{PII: schemas.PIIMode(cfg.PII), PIIKey: []byte(cfg.PIIKey.Reveal())})
	if err != nil {
		return configError(fmt.Errorf("CALLPUB_PII: %w", err))
	}
	p, err := poller.New(cfg.Poll, poller.Deps{
		Source: client, Store: store, Publisher: pub, Encoder: enc, Budget: budget,
		Location: loc, DayBoundary: client.Reach().Boundary, Logger: logger, Metrics: reg, Owns: sh.owns, OnPublished: h.onPublished,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("ops listener CALLPUB_HTTP_ADDR=%s: %w", cfg.HTTPAddr, err)
	}
	var ready atomic.Bool
	srv := &http.Server{Handler: opsHandler(reg, &ready, p), ReadHeaderTimeout: 5 * time.Second}

	g, gctx := errgroup.WithContext(ctx)
	for range cfg.Poll.MaxInFlight { // the number of workers caps requests in flight
		g.Go(func() error { return p.Work(gctx) })
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
	logger.Info("callpub running", "streams", p.Streams(), "cc_id", cfg.Poll.CCID, "vdns", cfg.Poll.VDNs.String(),
		"directions", fmt.Sprint(cfg.Poll.Directions), "shard", sh.String(), "topic", info.Topic, "partitions", info.Partitions,
		"ccms_host", client.Host(), "timezone", loc.String(), "ops_addr", ln.Addr().String())
	if h.onReady != nil {
		h.onReady(ln.Addr().String())
	}
	err = g.Wait()
	logger.Info("callpub stopping", "err", err)
	return err
}
