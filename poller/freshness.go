package poller

import (
	"math"
	"sync"
	"time"
)

// Freshness is how late the calls of the recent past reached Kafka: the
// delay from each completed call's row (its logDate, by the server's clock)
// to Kafka's acknowledgement of its first publication, over the last
// WindowSeconds. Calls published again with other content, calls published
// without an end and control records do not count.
type Freshness struct {
	WindowSeconds float64 `json:"window_seconds"`
	Calls         int     `json:"calls"`
	P50Seconds    float64 `json:"p50_seconds,omitzero"`
	P99Seconds    float64 `json:"p99_seconds,omitzero"`
}

const (
	// freshSlots one-minute slots make the window /status reports on.
	freshSlots = 10
	// A delay falls in bin 0 below a second, else in bin
	// 1 + ⌊delayBinsPerDoubling × log2(seconds)⌋: a bin spans 9 %, and the
	// last bin (from 2^17 s, 36 hours) is open.
	delayBinsPerDoubling = 8
	delayBins            = 2 + 17*delayBinsPerDoubling
)

// recentDelays holds the delays of the last freshSlots minutes as counts in
// log-spaced bins: 10 × 138 counters, however many calls go by. The zero
// value is empty and ready.
type recentDelays struct {
	mu    sync.Mutex
	slots [freshSlots]delaySlot
}

type delaySlot struct {
	minute int64 // Unix minute whose delays n counts
	n      [delayBins]uint32
}

// add counts a delay observed at now.
func (r *recentDelays) add(now time.Time, d time.Duration) {
	minute := now.Unix() / 60
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.slots[minute%freshSlots]
	if s.minute != minute {
		*s = delaySlot{minute: minute}
	}
	s.n[delayBin(d)]++
}

// summary is the count and the p50 and p99 of the delays of the minute of
// now and the freshSlots-1 minutes before it.
func (r *recentDelays) summary(now time.Time) Freshness {
	minute := now.Unix() / 60
	var n [delayBins]uint64
	var total uint64
	r.mu.Lock()
	for _, s := range r.slots {
		if s.minute <= minute && s.minute > minute-freshSlots {
			for i, c := range s.n {
				n[i] += uint64(c)
				total += uint64(c)
			}
		}
	}
	r.mu.Unlock()
	f := Freshness{WindowSeconds: freshSlots * 60, Calls: int(total)}
	if total > 0 {
		f.P50Seconds, f.P99Seconds = quantile(&n, total, 0.5), quantile(&n, total, 0.99)
	}
	return f
}

// delayBin is the bin of a delay; a negative delay (a row stamped after
// the acknowledgement by the clocks used) counts as none.
func delayBin(d time.Duration) int {
	if d < time.Second {
		return 0
	}
	b := 1 + int(delayBinsPerDoubling*math.Log2(d.Seconds()))
	return min(b, delayBins-1)
}

// binEdges are the bounds of bin i in seconds; the last bin is given the
// width of the one before it.
func binEdges(i int) (lo, hi float64) {
	if i == 0 {
		return 0, 1
	}
	lo = math.Exp2(float64(i-1) / delayBinsPerDoubling)
	return lo, lo * math.Exp2(1.0/delayBinsPerDoubling)
}

// quantile is the q-quantile of the counts n (total of them), interpolated
// linearly inside its bin, as Prometheus' histogram_quantile does.
func quantile(n *[delayBins]uint64, total uint64, q float64) float64 {
	rank := q * float64(total)
	var below float64
	for i, c := range n {
		if c == 0 {
			continue
		}
		if below+float64(c) >= rank {
			lo, hi := binEdges(i)
			return lo + (hi-lo)*(rank-below)/float64(c)
		}
		below += float64(c)
	}
	lo, _ := binEdges(delayBins - 1)
	return lo
}
