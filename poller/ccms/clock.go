package ccms

import (
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// serverClock is what the client knows of the server's clock: its offset
// from ours, learned from the Date header of every answer (smoothed, and
// bounded by maxClockOffset), or Config.ClockOffset when that is set (a
// manual override: nothing is learned). Windows end, the API's day bounds
// and signature timestamps all follow the server's clock, so a server whose
// clock runs minutes ahead is read up to its own now.
type serverClock struct {
	manual time.Duration

	mu       sync.Mutex
	learned  time.Duration
	samples  int
	lastWarn time.Time
}

const (
	// maxClockOffset bounds the learned offset: beyond it the signature
	// (5 minutes of tolerance) fails anyway, and a wild Date header must not
	// move every window by hours.
	maxClockOffset = 10 * time.Minute
	// warnClockOffset is the offset worth a warning (at most every 10 minutes).
	warnClockOffset = time.Minute
	// clockWeight is the weight of a new sample once there are a few: Date
	// headers have whole seconds, so single samples are off by up to half a
	// second.
	clockWeight = 0.1
)

// offset is the server's clock minus ours.
func (sc *serverClock) offset() time.Duration {
	if sc.manual != 0 {
		return sc.manual
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.learned
}

// observe learns from an answer's Date header, sent at sent and received at
// received (our clock). The header has whole seconds: the server's time at
// the middle of the round trip is the header plus half a second, on average.
func (sc *serverClock) observe(log *slog.Logger, date string, sent, received time.Time) {
	if sc.manual != 0 || date == "" {
		return
	}
	at, err := http.ParseTime(date)
	if err != nil {
		return
	}
	mid := sent.Add(received.Sub(sent) / 2)
	sample := at.Add(500 * time.Millisecond).Sub(mid)
	sample = max(-maxClockOffset, min(maxClockOffset, sample))
	sc.mu.Lock()
	defer sc.mu.Unlock()
	switch sc.samples++; {
	case sc.samples == 1:
		sc.learned = sample
	case sc.samples <= 10: // a plain mean of the first ten
		sc.learned += (sample - sc.learned) / time.Duration(sc.samples)
	default:
		sc.learned += time.Duration(clockWeight * float64(sample-sc.learned))
	}
	if off := sc.learned; (off > warnClockOffset || off < -warnClockOffset) && received.Sub(sc.lastWarn) >= 10*time.Minute && sc.samples >= 3 {
		sc.lastWarn = received
		log.Warn("CC-CMS's clock differs from this host's (from its Date headers); windows, day bounds and signatures follow the server's clock",
			"offset", off.Round(time.Second).String(), "hint", "check NTP on both ends; CALLPUB_CCMS_CLOCK_OFFSET overrides what is learned")
	}
}

// Now is the server's time now, as well as the client knows it: our clock
// plus the learned offset (or CALLPUB_CCMS_CLOCK_OFFSET).
func (c *Client) Now() time.Time { return c.now().Add(c.clock.offset()) }

// ClockOffset is the server's clock minus ours, as learned (or configured).
func (c *Client) ClockOffset() time.Duration { return c.clock.offset() }
