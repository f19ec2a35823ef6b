// Package poller turns CC-CMS's windowed query API into a stream of completed
// calls. It plans windows per stream (ccId, VDN, direction), shares one
// request budget fairly between thousands of streams, reads each window
// completely, publishes what is new, and commits seen-marks, pending calls and
// the cursor in one store transaction.
//
// Invariants (see DESIGN.md):
//   - Nothing is marked seen before the publisher returned nil (Kafka acked).
//   - A stream's cursor moves only after its whole window was read
//     consistently, never past now minus the lag, and an empty window is
//     still progress.
//   - A stream is never given to two workers at once: one batch in flight per
//     stream, so per-VDN order holds.
//   - A cursor behind the API's horizon is reported as a gap with its exact
//     span, in the same commit that moves it to the horizon.
package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/schemas"
)

// Source reads one stream's calls in a window. *ccms.Client implements it:
// it pages, checks that the pages agree, and splits the window when they
// don't. ctx bounds every request. A nil error means every call in the window
// was read — except in the spans of Read.Suspect, read only as far as the
// server would page them — and every unusable row is in Read.Bad; after an
// error nothing may be concluded about the window.
type Source interface {
	ReadWindow(ctx context.Context, w ccms.Window) (ccms.Read, error)
}

// Budget is the shared request budget, read for metrics and /status.
// *ccms.Budget implements it.
type Budget interface {
	Rate() float64  // current requests/s
	Limit() float64 // configured requests/s, which the pacer spends (pace.go)
}

// Store is the durable state of every stream. *dedupe.Store implements it.
// Its calls are short and take no ctx; an error from Commit means nothing of
// the batch was applied.
type Store interface {
	State(stream string) (dedupe.StreamState, error)
	Unseen(keys []dedupe.Key) ([]dedupe.Key, error)
	Commit(b dedupe.Batch) error
	CountSeen(stream string, day time.Time) (int, error)
	NewlyBad(stream string, sums []string) ([]string, error)
	GapsIn(stream string, from, to time.Time) ([]dedupe.Gap, error)
}

// Publisher writes events to Kafka. *publisher.Publisher implements it.
// Publish returns nil only once Kafka acknowledged every event; after an error
// (including ctx ending) assume nothing was written, and expect duplicates
// when the same events are published again. PublishControl does the same for
// the optional control topic and is a no-op when there is none, and
// PublishDLQ for the optional dead-letter topic.
type Publisher interface {
	Publish(ctx context.Context, events ...schemas.Event) error
	PublishControl(ctx context.Context, events ...schemas.Event) error
	PublishDLQ(ctx context.Context, events ...schemas.Event) error
}

