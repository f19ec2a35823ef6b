package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-envconfig"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller/ccms"
)

// retentionStore is a store in loc holding one seen call at noon of each
// day from first to last (dates in loc).
func retentionStore(t *testing.T, loc *time.Location, first, last time.Time) *dedupe.Store {
	t.Helper()
	s, err := dedupe.Open(dedupe.Options{Path: filepath.Join(t.TempDir(), storeFile), LockTimeout: time.Second, CCID: 1, Location: loc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	b := dedupe.Batch{Stream: "1/25/in"}
	for d := first.In(loc); !d.After(last); d = d.AddDate(0, 0, 1) {
		noon := time.Date(d.Year(), d.Month(), d.Day(), 12, 0, 0, 0, loc)
		b.Seen = append(b.Seen, dedupe.Key{Stream: b.Stream, CallID: noon.Format("c-20060102"), CallEnd: noon, Hash: 1})
	}
	if err := s.Commit(b); err != nil {
		t.Fatal(err)
	}
	return s
}

func days(t *testing.T, s *dedupe.Store) []string {
	t.Helper()
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range st.Days {
		out = append(out, d.Day)
	}
	return out
}

func testRetention(t *testing.T, s *dedupe.Store, reach ccms.Reach, margin time.Duration, logs *lockedBuffer) (*retention, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := newRetention(config{PruneEvery: time.Hour, KeepMargin: margin}, s, reach, logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	return r, reg
}

// The API still returns calls from its horizon (00:00 of yesterday; in mode
// both the later of the zone's and UTC's midnights) on; a call filtered at
// the horizon ends later. Every day from (horizon − margin)'s day is kept.
func TestRetentionKeepsTheDaysTheAPICanStillReturn(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		reach  ccms.Reach
		now    time.Time
		margin time.Duration
		want   []string
	}{
		{"in UTC a day's margin keeps the day before yesterday", ccms.Reach{Loc: time.UTC},
			time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC), 24 * time.Hour,
			[]string{"20260308", "20260309", "20260310"}},
		{"without a margin only yesterday and today are kept", ccms.Reach{Loc: time.UTC},
			time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC), 0,
			[]string{"20260309", "20260310"}},
		{"east of UTC in mode both UTC's midnight is the later one", ccms.Reach{Loc: shanghai},
			time.Date(2026, 3, 10, 9, 0, 0, 0, shanghai), 24 * time.Hour, // horizon 08:00 on the 9th
			[]string{"20260308", "20260309", "20260310"}},
		{"east of UTC in mode utc the horizon can fall on the day before yesterday", ccms.Reach{Loc: shanghai, Boundary: ccms.BoundaryUTC},
			time.Date(2026, 3, 10, 7, 0, 0, 0, shanghai), 0, // 23:00 UTC on the 9th: horizon 08:00 on the 8th
			[]string{"20260308", "20260309", "20260310"}},
		{"west of UTC in mode utc the horizon falls on the evening before yesterday", ccms.Reach{Loc: la, Boundary: ccms.BoundaryUTC},
			time.Date(2026, 3, 20, 9, 0, 0, 0, la), 0, // 16:00 UTC on the 20th: horizon 17:00 on the 18th
			[]string{"20260318", "20260319", "20260320"}},
		{"west of UTC in mode tenant the zone's midnight is the horizon", ccms.Reach{Loc: la, Boundary: ccms.BoundaryTenant},
			time.Date(2026, 3, 20, 9, 0, 0, 0, la), 0,
			[]string{"20260319", "20260320"}},
		{"after a 23-hour day a margin of 24h reaches into the day before it", ccms.Reach{Loc: la},
			time.Date(2026, 3, 10, 9, 0, 0, 0, la), 24 * time.Hour, // horizon 00:00 on the 9th; the 8th has 23 hours
			[]string{"20260307", "20260308", "20260309", "20260310"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			loc := c.reach.Loc
			s := retentionStore(t, loc, c.now.AddDate(0, 0, -5), c.now)
			var logs lockedBuffer
			r, _ := testRetention(t, s, c.reach, c.margin, &logs)
			r.prune(t.Context(), c.now)
			if diff := cmp.Diff(c.want, days(t, s)); diff != "" {
				t.Errorf("days kept (-want +got):\n%s", diff)
			}
			if !strings.Contains(logs.String(), "level=INFO msg=\"store pruned\" keep_from="+c.want[0][:4]+"-"+c.want[0][4:6]+"-"+c.want[0][6:]) {
				t.Errorf("no info line naming the first day kept:\n%s", logs.String())
			}
		})
	}
}

