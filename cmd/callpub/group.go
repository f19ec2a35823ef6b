package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/publisher"
)

// Group mode (CALLPUB_GROUP_ID). Replicas join one Kafka consumer group
// subscribed to the event topic; the partitions the coordinator assigns a
// replica are its work slots, and a VDN's streams belong to the slot its
// events go to (publisher.PartitionOf), so one replica writes all of a VDN's
// events and per-VDN order holds. Nothing is consumed: the group only hands
// out the slots and notices a replica that stops heartbeating.
//
// Each generation (kafka-go's, one per rebalance) runs its own poller:
//
//  1. the slots' streams are brought up to the state topic (rebuild: a
//     stream another replica advanced meanwhile takes the changelog's state
//     and the event topic's seen marks; a stream whose local store is current
//     keeps it);
//  2. the budget becomes the share of CALLPUB_CCMS_RATE the streams hold;
//  3. a poller over those streams runs its workers until the generation
//     ends (a rebalance: kafka-go revokes every slot of every member) or the
//     service stops; the turn in hand finishes and commits first
//     (CALLPUB_POLL_STEP_TIMEOUT), which the rebalance timeout leaves room
//     for, so a slot's next owner starts only after its last turn committed.
//
// A replica that is killed loses its slots after the session timeout; the
// next owner rebuilds from the changelog, which is never behind what was
// published but the turn in flight, whose events the seen marks read back
// from the event topic cover.
type group struct {
	cfg       config
	kit       kit // its deps without Owns, Metrics, Changelog, Slots, Rebuilt
	log       *slog.Logger
	changelog poller.Changelog
	replays   *replays // hands replay requests to the generation's poller

	mu  sync.Mutex
	p   *poller.Poller       // the current generation's, nil between them
	reg *prometheus.Registry // its metrics
	m   groupMetrics
}

type groupMetrics struct {
	slots       prometheus.Gauge
	streams     prometheus.Gauge
	generations prometheus.Counter
}

func newGroup(cfg config, k kit, rp *replays) (*group, error) {
	g := &group{cfg: cfg, kit: k, replays: rp, log: k.deps.Logger}
	g.changelog = kafkaChangelog{pub: k.pub, owner: hostname()}
	g.m = groupMetrics{
		slots: prometheus.NewGauge(prometheus.GaugeOpts{Name: "callpub_group_slots",
			Help: "Event topic partitions (work slots) this replica owns in group mode."}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "callpub_group_streams",
			Help: "Streams this replica polls in group mode: those of the VDNs of its slots."}),
		generations: prometheus.NewCounter(prometheus.CounterOpts{Name: "callpub_group_generations_total",
			Help: "Consumer group generations (assignments after a rebalance) this replica took part in."}),
	}
	for _, c := range []prometheus.Collector{g.m.slots, g.m.streams, g.m.generations} {
		if err := k.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// run takes part in the group until ctx ends.
func (g *group) run(ctx context.Context) error {
	dialer, err := g.cfg.Kafka.Dialer()
	if err != nil {
		return configError(err)
	}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: g.cfg.GroupID, Brokers: g.cfg.Kafka.Brokers, Dialer: dialer, Topics: []string{g.cfg.Kafka.Topic},
		SessionTimeout: g.cfg.GroupSession, HeartbeatInterval: g.cfg.GroupSession / 3,
		RebalanceTimeout: g.cfg.Poll.StepTimeout + 30*time.Second, JoinGroupBackoff: time.Second,
		WatchPartitionChanges: true, PartitionWatchInterval: 30 * time.Second,
	})
	if err != nil {
		return configError(fmt.Errorf("CALLPUB_GROUP_ID: %w", err))
	}
	defer cg.Close() // leaves the group
	for {
		gen, err := cg.Next(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			g.log.Warn("consumer group: no generation yet, joining again", "group", g.cfg.GroupID, "err", err)
			continue
		}
		if err := g.generation(ctx, gen); err != nil {
			return err
		}
	}
}