// Config is the polling behaviour. Env names are relative to CALLPUB_.
type Config struct {
	CCID         int           `env:"CC_ID, required"`
	VDNs         VDNSet        `env:"VDNS, required"`
	Directions   Directions    `env:"DIRECTIONS, default=in,out"`
	PollInterval time.Duration `env:"POLL_INTERVAL, default=30s"`
	// PollInterval and MaxInterval bound each stream's fresh interval; the
	// pacer sets it in between from the stream's arrival rate and the
	// budget (pace.go).
	MaxInterval time.Duration `env:"POLL_MAX_INTERVAL, default=5m"`
	// FreshnessTarget, when set, is a p99 delay the pacer prices: /status
	// and callpub_poll_budget_needed_rps say what budget would reach it.
	FreshnessTarget time.Duration `env:"FRESHNESS_TARGET, default=0s"`
	Lookback        time.Duration `env:"LOOKBACK, default=15m"`
	Lag             time.Duration `env:"POLL_LAG, default=5s"`
	// MaxSpan caps how far one fresh read moves the cursor; below it, windows
	// are sized by WindowRows. The default spans the API's whole reach.
	MaxSpan time.Duration `env:"POLL_MAX_SPAN, default=48h"`
	// WindowRows is how many rows a catching-up window is sized to hold, by
	// the stream's density learned from earlier reads; a window found to hold
	// more than 1.5 × as many is read again narrower.
	WindowRows     int           `env:"POLL_WINDOW_ROWS, default=1000"`
	SweepInterval  time.Duration `env:"SWEEP_INTERVAL, default=15m"`
	SweepLookback  time.Duration `env:"SWEEP_LOOKBACK, default=6h"`
	ReconcileDelay time.Duration `env:"RECONCILE_DELAY, default=4h"`
	// LastChanceBefore is how long before a day leaves the API's reach its
	// last-chance read runs.
	LastChanceBefore time.Duration `env:"LAST_CHANCE_BEFORE, default=1h"`
	// MaxCallDuration: a call still running this long after its filter time
	// is published as a call without an end; 0: only at the last-chance read.
	MaxCallDuration time.Duration `env:"MAX_CALL_DURATION, default=0s"`
	Heartbeat       time.Duration `env:"HEARTBEAT_INTERVAL, default=1m"`
	StartAt         string        `env:"START_AT, default=horizon"`
	RetryBase       time.Duration `env:"POLL_RETRY_BASE, default=2s"`
	RetryMax        time.Duration `env:"POLL_RETRY_MAX, default=5m"`
	StepTimeout     time.Duration `env:"POLL_STEP_TIMEOUT, default=5m"`
}

// behindLag is how far behind now a healthy stream's cursor never is: a
// stream further behind is catching up.
func (c Config) behindLag() time.Duration { return c.Lag + 2*c.MaxInterval }

// ConfigError is one invalid Config field; Validate returns every one it
// finds, joined. Field is the Go field name (PollInterval), which callers map
// to their own variable names.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Validate checks the configuration; each problem is a *ConfigError, all of
// them joined.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &ConfigError{Field: field, Err: fmt.Errorf(format, a...)})
	}
	if c.CCID < 1 || c.CCID > 65535 {
		bad("CCID", "%d is outside 1..65535", c.CCID)
	}
	if len(c.VDNs) == 0 {
		bad("VDNs", "no VDN configured")
	}
	if len(c.Directions) == 0 {
		bad("Directions", "no direction configured")
	}
	if c.PollInterval <= 0 {
		bad("PollInterval", "must be positive, got %v", c.PollInterval)
	}
	if c.FreshnessTarget < 0 {
		bad("FreshnessTarget", "must not be negative, got %v", c.FreshnessTarget)
	}
	if c.MaxInterval < c.PollInterval {
		bad("MaxInterval", "%v is below CALLPUB_POLL_INTERVAL %v", c.MaxInterval, c.PollInterval)
	}
	if c.Lookback < 0 || c.Lookback > 24*time.Hour {
		bad("Lookback", "%v is outside 0..24h", c.Lookback)
	}
	if c.Lag < 0 || c.Lag > time.Hour {
		bad("Lag", "%v is outside 0..1h", c.Lag)
	}
	if c.MaxSpan < time.Second {
		bad("MaxSpan", "%v is below 1s", c.MaxSpan)
	}
	if c.WindowRows < 1 {
		bad("WindowRows", "must be at least 1, got %d", c.WindowRows)
	}
	c.validateRereads(bad)
	if c.Heartbeat <= 0 {
		bad("Heartbeat", "must be positive, got %v", c.Heartbeat)
	}
	if c.StartAt != "horizon" && c.StartAt != "now" {
		bad("StartAt", "%q is not horizon or now", c.StartAt)
	}
	if c.RetryBase <= 0 || c.RetryMax < c.RetryBase {
		bad("RetryBase", "%v must be positive and at most CALLPUB_POLL_RETRY_MAX (%v)", c.RetryBase, c.RetryMax)
	}
	if c.StepTimeout < time.Second {
		bad("StepTimeout", "%v is below 1s", c.StepTimeout)
	}
	return errors.Join(errs...)
}