// The loop prunes at once and then every interval, exports what it did, and
// returns nil when ctx ends.
func TestRetentionPrunesAtStartAndEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now() // 2000-01-01 00:00 UTC in the bubble
		s := retentionStore(t, time.UTC, start.AddDate(0, 0, -4), start)
		var logs lockedBuffer
		r, reg := testRetention(t, s, ccms.Reach{}, 24*time.Hour, &logs)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- r.run(ctx) }()

		synctest.Wait() // the prune at start: the horizon is 1999-12-31, minus a day
		if diff := cmp.Diff([]string{"19991230", "19991231", "20000101"}, days(t, s)); diff != "" {
			t.Errorf("days after the prune at start (-want +got):\n%s", diff)
		}
		checkMetric(t, reg, "callpub_store_pruned_buckets_total", 2)
		checkMetric(t, reg, "callpub_store_last_prune_timestamp_seconds", float64(start.Unix()))

		time.Sleep(24*time.Hour + time.Minute)
		synctest.Wait() // the hourly prune at 2000-01-02 00:00 dropped 1999-12-30
		if diff := cmp.Diff([]string{"19991231", "20000101"}, days(t, s)); diff != "" {
			t.Errorf("days a day later (-want +got):\n%s", diff)
		}
		checkMetric(t, reg, "callpub_store_pruned_buckets_total", 3)
		checkMetric(t, reg, "callpub_store_last_prune_timestamp_seconds", float64(start.Add(24*time.Hour).Unix()))
		if n := strings.Count(logs.String(), `msg="store pruned"`); n != 25 {
			t.Errorf("%d prune lines, want 25 (one at start, one an hour):\n%s", n, logs.String())
		}

		cancel()
		if err := <-done; err != nil {
			t.Errorf("run after ctx ended = %v, want nil", err)
		}
	})
}

// A failed prune is logged and tried again at the next interval; the loop
// goes on, and the last successful prune's time stays.
func TestRetentionGoesOnAfterAFailedPrune(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		s := retentionStore(t, time.UTC, start, start)
		var logs lockedBuffer
		r, reg := testRetention(t, s, ccms.Reach{}, 24*time.Hour, &logs)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- r.run(ctx) }()
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2*time.Hour + time.Minute)
		synctest.Wait()
		if n := strings.Count(logs.String(), `level=WARN msg="store prune failed, will retry"`); n != 2 {
			t.Errorf("%d failure lines after two intervals, want 2:\n%s", n, logs.String())
		}
		checkMetric(t, reg, "callpub_store_last_prune_timestamp_seconds", float64(start.Unix()))
		select {
		case err := <-done:
			t.Fatalf("run returned %v after a failed prune", err)
		default:
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run after ctx ended = %v, want nil", err)
		}
	})
}

func TestRetentionExportsTheStoreSize(t *testing.T) {
	s := retentionStore(t, time.UTC, time.Now(), time.Now())
	var logs lockedBuffer
	_, reg := testRetention(t, s, ccms.Reach{}, 24*time.Hour, &logs)
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	checkMetric(t, reg, "callpub_store_bytes", float64(fi.Size()))
	checkMetric(t, reg, "callpub_store_prune_interval_seconds", 3600)
	free, ok := gather(t, reg)["callpub_store_free_bytes"]
	if runtime.GOOS == "linux" && (!ok || free <= 0) {
		t.Errorf("callpub_store_free_bytes = %v (exported: %v), want the volume's free bytes", free, ok)
	}
}

func TestRetentionConfig(t *testing.T) {
	cfg, err := loadConfig(t.Context(), envconfig.MapLookuper(validVars()))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PruneEvery != time.Hour || cfg.KeepMargin != 24*time.Hour {
		t.Errorf("defaults: prune every %v, margin %v; want 1h and 24h", cfg.PruneEvery, cfg.KeepMargin)
	}
	for _, c := range []struct{ name, key, value, want string }{
		{"an interval of zero would never wait", "CALLPUB_STATE_PRUNE_INTERVAL", "0s",
			"config: CALLPUB_STATE_PRUNE_INTERVAL: must be positive and at most 24h, got 0s"},
		{"an interval over a day could skip a day", "CALLPUB_STATE_PRUNE_INTERVAL", "25h",
			"config: CALLPUB_STATE_PRUNE_INTERVAL: must be positive and at most 24h, got 25h0m0s"},
		{"a negative margin", "CALLPUB_STATE_RETENTION_MARGIN", "-1h",
			"config: CALLPUB_STATE_RETENTION_MARGIN: must not be negative, got -1h0m0s"},
		{"a margin that is not a duration", "CALLPUB_STATE_RETENTION_MARGIN", "a day",
			`config: CALLPUB_STATE_RETENTION_MARGIN: time: invalid duration "a day"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			vars := validVars()
			vars[c.key] = c.value
			_, err := loadConfig(t.Context(), envconfig.MapLookuper(vars))
			if err == nil || err.Error() != c.want {
				t.Errorf("error\n got %v\nwant %q", err, c.want)
			}
		})
	}
}

func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		switch {
		case m.GetCounter() != nil:
			out[mf.GetName()] = m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			out[mf.GetName()] = m.GetGauge().GetValue()
		}
	}
	return out
}

func checkMetric(t *testing.T, reg *prometheus.Registry, name string, want float64) {
	t.Helper()
	got, ok := gather(t, reg)[name]
	if !ok || got != want {
		t.Errorf("%s = %v (exported: %v), want %v", name, got, ok, want)
	}
}

// lockedBuffer is a log sink the retention goroutine and the test share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
