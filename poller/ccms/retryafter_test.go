package ccms

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// roundTripFunc answers requests without a network, so that a client can
// run inside a synctest bubble, where only virtual time passes.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// respond builds an answer to r.
func respond(r *http.Request, status int, header map[string]string, body []byte) *http.Response {
	h := http.Header{}
	for k, v := range header {
		h.Set(k, v)
	}
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: h, Request: r,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
}

// transportClient is a client over rt with RetryMaxDelay 20s, the given
// attempts, and the limiter, observer and log given.
func transportClient(t *testing.T, rt http.RoundTripper, attempts int, lim Limiter, observe func(Outcome), logs io.Writer) *Client {
	t.Helper()
	cfg := Config{URL: "https://ccms.test", AK: testAK, SK: testSK, Timezone: "UTC", Timeout: 10 * time.Second,
		MaxAttempts: attempts, RetryBaseDelay: time.Millisecond, RetryMaxDelay: 20 * time.Second}
	c, err := NewClient(cfg, Deps{Transport: rt, Limiter: lim, Observe: observe, Now: tickingClock(),
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A Retry-After delays the request that got it, up to the retry maximum
// (Config.RetryMaxDelay), and the client says once when it cut one, however
// many answers it cut.
func TestRetryAfterDelaysTheRequestThatGotIt(t *testing.T) {
	dayAhead := testNow.Add(24 * time.Hour).Format(http.TimeFormat)
	tests := []struct {
		name       string
		retryAfter string
		want       time.Duration
		wantWarn   bool
	}{
		{"a Retry-After of a day is capped at the retry maximum and logged once", "86400", 20 * time.Second, true},
		{"a Retry-After of a year is capped at the retry maximum and logged once", "31536000", 20 * time.Second, true},
		{"an HTTP date a day ahead is capped at the retry maximum and logged once", dayAhead, 20 * time.Second, true},
		{"a Retry-After under the retry maximum is waited in full", "7", 7 * time.Second, false},
		{"a Retry-After equal to the retry maximum is waited in full", "20", 20 * time.Second, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var (
					mu    sync.Mutex
					sent  []time.Time
					logs  bytes.Buffer
					outs  []Outcome
					start = time.Now()
				)
				rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					mu.Lock()
					sent = append(sent, time.Now())
					mu.Unlock()
					return respond(r, 429, map[string]string{"Retry-After": tc.retryAfter}, []byte("slow down")), nil
				})
				c := transportClient(t, rt, 3, nil, func(o Outcome) { outs = append(outs, o) }, &logs)
				_, err := c.QueryCalls(t.Context(), testQuery)
				var se *StatusError
				if !errors.As(err, &se) || se.RetryAfter != tc.want || RetryAfter(err) != tc.want {
					t.Fatalf("got %v, want a StatusError with RetryAfter %v", err, tc.want)
				}
				if len(sent) != 3 {
					t.Fatalf("%d attempts, want 3", len(sent))
				}
				for i, at := range sent {
					if want := time.Duration(i) * tc.want; at.Sub(start) != want {
						t.Errorf("attempt %d sent at +%v, want +%v: each retry waits for the Retry-After", i+1, at.Sub(start), want)
					}
				}
				for _, o := range outs {
					if o.RetryAfter != tc.want {
						t.Errorf("outcome %+v, want RetryAfter %v", o, tc.want)
					}
				}
				checkCapWarning(t, logs.String(), c.Host(), tc.wantWarn)
			})
		})
	}
}

// An upstream that answers every request with a Retry-After of a day costs
// one warning a minute, each counting the answers capped since the last.
func TestCappedRetryAftersAreReportedOnceAMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return respond(r, 429, map[string]string{"Retry-After": "86400"}, nil), nil
		})
		var logs bytes.Buffer
		c := transportClient(t, rt, 1, nil, nil, &logs)
		for range 7 { // one page every 20s for 2 minutes
			if _, err := c.QueryCalls(t.Context(), testQuery); RetryAfter(err) != 20*time.Second {
				t.Fatalf("got %v, want a Retry-After capped at 20s", err)
			}
			time.Sleep(20 * time.Second)
		}
		var capped []float64
		for line := range strings.Lines(logs.String()) {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatal(err)
			}
			capped = append(capped, m["capped"].(float64))
		}
		if want := []float64{1, 3, 3}; !slices.Equal(capped, want) {
			t.Errorf("warnings counted %v capped answers, want %v (at 0s, 60s, 120s)", capped, want)
		}
	})
}

