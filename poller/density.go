package poller

import "time"

// density is what a stream's reads have taught about how many rows its
// windows hold: rows per second of filter time, averaged over its reads with
// each older read weighing half as much as the next. The zero value knows
// nothing. Windows are sized with it: a request costs the same for 0 rows as
// for a full page, so a quiet stream reads its whole span at once and a busy
// one a span expected to hold Config.WindowRows rows.
type density struct{ rows, secs float64 }

// observe adds a read of span that returned rows.
func (d *density) observe(rows int, span time.Duration) {
	if span <= 0 {
		return
	}
	d.rows = d.rows/2 + float64(rows)
	d.secs = d.secs/2 + span.Seconds()
}

// learn replaces what is known by a window's count: a window found to hold
// count rows over span is evidence enough on its own (it is read again
// narrower at once).
func (d *density) learn(count int, span time.Duration) {
	if span > 0 {
		d.rows, d.secs = float64(count), span.Seconds()
	}
}

// maxSpanSecs is a span no window reaches: the API holds about two days.
const maxSpanSecs = 365 * 24 * 3600

func (d density) known() bool { return d.secs > 0 }

// span is the length of a window expected to hold n rows, at least a second;
// 0 means no limit: nothing is known yet, or no row was ever seen.
func (d density) span(n int) time.Duration {
	if !d.known() || d.rows <= 0 {
		return 0
	}
	secs := float64(n) * d.secs / d.rows
	if secs >= maxSpanSecs {
		return 0 // beyond any window (and beyond what a Duration holds)
	}
	return max(time.Duration(secs*float64(time.Second)), time.Second)
}

// expect is how many rows a window of span is expected to hold; 0 when
// nothing is known (check known first).
func (d density) expect(span time.Duration) float64 {
	if !d.known() {
		return 0
	}
	return d.rows / d.secs * span.Seconds()
}
