package poller

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// hand bounds the rows all turns hold at once: read, classified, encoded
// and waiting on Kafka until their commit. Each turn's own rows are bounded
// by its window (1.5 × Config.WindowRows, pieces.go), but with dozens of
// workers reading busy streams at once — a first start's sweeps, midnight's
// reconciliations — those bounds add up to most of the process's memory.
// A turn takes the rows its window is expected to hold before reading and
// waits while that would pass the limit; one that finds more takes them on
// top without waiting (the limit is soft by one window), and gives all back
// after its commit. A turn that is alone never waits, so a window larger
// than the limit is still read.
type hand struct {
	limit int
	mu    sync.Mutex
	held  int
	freed chan struct{} // closed and replaced whenever rows are given back
}

func newHand(limit int) *hand { return &hand{limit: limit, freed: make(chan struct{})} }

// take waits until n more rows fit in the limit (a quarter of it for a
// background turn: a sweep, a reconciliation, a last-chance read, a replay;
// so fresh reads always find room), or until nothing is held, and takes
// them; it fails only when ctx ends first.
func (h *hand) take(ctx context.Context, n int, background bool) error {
	limit := h.limit
	if background {
		limit /= backgroundShare
	}
	for {
		h.mu.Lock()
		if h.held == 0 || h.held+n <= limit {
			h.held += n
			h.mu.Unlock()
			return nil
		}
		freed := h.freed
		h.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-freed:
		}
	}
}

// add takes n more rows without waiting: a window held more than expected.
func (h *hand) add(n int) {
	h.mu.Lock()
	h.held += n
	h.mu.Unlock()
}

// put gives n rows back.
func (h *hand) put(n int) {
	h.mu.Lock()
	h.held -= n
	close(h.freed)
	h.freed = make(chan struct{})
	h.mu.Unlock()
}

// rows is how many rows are held now.
func (h *hand) rows() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held
}

// handRows is the limit of hand in windows of Config.WindowRows rows: with
// the default 1000, 8,000 rows, some 23 MB, for a first start's catch-up,
// whose windows hold about WindowRows rows each. With 4 it took up to 1.4 ×
// as long behind a gateway that answers some requests after seconds: a
// window waiting on a slow answer holds its share meanwhile
// (BenchmarkFirstStartBehindAFaultyGateway: 6.1–8.3 s against 6.1–6.7 s).
// backgroundShare: the long lanes fill at most a quarter of it, 2,000 rows,
// some 6 MB.
const (
	handRows        = 8
	backgroundShare = 4
)

// collector exports the rows held.
func (h *hand) collector() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "callpub_rows_held", Help: "Rows read and not yet committed, over all turns: reads wait while they would take it past 8 × CALLPUB_POLL_WINDOW_ROWS (sweeps, reconciliations, last-chance reads and replays past a quarter of that).",
	}, func() float64 { return float64(h.rows()) })
}
