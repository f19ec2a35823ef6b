package poller

import (
	"time"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller/ccms"
)

// Window is a half-open span of filter time [Start, End), in milliseconds.
// The conversion to the API's inclusive endDate happens only in poller/ccms.
type Window struct {
	Start, End time.Time
}

// Empty reports whether w holds no instant.
func (w Window) Empty() bool { return !w.End.After(w.Start) }

func (w Window) String() string {
	return w.Start.UTC().Format(time.RFC3339Nano) + "/" + w.End.UTC().Format(time.RFC3339Nano)
}

// WindowConfig holds the knobs of window planning.
type WindowConfig struct {
	Lookback time.Duration // re-read this much before the cursor on every fresh step
	Lag      time.Duration // never read closer to now than this (rows still being written)
	MaxSpan  time.Duration // the cursor advances at most this much per step (long catch-ups)
}

// FreshPlan is what one fresh step of a stream reads and where its cursor goes.
type FreshPlan struct {
	Read      Window // what to fetch
	Gap       Window // lost to the API's horizon before this step; Empty when none
	NewCursor time.Time
	// Behind reports that the cursor will still be more than MaxSpan behind
	// now−lag after this step: the stream is catching up.
	Behind bool
	// Idle reports that there is nothing new to read (the cursor is at now−lag).
	Idle bool
}

// PlanFresh plans one fresh step from cursor at now. A zero cursor means the
// stream is new and starts at the API's earliest reachable time. Pure: every
// input is a parameter.
//
//	from = max(cursor − lookback, earliest)
//	to   = min(now − lag, cursor + maxSpan, latest)
//
// If the cursor is already before the API's earliest allowed begin, the span
// [cursor, earliest) is reported as a gap and the step goes on from earliest.
func PlanFresh(cursor, now time.Time, reach ccms.Reach, c WindowConfig) FreshPlan {
	now = now.Truncate(time.Millisecond)
	earliest, latest := reach.Range(now)
	latest = latest.Add(time.Millisecond).Truncate(time.Millisecond) // exclusive end
	var p FreshPlan
	if cursor.IsZero() {
		cursor = earliest
	}
	cursor = cursor.Truncate(time.Millisecond)
	if cursor.Before(earliest) {
		p.Gap = Window{Start: cursor, End: earliest}
		cursor = earliest
	}
	from := maxTime(cursor.Add(-c.Lookback), earliest)
	limit := minTime(now.Add(-c.Lag), latest)
	to := minTime(limit, cursor.Add(c.MaxSpan))
	if !to.After(cursor) {
		p.Idle = true
		p.NewCursor = cursor
		return p
	}
	p.Read = Window{Start: from, End: to}
	p.NewCursor = to
	p.Behind = to.Before(limit)
	return p
}

// SweepWindow is the span a sweep re-reads: from sweepLookback before now (or
// the oldest pending call, if older) up to the cursor, clamped to the API's
// reach. Sweeps catch long calls and slow ingestion; they never move the cursor.
func SweepWindow(cursor, oldestPending, now time.Time, reach ccms.Reach, sweepLookback time.Duration) Window {
	now = now.Truncate(time.Millisecond)
	earliest, _ := reach.Range(now)
	from := now.Add(-sweepLookback)
	if !oldestPending.IsZero() && oldestPending.Before(from) {
		from = oldestPending
	}
	from = maxTime(from, earliest).Truncate(time.Millisecond)
	return Window{Start: from, End: cursor.Truncate(time.Millisecond)}
}

// DayStart is 00:00 of t's day in loc (DST-correct: built with time.Date).
func DayStart(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
}

// DayKey names t's day in loc as YYYYMMDD, the form used for sealed days.
func DayKey(t time.Time, loc *time.Location) string { return t.In(loc).Format("20060102") }

// Yesterday is the whole of the day before now's day in loc: [00:00 yesterday, 00:00 today).
func Yesterday(now time.Time, loc *time.Location) Window {
	today := DayStart(now, loc)
	return Window{Start: today.AddDate(0, 0, -1), End: today}
}

// Horizon is the earliest instant the API still returns at now: 00:00 of the
// previous day, in the zone(s) of reach.
func Horizon(now time.Time, reach ccms.Reach) time.Time {
	earliest, _ := reach.Range(now)
	return earliest
}

// Headroom is how long until a stream whose oldest unfinished point is w falls
// behind the API's horizon: the horizon passes w at 00:00 of the second day
// after w's day (the first such midnight of either zone, in mode both). Zero
// or negative means data is already being lost.
func Headroom(w, now time.Time, reach ccms.Reach) time.Duration {
	return reach.LostAt(w).Sub(now)
}

// oldestPending is the earliest filter time of ps (zero when empty): with the
// cursor, it makes a stream's watermark and the start of its sweeps.
func oldestPending(ps []dedupe.Pending) time.Time {
	var t time.Time
	for _, p := range ps {
		if t.IsZero() || p.FilterTime.Before(t) {
			t = p.FilterTime
		}
	}
	return t
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