// While one page waits out its Retry-After, every other request goes on:
// they share the request budget, not the wait.
func TestRetryAfterDoesNotDelayOtherRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ok := readFixture(t, "numbers.json")
		var mu sync.Mutex
		limited := false
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			defer mu.Unlock()
			if bytes.Contains(body, []byte(`"vdn":25`)) && !limited {
				limited = true
				return respond(r, 429, map[string]string{"Retry-After": "10"}, nil), nil
			}
			return respond(r, 200, nil, ok), nil
		})
		b := NewBudget(100, 4)
		c := transportClient(t, rt, 3, b, b.Observe, io.Discard)
		start := time.Now()
		var slowDone time.Duration
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := c.QueryCalls(t.Context(), testQuery); err != nil {
				t.Error(err)
			}
			slowDone = time.Since(start)
		})
		synctest.Wait() // the VDN 25 page got its 429 and waits
		other := testQuery
		for vdn := 26; vdn < 46; vdn++ {
			other.Stream.VDN = vdn
			if _, err := c.QueryCalls(t.Context(), other); err != nil {
				t.Fatal(err)
			}
		}
		if took := time.Since(start); took >= time.Second {
			t.Errorf("20 other pages took %v while one page waited out its Retry-After of 10s", took)
		}
		wg.Wait()
		if slowDone != 10*time.Second {
			t.Errorf("the page that got Retry-After: 10 was read after %v, want 10s", slowDone)
		}
		if got := b.Rate(); got != 100 {
			t.Errorf("one 429 among 22 answers moved the shared rate to %v", got)
		}
	})
}

// Retries take their tokens from the shared budget like first attempts, so
// a page that keeps failing never sends faster than the budget's rate.
func TestRetriesTakeTheirTurnInTheSharedBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var sent []time.Time
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			sent = append(sent, time.Now())
			mu.Unlock()
			return respond(r, 500, nil, []byte("oops")), nil // a fault, not pushback: the rate stays
		})
		b := NewBudget(10, 1)
		c := transportClient(t, rt, 5, b, b.Observe, io.Discard)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { _, _ = c.QueryCalls(t.Context(), testQuery) })
		}
		wg.Wait()
		if len(sent) != 20 {
			t.Fatalf("%d attempts, want 4 pages x 5", len(sent))
		}
		// 10 requests/s, no burst: attempt i is sent no earlier than i/10 s.
		for i, at := range sent {
			if early := time.Duration(i)*100*time.Millisecond - at.Sub(sent[0]); early > 0 {
				t.Errorf("attempt %d sent %v ahead of the budget", i+1, early)
			}
		}
	})
}

// An upstream that refuses every request with 429 and Retry-After: 1 is
// backed off politely: the shared rate falls to its floor, so the whole
// client, retries included, sends no faster than that, and each retry waits
// its Retry-After.
func TestAnOverloadedUpstreamIsBackedOffToTheFloor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var sent []time.Time
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			sent = append(sent, time.Now())
			mu.Unlock()
			return respond(r, 429, map[string]string{"Retry-After": "1"}, nil), nil
		})
		b := NewBudget(64, 8)
		c := transportClient(t, rt, 3, b, b.Observe, io.Discard)
		start := time.Now()
		var wg sync.WaitGroup
		for range 8 { // eight workers, each reading page after page for a minute
			wg.Go(func() {
				for time.Since(start) < time.Minute {
					p0 := time.Now()
					_, err := c.QueryCalls(t.Context(), testQuery)
					if RetryAfter(err) != time.Second {
						t.Errorf("got %v, want a 429 with Retry-After 1s", err)
						return
					}
					if took := time.Since(p0); took < 2*time.Second {
						t.Errorf("three attempts took %v: the retries did not wait their Retry-After", took)
						return
					}
				}
			})
		}
		wg.Wait()
		if got := b.Rate(); got != 1 {
			t.Errorf("after a minute of 429s the rate is %v, want the floor 1 (64/64)", got)
		}
		late := 0
		for _, at := range sent {
			if at.Sub(start) >= 30*time.Second && at.Sub(start) < time.Minute {
				late++
			}
		}
		if late > 31 {
			t.Errorf("%d attempts in the last 30s of the minute, want at most 31 (the floor of 1/s)", late)
		}
		t.Logf("%d attempts in a minute of 429s, %d of them in its second half", len(sent), late)
	})
}

// checkCapWarning wants one warn line naming the host when the cap applied,
// none otherwise, and never a signature or the SK.
func checkCapWarning(t *testing.T, logs, host string, want bool) {
	t.Helper()
	noSecrets(t, logs)
	var warns []map[string]any
	for line := range strings.Lines(logs) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["level"] == "WARN" {
			warns = append(warns, m)
		}
	}
	switch {
	case !want && len(warns) != 0:
		t.Errorf("warned %v, want no warning", warns)
	case want && len(warns) != 1:
		t.Errorf("warned %d times (%v), want once", len(warns), warns)
	case want && (warns[0]["host"] != host || !strings.Contains(warns[0]["msg"].(string), "capped")):
		t.Errorf("warning %v does not say it capped the Retry-After of host %s", warns[0], host)
	}
}
