package ccms

import (
	"math/rand/v2"
	"time"
)

// Backoff is the wait after the n-th consecutive failure (n >= 1): full
// jitter over the ceiling c = base·2^(n−1), capped at ceiling, that is a
// uniformly random duration in [c/2, c], and at least retryAfter (which may
// exceed ceiling). The client retries a page with it; the poller reschedules
// a failed stream with it.
func Backoff(n int, base, ceiling, retryAfter time.Duration) time.Duration {
	c := base
	for i := 1; i < n && c < ceiling; i++ {
		c *= 2
	}
	c = min(c, ceiling)
	if c > 1 {
		c = c/2 + rand.N(c/2+1)
	}
	return max(c, retryAfter)
}
