package poller

import (
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the poller's Prometheus collectors. Per-stream series exist
// only for lag, horizon headroom and pending (computed at scrape time, and
// per direction above SetStreamSeriesMax streams) and for gaps; everything
// else is aggregated.
type metrics struct {
	budget         Budget
	steps          *prometheus.CounterVec
	published      *prometheus.CounterVec
	duplicates     *prometheus.CounterVec
	replayed       prometheus.Counter
	gaps           *prometheus.CounterVec
	gapSeconds     prometheus.Counter
	pendingDropped prometheus.Counter
	pages          prometheus.Counter
	splits         prometheus.Counter
	sealed         prometheus.Counter
	futureRows     prometheus.Counter
	quarantined    *prometheus.CounterVec
	suspect        prometheus.Counter
	streams        *streamCollector
	freshness      *prometheus.HistogramVec
	recent         *recentDelays // the last minutes of freshness, for /status
}

// freshnessBuckets span a second to an hour: a healthy stream publishes
// within its interval, a quiet one within POLL_MAX_INTERVAL, a long call
// missed by its fresh reads is found by a sweep.
var freshnessBuckets = []float64{1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1800, 3600}

// counter and counterVec make the poller's counters.
func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func newMetrics(reg prometheus.Registerer, p *Poller, b Budget) (*metrics, error) {
	m := &metrics{
		budget:  b,
		streams: newStreamCollector(p),
		recent:  &recentDelays{},
		freshness: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "callpub_freshness_seconds", Help: "Delay from a completed call's row (its logDate, by CC-CMS's clock) to Kafka's acknowledgement of its first publication, by direction. Updates of published calls, calls without an end and control records are not counted.",
			Buckets: freshnessBuckets,
		}, []string{"direction"}),
		steps: counterVec("callpub_steps_total",
			"Stream turns run, by lane (fresh, sweep, reconcile, backfill, last_chance, replay) and result.",
			"lane", "result"),
		published: counterVec("callpub_calls_published_total",
			"Call events acknowledged by Kafka and committed, by direction and kind (new, update, unended: a call that never reported an end).",
			"direction", "kind"),
		duplicates: counterVec("callpub_duplicates_dropped_total",
			"Completed calls read again and dropped because they were already published.",
			"direction"),
		gaps: counterVec("callpub_gaps_total",
			"Spans lost because a stream's cursor fell behind the API's horizon.",
			"vdn", "direction"),
		replayed: counter("callpub_calls_replayed_total",
			"Call events published again by replays (callpub replay), acknowledged and committed."),
		gapSeconds: counter("callpub_gap_seconds_total",
			"Total length of all gaps, in seconds of filter time."),
		pendingDropped: counter("callpub_pending_dropped_total",
			"In-progress calls dropped because they fell behind the API's horizon before completing."),
		pages: counter("callpub_ccms_pages_total",
			"Result pages read from CC-CMS."),
		splits: counter("callpub_window_splits_total",
			"Windows split in two because they were too large or paging was inconsistent."),
		sealed: counter("callpub_days_sealed_total",
			"(stream, day) pairs reconciled and sealed."),
		quarantined: counterVec("callpub_rows_quarantined_total",
			"Rows that could not be published (undecodable, unusable or too large), reported once each on the dead-letter topic, by direction.",
			"direction"),
		suspect: counter("callpub_suspect_windows_total",
			"Windows whose pages never agreed with the server's count, read as far as the server would page them: some calls may be missing."),
		futureRows: counter("callpub_ccms_future_rows_total",
			"Rows whose times lie more than 10 minutes after our clock: the server's clock or time zone differs from ours."),
	}
	cs := []prometheus.Collector{m.steps, m.published, m.duplicates, m.replayed, m.gaps, m.gapSeconds, m.pendingDropped,
		m.pages, m.splits, m.sealed, m.futureRows, m.quarantined, m.suspect, m.freshness,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "callpub_request_budget_per_second", Help: "Current shared CC-CMS request rate: halved while most recent answers push back (callpub_ccms_pushback_ratio > 0.5), doubled back once a quarter or fewer do.",
		}, b.Rate),
		p.hand.collector(),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "callpub_streams", Help: "Streams owned by this replica.",
		}, func() float64 { return float64(len(p.streams)) }),
		m.streams,
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) countPublished(d Direction, items []item) {
	var fresh, upd, unended int
	for _, it := range items {
		switch {
		case it.unended:
			unended++
		case it.key.Update:
			upd++
		default:
			fresh++
		}
	}
	m.published.WithLabelValues(string(d), "new").Add(float64(fresh))
	m.published.WithLabelValues(string(d), "update").Add(float64(upd))
	m.published.WithLabelValues(string(d), "unended").Add(float64(unended))
}

// observeFreshness counts the delay of each completed call first
// published by a commit, from its row's logDate to ackedAt, Kafka's
// acknowledgement by the server's clock (the clock of logDate). Updates and
// calls without an end are not counted.
func (m *metrics) observeFreshness(d Direction, items []item, ackedAt time.Time) {
	h := m.freshness.WithLabelValues(string(d))
	now := time.Now()
	for _, it := range items {
		logDate := it.call.Call.LogDate
		if it.unended || it.key.Update || logDate.IsZero() {
			continue
		}
		delay := max(ackedAt.Sub(logDate), 0)
		h.Observe(delay.Seconds())
		m.recent.add(now, delay)
	}
}

// DefaultStreamSeriesMax is how many streams a poller exports per-stream
// series for, unless SetStreamSeriesMax says otherwise.
const DefaultStreamSeriesMax = 1000

