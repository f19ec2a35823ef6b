package ccms

import (
	"context"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"
)

// answer is what the upstream answers the i-th attempt of a phase.
type answer func(i int) Outcome

var (
	answerOK  answer = func(int) Outcome { return Outcome{Class: ClassOK, Status: 200} }
	answer429 answer = func(int) Outcome {
		return Outcome{Class: ClassTransient, Status: 429, RetryAfter: time.Second}
	}
)

// share answers a pushback (429 with Retry-After: 1) to a share of the
// attempts drawn at random with a fixed seed, and 200 to the others.
func share(p float64, seed uint64) answer {
	rng := rand.New(rand.NewPCG(seed, seed))
	return func(int) Outcome {
		if rng.Float64() < p {
			return answer429(0)
		}
		return answerOK(0)
	}
}

// phase is a stretch of time during which the upstream answers every
// attempt with its answer.
type phase struct {
	d      time.Duration
	answer answer
}

// point is the rate after an attempt, at a time since the drive started.
type point struct {
	at   time.Duration
	rate float64
}

// drive sends attempts through b as fast as it lets them (demand always
// exceeds the budget), answered at once as the phases say, and returns the
// rate after every attempt. Run it inside a synctest bubble: the time is
// virtual.
func drive(t *testing.T, b *Budget, phases ...phase) []point {
	t.Helper()
	start := time.Now()
	var trace []point
	for _, ph := range phases {
		end := time.Now().Add(ph.d)
		for i := 0; time.Now().Before(end); i++ {
			ctx, cancel := context.WithDeadline(t.Context(), end)
			err := b.Wait(ctx)
			cancel()
			if err != nil {
				break // the phase ended while waiting
			}
			b.Observe(ph.answer(i))
			trace = append(trace, point{time.Since(start), b.Rate()})
		}
	}
	return trace
}

// between returns the points of trace in [from, to).
func between(trace []point, from, to time.Duration) []point {
	var out []point
	for _, p := range trace {
		if p.at >= from && p.at < to {
			out = append(out, p)
		}
	}
	return out
}

func lowest(trace []point) float64 {
	low := trace[0].rate
	for _, p := range trace {
		low = min(low, p.rate)
	}
	return low
}

// The congestion rule: faults, even many, leave the rate alone; a large
// share of pushback cuts it toward the floor; its end restores it in
// seconds.
func TestBudgetTellsFaultsFromCongestion(t *testing.T) {
	const full = 50.0
	tests := []struct {
		name   string
		phases []phase
		check  func(t *testing.T, trace []point)
	}{
		{
			name:   "10% random 429s do not lower the rate",
			phases: []phase{{time.Minute, share(0.10, 1)}},
			check: func(t *testing.T, trace []point) {
				if low := lowest(trace); low != full {
					t.Errorf("the rate fell to %v, want it to stay at %v", low, full)
				}
			},
		},
		{
			name:   "a fifth of the answers pushing back at random does not lower the rate",
			phases: []phase{{time.Minute, share(0.20, 2)}},
			check: func(t *testing.T, trace []point) {
				if low := lowest(trace); low != full {
					t.Errorf("the rate fell to %v, want it to stay at %v", low, full)
				}
			},
		},
		{
			name:   "every request 429 halves the rate toward the floor, once a second at most",
			phases: []phase{{30 * time.Second, answer429}},
			check: func(t *testing.T, trace []point) {
				if got := trace[len(trace)-1].rate; got != full/64 {
					t.Errorf("after 30s of 429s the rate is %v, want the floor %v", got, full/64)
				}
				for i := 1; i < len(trace); i++ {
					prev, p := trace[i-1], trace[i]
					if p.rate > prev.rate {
						t.Errorf("the rate grew from %v to %v at %v while every answer was 429", prev.rate, p.rate, p.at)
					}
					if p.rate < prev.rate && p.rate != prev.rate/2 && p.rate != full/64 {
						t.Errorf("the rate fell from %v to %v at %v, want a halving", prev.rate, p.rate, p.at)
					}
				}
				cuts := 0
				var lastCut time.Duration
				for i := 1; i < len(trace); i++ {
					if trace[i].rate < trace[i-1].rate {
						if cuts > 0 && trace[i].at-lastCut < time.Second {
							t.Errorf("cut at %v, %v after the one before", trace[i].at, trace[i].at-lastCut)
						}
						cuts++
						lastCut = trace[i].at
					}
				}
				if cuts != 6 {
					t.Errorf("%d cuts, want 6 (50/s to the floor 50/64)", cuts)
				}
				if lastCut > 10*time.Second {
					t.Errorf("the floor was reached after %v, want within 10s", lastCut)
				}
			},
		},
		{
			name:   "the rate recovers to full within 6 seconds of the pushback stopping",
			phases: []phase{{30 * time.Second, answer429}, {time.Minute, answerOK}},
			check: func(t *testing.T, trace []point) {
				after := between(trace, 30*time.Second, 90*time.Second)
				if after[0].rate != full/64 {
					t.Fatalf("the rate was %v when the pushback stopped, want the floor %v", after[0].rate, full/64)
				}
				for _, p := range after {
					if p.rate == full {
						if took := p.at - 30*time.Second; took > 6*time.Second {
							t.Errorf("back to full %v after the pushback stopped, want within 6s", took)
						}
						return
					}
				}
				t.Errorf("the rate never recovered: %v a minute later", after[len(after)-1].rate)
			},
		},
		{
			name: "a third of the answers pushing back holds a cut rate where it is",
			phases: []phase{{1500 * time.Millisecond, answer429},
				{time.Minute, func(i int) Outcome { return map[bool]answer{true: answer429, false: answerOK}[i%3 == 0](i) }}},
			check: func(t *testing.T, trace []point) {
				held := between(trace, 10*time.Second, 60*time.Second)
				if r := held[0].rate; r >= full || r <= full/64 {
					t.Fatalf("the rate was %v 10s into a third of pushback, want it cut, above the floor", r)
				}
				for _, p := range held {
					if p.rate != held[0].rate {
						t.Fatalf("the rate moved to %v at %v under a steady third of pushback", p.rate, p.at)
					}
				}
			},
		},
		{
			name:   "most answers pushing back cuts the rate even when some succeed",
			phases: []phase{{20 * time.Second, share(0.7, 3)}},
			check: func(t *testing.T, trace []point) {
				if got := trace[len(trace)-1].rate; got > full/8 {
					t.Errorf("after 20s of 70%% pushback the rate is %v, want at most %v", got, full/8)
				}
			},
		},
		{
			name: "502s, 503s, 504s and timeouts push back like 429s",
			phases: []phase{{5 * time.Second, func(i int) Outcome {
				return Outcome{Class: ClassTransient, Status: []int{502, 503, 504, 0}[i%4]}
			}}},
			check: func(t *testing.T, trace []point) {
				if got := trace[len(trace)-1].rate; got >= full/4 {
					t.Errorf("after 5s of gateway errors and timeouts the rate is %v, want it cut at least three times", got)
				}
			},
		},
		{
			name: "401s, result-code failures, 500s and broken bodies are faults, not pushback",
			phases: []phase{{10 * time.Second, func(i int) Outcome {
				return []Outcome{{Class: ClassAuth, Status: 401}, {Class: ClassTransientLimited, Status: 200},
					{Class: ClassTransient, Status: 500}, {Class: ClassTransient, Status: 200}}[i%4]
			}}},
			check: func(t *testing.T, trace []point) {
				if low := lowest(trace); low != full {
					t.Errorf("the rate fell to %v, want it to stay at %v", low, full)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := NewBudget(full, 4)
				tc.check(t, drive(t, b, tc.phases...))
			})
		})
	}
}

