package ccms

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestBudgetCutsOnPushBackAndRecoversSlowly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBudget(100, 4)
		limited := Outcome{Class: ClassTransient, Status: 429}
		ok := Outcome{Class: ClassOK, Status: 200}

		b.Observe(limited)
		if got := b.Rate(); got != 50 {
			t.Fatalf("after a 429 the rate is %v, want 50", got)
		}
		b.Observe(limited) // the same burst of failures: one signal
		if got := b.Rate(); got != 50 {
			t.Errorf("a second 429 within a second cut again: %v", got)
		}
		time.Sleep(time.Second)
		b.Observe(Outcome{Class: ClassTransient, Status: 0}) // a timeout
		if got := b.Rate(); got != 25 {
			t.Errorf("after a timeout a second later the rate is %v, want 25", got)
		}
		b.Observe(Outcome{Class: ClassAuth, Status: 401})
		b.Observe(Outcome{Class: ClassTransientLimited, Status: 200})
		if got := b.Rate(); got != 25 {
			t.Errorf("401 and result-code failures are not push-back, but the rate moved to %v", got)
		}
		for range 10 {
			b.Observe(ok)
		}
		if got := b.Rate(); got != 45 {
			t.Errorf("ten successes recovered the rate to %v, want 45 (2 per success)", got)
		}
		for range 100 {
			b.Observe(ok)
		}
		if got := b.Rate(); got != 100 {
			t.Errorf("the rate recovered to %v, want the configured 100", got)
		}
		for range 20 {
			time.Sleep(time.Second)
			b.Observe(limited)
		}
		if got := b.Rate(); got != 100.0/64 {
			t.Errorf("the rate fell to %v, want the floor %v", got, 100.0/64)
		}
	})
}

func TestBudgetHonoursRetryAfterForEveryRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBudget(1000, 10)
		start := time.Now()
		b.Observe(Outcome{Class: ClassTransient, Status: 429, RetryAfter: 7 * time.Second})
		if err := b.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 7*time.Second {
			t.Errorf("Wait returned after %v, want the 7s Retry-After", waited)
		}
	})
}

func TestBudgetPacesRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBudget(10, 1) // 10 requests/s, no burst beyond one
		start := time.Now()
		for range 21 {
			if err := b.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if got := time.Since(start); got < 2*time.Second || got > 2100*time.Millisecond {
			t.Errorf("21 requests at 10/s took %v, want about 2s", got)
		}
	})
}