// validateRereads checks the settings of the lanes that read time again:
// sweeps, the reconciliation and the last-chance read.
func (c Config) validateRereads(bad func(field, format string, a ...any)) {
	if c.SweepInterval <= 0 {
		bad("SweepInterval", "must be positive, got %v", c.SweepInterval)
	}
	if c.SweepLookback < c.Lookback || c.SweepLookback > 48*time.Hour {
		bad("SweepLookback", "%v must be between CALLPUB_LOOKBACK (%v) and 48h", c.SweepLookback, c.Lookback)
	}
	if c.ReconcileDelay < 0 || c.ReconcileDelay >= 24*time.Hour {
		bad("ReconcileDelay", "%v is outside 0..24h", c.ReconcileDelay)
	}
	if c.MaxCallDuration < 0 {
		bad("MaxCallDuration", "%v is negative (0: until the last-chance read)", c.MaxCallDuration)
	}
	if c.LastChanceBefore <= 0 || c.LastChanceBefore >= 24*time.Hour-c.ReconcileDelay {
		bad("LastChanceBefore", "%v must be above 0 and below 24h minus CALLPUB_RECONCILE_DELAY (%v): after the reconciliation, before the day is gone",
			c.LastChanceBefore, c.ReconcileDelay)
	}
}

// Deps are the poller's collaborators.
type Deps struct {
	Source    Source
	Store     Store
	Publisher Publisher
	Encoder   *schemas.Encoder
	Budget    Budget // shared with the CC-CMS client; exported as a metric
	// Reach is the API's allowed range (ccms.Client.Reach): its day zone and
	// whose midnights bound it. The zero value is UTC.
	Reach   ccms.Reach
	Logger  *slog.Logger // nil discards
	Metrics prometheus.Registerer
	// Owns filters the configured streams (sharding); nil owns all.
	Owns func(Stream) bool
	// ClockOffset is the server's clock minus ours (ccms.Client.ClockOffset):
	// a step plans with the server's now, so windows end at its now minus the
	// lag. Nil: zero.
	ClockOffset func() time.Duration
	// PageSize is the rows of one page the Source reads
	// (ccms.Client.PageSize); 0 means 100.
	PageSize int
	// MaxEventBytes is the largest record the event topic accepts
	// (publisher.MaxMessageBytes); a call whose event is larger is
	// quarantined instead of published. 0: no limit.
	MaxEventBytes int
	// OnPublished, when set, is called after each successful commit with the
	// events that commit covered (the demo prints them). It must not block.
	OnPublished func([]schemas.Event)
	// Slots are the work slots (event topic partitions) a group member was
	// given, for /status; nil outside group mode.
	Slots []int
	// Rebuilt names the streams whose state came from the changelog at this
	// start or assignment (the rest: the local store), for /status.
	Rebuilt map[string]bool
	// Changelog, when set, records every committed change of a stream's
	// durable state before the commit (changelog.go); Store must then
	// implement Snapshots too.
	Changelog Changelog
}

// Poller runs every owned stream. Create it with New, then run Work from as
// many goroutines as ccms.Client.Workers (4 per request slot of
// CALLPUB_CCMS_MAX_IN_FLIGHT: turns publish and commit while others fetch).
type Poller struct {
	cfg   Config
	src   Source
	store Store
	pub   Publisher
	slots []int // Deps.Slots
	// replayLog: the latest replays, for /status (replay.go); under mu.
	replayLog []*ReplayStatus
	// changelog and snapshots: nil without CALLPUB_KAFKA_STATE_TOPIC.
	changelog Changelog
	snapshots Snapshots
	enc       *schemas.Encoder
	loc       *time.Location // reach.Loc
	reach     ccms.Reach
	planner   planner
	log       *slog.Logger
	m         *metrics
	owns      func(Stream) bool
	onPub     func([]schemas.Event)

	maxEventBytes int
	clockOffset   func() time.Duration

	sched   *scheduler
	pace    *pacer
	hand    *hand // the rows all turns hold at once (hand.go)
	streams []*live
	mu      sync.Mutex // guards the status fields of every live, and lastClockWarn
	started time.Time

	lastClockWarn time.Time
	// replays: the streams with replays asked for and not yet done, or a
	// replay turn queued or running (replay.go); under mu.
	replays map[*live]*replayQueue
}

