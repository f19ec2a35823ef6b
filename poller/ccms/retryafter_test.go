package ccms

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// One Retry-After pauses every stream (the shared Budget), so the client
// reports none longer than Config.RetryMaxDelay, and says once when it cut one.
func TestRetryAfterIsCappedAtTheLongestRetryDelayForEveryone(t *testing.T) {
	dayAhead := testNow.Add(24 * time.Hour).Format(http.TimeFormat)
	tests := []struct {
		name       string
		retryAfter string
		want       time.Duration
		wantWarn   bool
	}{
		{"a Retry-After of a day is capped", "86400", 30 * time.Second, true},
		{"a Retry-After of a year is capped", "31536000", 30 * time.Second, true},
		{"an HTTP date a day ahead is capped", dayAhead, 30 * time.Second, true},
		{"a Retry-After under the cap is kept as is", "7", 7 * time.Second, false},
		{"a Retry-After equal to the cap is kept as is", "30", 30 * time.Second, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startTLS(t, statusHandler(429, map[string]string{"Retry-After": tc.retryAfter}, "slow down"))
			cfg := testConfig(t, srv)
			cfg.MaxAttempts, cfg.RetryMaxDelay = 1, 30*time.Second
			var logs bytes.Buffer
			rec := &recorder{}
			c, err := NewClient(cfg, Deps{Limiter: rec, Observe: rec.observe, Now: tickingClock(),
				Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.QueryCalls(t.Context(), testQuery)
			var se *StatusError
			if !errors.As(err, &se) || se.RetryAfter != tc.want || RetryAfter(err) != tc.want {
				t.Fatalf("got %v, want a StatusError with RetryAfter %v", err, tc.want)
			}
			if len(rec.outcomes) != 1 || rec.outcomes[0].RetryAfter != tc.want {
				t.Fatalf("outcomes %+v, want one with RetryAfter %v", rec.outcomes, tc.want)
			}
			checkCapWarning(t, logs.String(), c.Host(), tc.wantWarn)
			// The shared budget pauses every request for the reported delay only.
			synctest.Test(t, func(t *testing.T) {
				b := NewBudget(1000, 10)
				start := time.Now()
				b.Observe(rec.outcomes[0])
				if err := b.Wait(t.Context()); err != nil {
					t.Fatal(err)
				}
				if waited := time.Since(start); waited != tc.want {
					t.Errorf("the budget paused for %v, want %v", waited, tc.want)
				}
			})
		})
	}
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