// A trickle of requests, far below the rate, is judged on its last ten
// answers, not on the one or two of the last couple of seconds: a lone 429
// among them is a fault, a run of them is congestion.
func TestBudgetJudgesATrickleOnSeveralAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBudget(50, 4)
		every := func(d time.Duration, o Outcome) {
			time.Sleep(d) // the trickle's pace; virtual time
			b.Observe(o)
		}
		for i := range 20 {
			o := answerOK(i)
			if i%5 == 4 {
				o = answer429(i)
			}
			every(3*time.Second, o)
			if got := b.Rate(); got != 50 {
				t.Fatalf("after answer %d (a 429 every fifth, one every 3s) the rate is %v, want 50", i, got)
			}
		}
		for range 6 {
			every(3*time.Second, answer429(0))
		}
		if got := b.Rate(); got >= 50 {
			t.Errorf("after six 429s in a row, one every 3s, the rate is %v, want it cut", got)
		}
	})
}

func TestBudgetLetsOtherRequestsThroughDuringARetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBudget(1000, 10)
		start := time.Now()
		b.Observe(Outcome{Class: ClassTransient, Status: 429, RetryAfter: 7 * time.Second})
		if err := b.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("Wait returned after %v: one Retry-After paused every request", waited)
		}
	})
}

func TestBudgetDoesNotCountCancelledAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBudget(100, 4)
		for range 50 {
			b.Observe(Outcome{Class: ClassCanceled})
		}
		if got := b.PushBackShare(); got != 0 {
			t.Errorf("push-back share %v after cancelled attempts only, want 0", got)
		}
		b.Observe(Outcome{Class: ClassTransient, Status: 429})
		if got := b.PushBackShare(); got != 1 {
			t.Errorf("push-back share %v after one 429 and cancelled attempts, want 1: they are not answers", got)
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

func TestSetLimitScalesTheRateAndKeepsACutInForce(t *testing.T) {
	b := NewBudget(100, 10)
	b.SetLimit(25)
	if b.Limit() != 25 || b.Rate() != 25 {
		t.Errorf("limit %v, rate %v after SetLimit(25), want 25 and 25", b.Limit(), b.Rate())
	}
	b.mu.Lock()
	b.rate = b.max / 4 // as after two cuts
	b.mu.Unlock()
	b.SetLimit(50)
	if b.Limit() != 50 || b.Rate() != 12.5 {
		t.Errorf("limit %v, rate %v after a cut to a quarter and SetLimit(50), want 50 and 12.5", b.Limit(), b.Rate())
	}
	b.SetLimit(0)
	if b.Limit() != 50 {
		t.Errorf("SetLimit(0) changed the limit to %v", b.Limit())
	}
}