// live is a stream in memory: its durable state, scheduling and status. A
// replica holds one per stream, so what most streams never need (an error,
// replays) hangs off a pointer or a map of the Poller: 256 bytes a stream.
type live struct {
	Stream
	key string
	// owned by the worker holding the stream (scheduler guarantees one):
	failures      int
	lastHeartbeat int64 // Unix nanoseconds; 0: never
	// state is the stream's durable state, loaded once by New and advanced
	// with dedupe.StreamState.Apply after each commit. Written by the worker
	// holding the stream under Poller.mu; status reads it under Poller.mu.
	state dedupe.StreamState
	// read by status, under Poller.mu:
	lastOK  time.Time
	failure *failure // the last failed turn; nil: none since the start
	gaps    int
	// density is learned from the stream's reads (owned by the worker).
	density density
	rebuilt bool // its state came from the changelog (Deps.Rebuilt)
}

// failure is a stream's last failed turn, for /status.
type failure struct {
	err string
	at  time.Time
}

// New builds a poller, loads the state of every owned stream once and
// queues the first turns with jittered start times. It starts nothing.
func New(cfg Config, d Deps) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Source == nil || d.Store == nil || d.Publisher == nil || d.Encoder == nil || d.Budget == nil {
		return nil, errors.New("poller: Source, Store, Publisher, Encoder and Budget are required")
	}
	d = d.withDefaults()
	snaps, ok := d.Store.(Snapshots)
	if d.Changelog != nil && !ok {
		return nil, errors.New("poller: a Changelog needs a Store that implements Snapshots")
	}
	p := &Poller{
		changelog: d.Changelog, snapshots: snaps, slots: d.Slots,
		hand: newHand(handRows * cfg.WindowRows),
		cfg:  cfg, src: d.Source, store: d.Store, pub: d.Publisher, enc: d.Encoder,
		loc: d.Reach.Loc, reach: d.Reach, log: d.Logger, owns: d.Owns, onPub: d.OnPublished, maxEventBytes: d.MaxEventBytes, clockOffset: d.ClockOffset,
		planner: planner{cfg: cfg, reach: d.Reach, pageSize: d.PageSize,
			wc: WindowConfig{Lookback: cfg.Lookback, Lag: cfg.Lag, MaxSpan: cfg.MaxSpan}},
	}
	for _, s := range Streams(cfg.CCID, cfg.VDNs, cfg.Directions) {
		if p.owns(s) {
			p.streams = append(p.streams, &live{Stream: s, key: s.Key(), rebuilt: d.Rebuilt[s.Key()]})
		}
	}
	if len(p.streams) == 0 {
		return nil, errors.New("poller: this replica owns none of the configured streams")
	}
	m, err := newMetrics(d.Metrics, p, d.Budget)
	if err != nil {
		return nil, err
	}
	p.m = m
	p.sched = newScheduler(len(p.streams), cfg.PollInterval)
	p.pace = newPacer(len(p.streams), cfg.PollInterval, cfg.MaxInterval, cfg.FreshnessTarget, d.Budget.Limit, d.Logger)
	p.sched.freshFirst = p.pace.freshFirst
	if err := p.pace.instrument(d.Metrics); err != nil {
		return nil, err
	}
	p.started = time.Now()
	for i, ls := range p.streams {
		if ls.state, err = p.store.State(ls.key); err != nil {
			return nil, fmt.Errorf("poller: read state of %s: %w", ls.key, err)
		}
		p.queueFirstTurns(i, ls.state, p.started)
	}
	return p, nil
}

