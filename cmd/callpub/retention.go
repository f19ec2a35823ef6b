package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
)

// retention keeps the running service's store bounded. At start and every
// CALLPUB_STATE_PRUNE_INTERVAL it drops the seen day buckets of days before
// the API's horizon minus CALLPUB_STATE_RETENTION_MARGIN: the API can no
// longer return those calls, and Unseen's neighbour-day lookup and late
// corrections are inside the margin. Too short a retention would cause
// duplicates, never loss. It also exports the store's size.
type retention struct {
	store    *dedupe.Store
	reach    ccms.Reach // the API's reach, the same rule the poller uses
	interval time.Duration
	margin   time.Duration
	log      *slog.Logger
	pruned   prometheus.Counter
	lastOK   prometheus.Gauge
}

func newRetention(cfg config, store *dedupe.Store, reach ccms.Reach, logger *slog.Logger, reg prometheus.Registerer) (*retention, error) {
	if cfg.PruneEvery <= 0 || cfg.KeepMargin < 0 {
		return nil, fmt.Errorf("store retention: prune interval %v must be positive, margin %v not negative", cfg.PruneEvery, cfg.KeepMargin)
	}
	r := &retention{
		store: store, reach: reach, interval: cfg.PruneEvery, margin: cfg.KeepMargin, log: logger,
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callpub_store_pruned_buckets_total", Help: "Seen day buckets dropped from the store by its retention.",
		}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "callpub_store_last_prune_timestamp_seconds", Help: "When the store was last pruned without error (0: not yet since start).",
		}),
	}
	cs := []prometheus.Collector{r.pruned, r.lastOK,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "callpub_store_bytes", Help: "Size of the store's file (bbolt reuses freed pages but never shrinks it).",
		}, func() float64 { return valueOrNaN(store.Size()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "callpub_store_prune_interval_seconds", Help: "CALLPUB_STATE_PRUNE_INTERVAL: how often the store is pruned.",
		}, r.interval.Seconds),
	}
	if _, err := store.VolumeFree(); err == nil { // Linux only
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "callpub_store_free_bytes", Help: "Free space this process may still use on the store's volume.",
		}, func() float64 { return valueOrNaN(store.VolumeFree()) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func valueOrNaN(n int64, err error) float64 {
	if err != nil {
		return math.NaN()
	}
	return float64(n)
}

// run prunes at once, then every interval, until ctx ends; then it returns
// nil. A failed prune is logged and tried again at the next interval: it
// never stops the service. Each day bucket goes in a write transaction of
// its own, so the poller's commits keep flowing meanwhile.
func (r *retention) run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		r.prune(ctx, time.Now())
		timer.Reset(r.interval)
	}
}

// releaseEvery is how often the store's mapped pages leave the resident set
// (release). On this kernel a fault maps far more than the page asked for
// (a 64 MiB file touched every 256 KiB is wholly resident), so a second of
// sweeps' lookups and commits touched 8 MiB of it; a quarter of a second,
// 1–2 MiB. The madvise costs a page-table walk; the pages stay cached.
const releaseEvery = 250 * time.Millisecond

// release lets the store's file pages go from the process's resident set
// every releaseEvery until ctx ends: lookups map about the whole store
// within an hour, and RSS would count it (dedupe.Store.ReleaseMapped; the
// pages stay in the page cache).
func (r *retention) release(ctx context.Context) error {
	tick := time.NewTicker(releaseEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := r.store.ReleaseMapped(); err != nil {
			r.log.Warn("store pages not released", "err", err)
		}
	}
}

// prune drops the day buckets before the horizon at now minus the margin.
func (r *retention) prune(ctx context.Context, now time.Time) {
	before := poller.Horizon(now, r.reach).Add(-r.margin)
	keep := before.In(r.store.Location()).Format(time.DateOnly)
	days, err := r.store.PruneByDay(before)
	r.pruned.Add(float64(len(days)))
	if err != nil {
		r.log.Warn("store prune failed, will retry", "keep_from", keep, "dropped", len(days), "dropped_days", days, "err", err)
		return
	}
	r.lastOK.Set(float64(now.Unix()))
	level := slog.LevelInfo
	if len(days) == 0 {
		level = slog.LevelDebug
	}
	size, _ := r.store.Size()
	r.log.Log(ctx, level, "store pruned", "keep_from", keep, "dropped", len(days), "dropped_days", days, "store_bytes", size)
}