const (
	lagHelp = "Now minus the stream's watermark (cursor, or oldest pending call if older). " +
		"Above CALLPUB_METRICS_PER_STREAM_MAX streams: the largest of each direction, without a vdn label."
	headroomHelp = "Time until the stream's watermark falls behind the API's horizon and data is lost. " +
		"Above CALLPUB_METRICS_PER_STREAM_MAX streams: the least of each direction, without a vdn label."
	pendingHelp = "Calls seen in progress and not yet seen completed. " +
		"Above CALLPUB_METRICS_PER_STREAM_MAX streams: the sum of each direction, without a vdn label."
)

var (
	lagDesc         = prometheus.NewDesc("callpub_stream_lag_seconds", lagHelp, []string{"vdn", "direction"}, nil)
	headroomDesc    = prometheus.NewDesc("callpub_horizon_headroom_seconds", headroomHelp, []string{"vdn", "direction"}, nil)
	pendingDesc     = prometheus.NewDesc("callpub_pending_calls", pendingHelp, []string{"vdn", "direction"}, nil)
	dirLagDesc      = prometheus.NewDesc("callpub_stream_lag_seconds", lagHelp, []string{"direction"}, nil)
	dirHeadroomDesc = prometheus.NewDesc("callpub_horizon_headroom_seconds", headroomHelp, []string{"direction"}, nil)
	dirPendingDesc  = prometheus.NewDesc("callpub_pending_calls", pendingHelp, []string{"direction"}, nil)
	minHeadroomDesc = prometheus.NewDesc("callpub_min_horizon_headroom_seconds",
		"The smallest horizon headroom of any stream of this replica.", nil, nil)
)

// SetStreamSeriesMax sets how many streams the poller may own and still
// export lag, horizon headroom and pending calls per stream (three series
// each). Above it, and at 0, those gauges have one series per direction
// instead, under the same names: the largest lag, the least headroom, the
// sum of pending calls. Alerts that take the max, min or sum without vdn
// and direction read the same either way; a scrape of 10,000 streams' 30,000
// series held some 15 MiB while it was gathered.
func (p *Poller) SetStreamSeriesMax(n int) { p.m.streams.max.Store(int64(n)) }

// streamCollector computes per-stream gauges at scrape time, so they stay
// true for streams that are polled rarely. It describes nothing (it is an
// unchecked collector): its series have a vdn label or not, by
// SetStreamSeriesMax.
type streamCollector struct {
	p   *Poller
	max atomic.Int64
}

func newStreamCollector(p *Poller) *streamCollector {
	c := &streamCollector{p: p}
	c.max.Store(DefaultStreamSeriesMax)
	return c
}

func (c *streamCollector) Describe(chan<- *prometheus.Desc) {}

// streamGauges are one stream's gauges, or one direction's aggregate: its
// earliest watermark (the largest lag, the least headroom) and the sum of
// its pending calls.
type streamGauges struct {
	vdn     int
	dir     Direction
	w       time.Time
	pending int
}

// Collect takes the watermarks under the poller's lock, then computes and
// sends the gauges without it: a scrape of tens of thousands of samples
// must not hold the workers' commits.
func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	p := c.p
	now := time.Now()
	perStream := len(p.streams) <= int(c.max.Load())
	snap, minW := c.snapshot(now, perStream)
	for _, g := range snap {
		lag, headroom := now.Sub(g.w).Seconds(), Headroom(g.w, now, p.reach).Seconds()
		if perStream {
			vdn := strconv.Itoa(g.vdn)
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, lag, vdn, string(g.dir))
			ch <- prometheus.MustNewConstMetric(headroomDesc, prometheus.GaugeValue, headroom, vdn, string(g.dir))
			ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(g.pending), vdn, string(g.dir))
			continue
		}
		ch <- prometheus.MustNewConstMetric(dirLagDesc, prometheus.GaugeValue, lag, string(g.dir))
		ch <- prometheus.MustNewConstMetric(dirHeadroomDesc, prometheus.GaugeValue, headroom, string(g.dir))
		ch <- prometheus.MustNewConstMetric(dirPendingDesc, prometheus.GaugeValue, float64(g.pending), string(g.dir))
	}
	// Headroom only grows with the watermark: the earliest has the least.
	ch <- prometheus.MustNewConstMetric(minHeadroomDesc, prometheus.GaugeValue, Headroom(minW, now, p.reach).Seconds())
}

// snapshot is every stream's gauges (perStream), or each direction's
// aggregate, and the earliest watermark of all, read under the poller's
// lock.
func (c *streamCollector) snapshot(now time.Time, perStream bool) (snap []streamGauges, minW time.Time) {
	p := c.p
	if perStream {
		snap = make([]streamGauges, 0, len(p.streams))
	} else {
		snap = make([]streamGauges, 0, len(p.cfg.Directions))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, ls := range p.streams {
		g := streamGauges{vdn: ls.VDN, dir: ls.Dir, w: p.watermark(ls, now), pending: len(ls.state.Pending)}
		if i == 0 || g.w.Before(minW) {
			minW = g.w
		}
		if perStream {
			snap = append(snap, g)
			continue
		}
		j := slices.IndexFunc(snap, func(a streamGauges) bool { return a.dir == g.dir })
		if j < 0 {
			snap = append(snap, streamGauges{dir: g.dir, w: g.w})
			j = len(snap) - 1
		}
		a := &snap[j]
		a.pending += g.pending
		if g.w.Before(a.w) {
			a.w = g.w
		}
	}
	return snap, minW
}