// withDefaults fills the optional fields of d.
func (d Deps) withDefaults() Deps {
	if d.Reach.Loc == nil {
		d.Reach.Loc = time.UTC
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = prometheus.NewRegistry()
	}
	if d.Owns == nil {
		d.Owns = func(Stream) bool { return true }
	}
	if d.OnPublished == nil {
		d.OnPublished = func([]schemas.Event) {}
	}
	if d.PageSize <= 0 {
		d.PageSize = 100
	}
	if d.ClockOffset == nil {
		d.ClockOffset = func() time.Duration { return 0 }
	}
	return d
}

// queueFirstTurns queues stream i's first turn in every lane: fresh (or
// backfill, for a stream far behind) within seconds, the sweep when it is
// due, the reconciliation when yesterday is ready.
func (p *Poller) queueFirstTurns(i int, st dedupe.StreamState, now time.Time) {
	cfg := p.cfg
	// Streams that are caught up start within seconds, spread so that they
	// do not fire together; streams with history to read start at once, in
	// the backfill lane's order, paced by the request budget.
	first, due := laneFresh, now.Add(jitter(min(cfg.PollInterval, 5*time.Second)))
	if st.Cursor.IsZero() || st.Cursor.Before(now.Add(-cfg.behindLag())) {
		first, due = laneBackfill, now
	}
	p.sched.add(&turn{stream: int32(i), lane: first, due: due})
	sweepDue := st.LastSweep.Add(cfg.SweepInterval)
	if st.LastSweep.IsZero() || sweepDue.Before(now) {
		sweepDue = now.Add(cfg.PollInterval + jitter(cfg.SweepInterval))
	}
	p.sched.add(&turn{stream: int32(i), lane: laneSweep, due: sweepDue})
	p.sched.add(&turn{stream: int32(i), lane: laneReconcile, due: p.planner.nextReconcile(now, st.SealedDay)})
	p.sched.add(&turn{stream: int32(i), lane: laneLastChance, due: p.planner.nextLastChance(now, st.LastChanceDay)})
}

// Streams returns how many streams this poller owns.
func (p *Poller) Streams() int { return len(p.streams) }

// Work runs due turns until ctx ends. Several Work calls may run at once;
// their number caps the requests in flight. A turn that has started is
// finished even if ctx ends meanwhile (bounded by CALLPUB_POLL_STEP_TIMEOUT),
// so a stop flushes and commits the step in hand. Work returns nil on
// cancellation, and an error only when going on is pointless: the store is
// closed or broken.
func (p *Poller) Work(ctx context.Context) error {
	for {
		t, err := p.sched.next(ctx)
		if err != nil {
			return nil
		}
		// The turn in hand runs on, detached from ctx, when a stop arrives; it
		// gets CALLPUB_POLL_STEP_TIMEOUT from then on to finish and commit.
		stepCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		var grace *time.Timer
		var graceMu sync.Mutex
		stopGrace := context.AfterFunc(ctx, func() {
			graceMu.Lock()
			grace = time.AfterFunc(p.cfg.StepTimeout, cancel)
			graceMu.Unlock()
		})
		follow, skipped, err := p.turn(stepCtx, t)
		stopGrace()
		graceMu.Lock()
		if grace != nil {
			grace.Stop()
		}
		graceMu.Unlock()
		cancel()
		switch {
		case follow == nil: // a lane that ends (replay.go)
			p.sched.done(t)
		case skipped:
			// Nothing was asked of CC-CMS or Kafka: the scheduler learns
			// nothing about them from this turn (a skip during an outage
			// must not end the holding of the failed turns).
			p.sched.done(t)
			p.sched.add(follow)
		default:
			p.sched.done(t, follow)
		}
		if errors.Is(err, dedupe.ErrClosed) {
			return fmt.Errorf("poller: %w", err)
		}
	}
}
