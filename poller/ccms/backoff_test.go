package ccms

import (
	"testing"
	"time"
)

func TestBackoffGrowsToItsCeilingAndHonoursRetryAfter(t *testing.T) {
	for n := 1; n <= 12; n++ {
		d := Backoff(n, time.Second, time.Minute, 0)
		ceiling := min(time.Second<<(n-1), time.Minute)
		if d < ceiling/2 || d > ceiling {
			t.Errorf("failure %d: backoff %v outside [%v, %v]", n, d, ceiling/2, ceiling)
		}
	}
	if d := Backoff(1, time.Second, time.Minute, 90*time.Second); d != 90*time.Second {
		t.Errorf("Retry-After 90s gave %v", d)
	}
}