// generation runs the poller of one generation's slots until it ends.
func (g *group) generation(ctx context.Context, gen *kafka.Generation) error {
	ended := make(chan struct{})
	gen.Start(func(gctx context.Context) { <-gctx.Done(); close(ended) })
	slots := g.slots(gen)
	owned := g.owned(slots)
	g.m.generations.Inc()
	g.m.slots.Set(float64(len(slots)))
	g.m.streams.Set(float64(len(owned)))
	g.log.Info("consumer group: slots assigned", "group", g.cfg.GroupID, "generation", gen.ID, "slots", fmt.Sprint(slots),
		"streams", len(owned))
	if len(owned) == 0 {
		g.wait(ctx, ended)
		return nil
	}
	parts := partitionSet{}
	for _, s := range slots {
		parts[s] = true
	}
	rep, ok := g.rebuild(ctx, ended, owned, parts)
	if !ok {
		return nil // the generation or the service ended first
	}
	all := len(poller.Streams(g.cfg.Poll.CCID, g.cfg.Poll.VDNs, g.cfg.Poll.Directions))
	g.kit.budget.SetLimit(g.cfg.CCMS.Rate * float64(len(owned)) / float64(all))
	p, reg, err := g.poller(slots, owned, rep)
	if err != nil {
		return err
	}
	g.set(p, reg)
	defer g.set(nil, nil)
	g.replays.use(p)
	defer g.replays.use(nil) // what p did not finish goes to the next generation's
	done := make(chan struct{})
	gen.Start(func(gctx context.Context) {
		defer close(done)
		wctx, stop := context.WithCancel(gctx)
		defer stop()
		context.AfterFunc(ctx, stop) // a service stop ends the generation's work too
		var eg errgroup.Group
		for range g.kit.workers {
			eg.Go(func() error { return p.Work(wctx) })
		}
		_ = eg.Wait() // Work returns nil
	})
	<-done
	return nil
}

// slots are the generation's partitions of the event topic, sorted.
func (g *group) slots(gen *kafka.Generation) []int {
	var out []int
	for _, a := range gen.Assignments[g.cfg.Kafka.Topic] {
		out = append(out, a.ID)
	}
	slices.Sort(out)
	return out
}

// owned are the streams whose VDN's events go to one of slots.
func (g *group) owned(slots []int) map[string]bool {
	owned := map[string]bool{}
	for _, s := range poller.Streams(g.cfg.Poll.CCID, g.cfg.Poll.VDNs, g.cfg.Poll.Directions) {
		if slices.Contains(slots, publisher.PartitionOf(s.VDN, g.kit.parts)) {
			owned[s.Key()] = true
		}
	}
	return owned
}

// rebuild brings the owned streams up to the changelog, trying again every
// few seconds while Kafka fails it; ok is false when the generation or the
// service ended first.
func (g *group) rebuild(ctx context.Context, ended <-chan struct{}, owned map[string]bool, parts partitionSet) (rebuildReport, bool) {
	for {
		rep, err := rebuild(ctx, g.cfg.Kafka, g.kit.store, owned, poller.Horizon(time.Now(), g.kit.deps.Reach), parts, g.log)
		if err == nil {
			return rep, true
		}
		if ctx.Err() != nil {
			return rep, false
		}
		g.log.Error("consumer group: rebuilding the assigned streams failed; trying again", "err", err)
		select {
		case <-ctx.Done():
			return rep, false
		case <-ended:
			return rep, false
		case <-time.After(5 * time.Second):
		}
	}
}

// poller builds the generation's poller, its metrics on a registry of its
// own (the next generation's poller registers the same names).
func (g *group) poller(slots []int, owned map[string]bool, rep rebuildReport) (*poller.Poller, *prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	d := g.kit.deps
	d.Owns = func(s poller.Stream) bool { return owned[s.Key()] }
	d.Metrics, d.Changelog, d.Slots, d.Rebuilt = reg, g.changelog, slots, map[string]bool{}
	for _, s := range rep.restored {
		d.Rebuilt[s] = true
	}
	p, err := poller.New(g.cfg.Poll, d)
	if err != nil {
		return nil, nil, err
	}
	p.SetStreamSeriesMax(g.cfg.MetricsPerStreamMax)
	return p, reg, nil
}

// wait blocks until the generation or the service ends.
func (g *group) wait(ctx context.Context, ended <-chan struct{}) {
	select {
	case <-ctx.Done():
	case <-ended:
	}
}

func (g *group) set(p *poller.Poller, reg *prometheus.Registry) {
	g.mu.Lock()
	g.p, g.reg = p, reg
	g.mu.Unlock()
}

// StatusOf is the current generation's /status; between generations, an
// empty one.
func (g *group) StatusOf(now time.Time, q poller.StatusQuery) poller.Status {
	g.mu.Lock()
	p := g.p
	g.mu.Unlock()
	if p == nil {
		return poller.Status{Now: now, Rows: []poller.StreamStatus{}}
	}
	return p.StatusOf(now, q)
}

// gatherer adds the current generation's poller metrics to base's.
func (g *group) gatherer(base prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		g.mu.Lock()
		reg := g.reg
		g.mu.Unlock()
		if reg == nil {
			return base.Gather()
		}
		return prometheus.Gatherers{base, reg}.Gather()
	})
}

func (g *group) streams() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.p == nil {
		return 0
	}
	return g.p.Streams()
}
