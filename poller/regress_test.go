package poller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/schemas"
)

// fixedSource answers every window with the same calls.
type fixedSource struct{ calls []ccms.Call }

func (f fixedSource) ReadWindow(ctx context.Context, _ ccms.Window) (ccms.Read, error) {
	if err := ctx.Err(); err != nil {
		return ccms.Read{}, err
	}
	return ccms.Read{Calls: f.calls, Stats: ccms.ReadStats{Requests: 1, Pages: 1}}, nil
}

// A running call whose queue wait began before the API's horizon, listed in a
// window that starts at the horizon, must not wedge the stream: it is kept as
// pending from the horizon, the cursor moves, and the heartbeat reports the
// watermark (the pending call), not the cursor.
func TestARunningCallOlderThanTheHorizonDoesNotWedgeTheStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Now()
		horizon := poller.Horizon(now, ccms.Reach{})
		src := fixedSource{calls: []ccms.Call{{CallID: "old-1", VDN: 1,
			WaitBegin: horizon.Add(-time.Minute), AckBegin: horizon.Add(time.Minute), CallBegin: horizon.Add(time.Minute)}}}
		store, err := dedupe.Open(dedupe.Options{Path: filepath.Join(t.TempDir(), "s.db"), LockTimeout: time.Second, CCID: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		enc, _ := schemas.NewEncoder(schemas.EncoderOptions{PII: schemas.PIIPlain})
		cfg := baseConfig()
		cfg.VDNs, cfg.Directions = poller.VDNSet{1}, poller.Directions{poller.In}
		pub := &fakePublisher{}
		p, err := poller.New(cfg, poller.Deps{Source: src, Store: store, Publisher: pub, Encoder: enc,
			Budget: ccms.NewBudget(100, 1), Metrics: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
		defer cancel()
		if err := p.Work(ctx); err != nil {
			t.Fatal(err)
		}
		st, err := store.State("1/1/in")
		if err != nil {
			t.Fatal(err)
		}
		if st.Cursor.IsZero() || len(st.Pending) != 1 || !st.Pending[0].FilterTime.Equal(horizon) {
			t.Fatalf("state %+v: want a moved cursor and the call pending from the horizon %v", st, horizon)
		}
		if row := p.Status(time.Now()).Rows[0]; row.LastError != "" {
			t.Errorf("stream failed: %s", row.LastError)
		}
		var beats int
		for _, e := range pub.control {
			if e.Type != schemas.TypeHeartbeat {
				continue
			}
			beats++
			var d schemas.HeartbeatData
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			if !d.Cursor.Time.Equal(horizon) {
				t.Errorf("heartbeat says everything before %v is published, but call old-1 from %v is pending", d.Cursor.Time, horizon)
			}
		}
		if beats == 0 {
			t.Error("no heartbeat")
		}
	})
}

// START_AT=now with no lookback (cursor at now − lag on the first step)
// still starts the stream and publishes what happens afterwards.
func TestStartAtNowWithoutLookbackStillStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := baseConfig()
		cfg.VDNs, cfg.Directions, cfg.StartAt, cfg.Lookback = poller.VDNSet{1}, poller.Directions{poller.In}, "now", 0
		e := newEnv(t, cfg, ccmssim.Options{Seed: 12, Traffic: ccmssim.Traffic{BusyShare: 1}}, t.TempDir())
		start := time.Now()
		e.runFor(t, time.Hour)
		st, err := e.store.State("1/1/in")
		if err != nil {
			t.Fatal(err)
		}
		if st.Cursor.Before(start) {
			t.Fatalf("cursor %v never moved past the start %v", st.Cursor, start)
		}
		if len(e.pub.events) == 0 {
			t.Error("nothing published in an hour of busy traffic")
		}
	})
}

// slowSource takes `took` to answer, or gives up when ctx ends.
type slowSource struct{ took time.Duration }

func (s slowSource) ReadWindow(ctx context.Context, _ ccms.Window) (ccms.Read, error) {
	select {
	case <-ctx.Done():
		return ccms.Read{}, ctx.Err()
	case <-time.After(s.took):
		return ccms.Read{Stats: ccms.ReadStats{Requests: 1, Pages: 1}}, nil
	}
}

func slowPoller(t *testing.T, took time.Duration) (*poller.Poller, *dedupe.Store) {
	t.Helper()
	store := openStore(t)
	enc, _ := schemas.NewEncoder(schemas.EncoderOptions{PII: schemas.PIIPlain})
	cfg := baseConfig()
	cfg.VDNs, cfg.Directions, cfg.StepTimeout = poller.VDNSet{1}, poller.Directions{poller.In}, time.Minute
	p, err := poller.New(cfg, poller.Deps{Source: slowSource{took}, Store: store, Publisher: &fakePublisher{},
		Encoder: enc, Budget: ccms.NewBudget(100, 1), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return p, store
}

func TestStepTimeoutBoundsOnlyTheStepInHandAtShutdown(t *testing.T) {
	t.Run("a slow step finishes while the service runs", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p, store := slowPoller(t, 5*time.Minute) // longer than the 1m step timeout
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
			defer cancel()
			if err := p.Work(ctx); err != nil {
				t.Fatal(err)
			}
			if st, _ := store.State("1/1/in"); st.Cursor.IsZero() {
				t.Error("no step ever finished: the step timeout cut steps while the service was running")
			}
		})
	})
	t.Run("a stop gives the step in hand the timeout, not more", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p, _ := slowPoller(t, time.Hour)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			start := time.Now()
			if err := p.Work(ctx); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 30*time.Second+time.Minute+time.Second {
				t.Errorf("Work returned %v after start, want within the 30s run plus the 1m grace", took)
			}
		})
	})
}

// A control topic that is down fails a gap step before any call event is
// published, so its retries publish nothing twice.
func TestAControlTopicOutageDuplicatesNoCallEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := baseConfig()
		cfg.VDNs, cfg.Directions = poller.VDNSet{1}, poller.Directions{poller.In}
		store := openStore(t)
		if err := store.SetCursor("1/1/in", time.Now().Add(-50*time.Hour)); err != nil {
			t.Fatal(err)
		}
		sim, err := ccmssim.New(ccmssim.Options{AK: "ak", SK: "sk", CCID: 1, VDNs: 1, Seed: 13})
		if err != nil {
			t.Fatal(err)
		}
		e := build(t, cfg, sim, store, oneWorker)
		e.pub.ctlFail = 3
		e.runFor(t, time.Hour)
		if _, dups := e.check(t, time.Now().Add(-20*time.Minute)); dups != 0 {
			t.Errorf("%d duplicate call events while the control topic was down", dups)
		}
		if gaps, _ := store.Gaps(); len(gaps) != 1 {
			t.Errorf("gaps %+v, want one", gaps)
		}
	})
}

// A reconciliation that finds calls the fresh lane never published sends
// them, then the day-sealed record. If only the seal fails, the calls stay
// seen: the retry publishes the seal alone, not the day again.
func TestASealThatFailsDoesNotRepublishTheReconciledDay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := baseConfig()
		cfg.VDNs, cfg.Directions, cfg.ReconcileDelay = poller.VDNSet{1}, poller.Directions{poller.In}, time.Hour
		store := openStore(t)
		// It is 00:00: the fresh lane starts here, so all of yesterday is left
		// to the reconciliation.
		midnight := time.Now()
		if err := store.SetCursor("1/1/in", midnight); err != nil {
			t.Fatal(err)
		}
		sim, err := ccmssim.New(ccmssim.Options{AK: "ak", SK: "sk", CCID: 1, VDNs: 1, Seed: 21,
			Traffic: ccmssim.Traffic{BusyShare: 1}})
		if err != nil {
			t.Fatal(err)
		}
		e := build(t, cfg, sim, store, oneWorker)
		e.pub.sealFail = 2
		e.runFor(t, 3*time.Hour)

		if _, dups := e.check(t, time.Now().Add(-20*time.Minute)); dups != 0 {
			t.Errorf("%d duplicate call events after the seal failed twice", dups)
		}
		e.pub.mu.Lock()
		yesterday, sealed := 0, 0
		for _, ev := range e.pub.events {
			if ev.Time.Before(midnight) {
				yesterday++
			}
		}
		var seal schemas.DaySealedData
		for _, c := range e.pub.control {
			if c.Type == schemas.TypeDaySealed {
				sealed++
				if err := json.Unmarshal(c.Data, &seal); err != nil {
					t.Error(err)
				}
			}
		}
		fails := e.pub.sealFail
		e.pub.mu.Unlock()
		if yesterday == 0 || fails != 0 {
			t.Fatalf("%d of yesterday's calls published, %d seal failures left: the test proves nothing", yesterday, fails)
		}
		if sealed != 1 || seal.Published != yesterday {
			t.Errorf("%d day-sealed records counting %d calls, want 1 counting the %d published", sealed, seal.Published, yesterday)
		}
		st, err := store.State("1/1/in")
		if err != nil {
			t.Fatal(err)
		}
		if want := poller.DayKey(midnight.Add(-time.Hour), time.UTC); st.SealedDay != want {
			t.Errorf("sealed day %q, want %q", st.SealedDay, want)
		}
	})
}

// A server whose days are UTC's and a tenant configured in Asia/Shanghai
// (ccms-api.md A10). In mode both the poller never asks for a time the server
// no longer holds, and every call from the server's horizon is published; in
// mode tenant it asks for 8 hours the server refuses.
func TestModeBothNeverAsksAUTCServerForTimesBeforeItsHorizon(t *testing.T) {
	for _, tc := range []struct {
		mode        ccms.DayBoundary
		wantRefused bool
	}{{ccms.BoundaryBoth, false}, {ccms.BoundaryTenant, true}} {
		t.Run(string(tc.mode), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := baseConfig()
				cfg.VDNs, cfg.Directions = poller.VDNSet{1, 2}, poller.Directions{poller.In}
				store := openStore(t)
				sim, err := ccmssim.New(ccmssim.Options{AK: "ak", SK: "sk", CCID: 1, VDNs: 2, Seed: 5, Location: time.UTC})
				if err != nil {
					t.Fatal(err)
				}
				e := build(t, cfg, sim, store, func(c *ccms.Config) {
					c.Timezone, c.DayBoundaryMode = "Asia/Shanghai", string(tc.mode)
				})
				e.runFor(t, 2*time.Hour)
				e.mu.Lock()
				refused := e.outcomes[ccms.ClassMisconfigured] + e.outcomes[ccms.ClassPermanent]
				ok := e.outcomes[ccms.ClassOK]
				e.mu.Unlock()
				if got := refused > 0; got != tc.wantRefused {
					t.Fatalf("%d requests refused by the server (%d ok), want refusals: %v", refused, ok, tc.wantRefused)
				}
				if !tc.wantRefused {
					if published, dups := e.check(t, time.Now().Add(-20*time.Minute)); published == 0 || dups != 0 {
						t.Errorf("%d published with %d duplicates", published, dups)
					}
				}
				st := e.p.Status(time.Now())
				if want, _ := sim.AllowedRange(time.Now()); tc.mode == ccms.BoundaryBoth && !st.Horizon.Equal(want) {
					t.Errorf("/status api_horizon %v, want the UTC server's %v", st.Horizon, want)
				}
				if st.Zone != "Asia/Shanghai" || st.DayBoundary != string(tc.mode) {
					t.Errorf("/status zone %q, day boundary %q", st.Zone, st.DayBoundary)
				}
			})
		})
	}
}

// aheadSource lists one completed call per window, timed `ahead` after the
// window's end, as a server whose zone is off from ours would.
type aheadSource struct{ ahead time.Duration }

func (s aheadSource) ReadWindow(ctx context.Context, w ccms.Window) (ccms.Read, error) {
	if err := ctx.Err(); err != nil {
		return ccms.Read{}, err
	}
	at := w.End.Add(s.ahead)
	return ccms.Read{Calls: []ccms.Call{{CallID: fmt.Sprintf("c-%d", w.End.UnixMilli()), WaitBegin: at.Add(-2 * time.Minute),
		CallBegin: at.Add(-time.Minute), CallEnd: at, LogDate: at}}, Stats: ccms.ReadStats{Requests: 1, Pages: 1}}, nil
}

// Rows from the future are still published, and counted and explained: a
// whole number of hours ahead points at the time zone, anything else at a clock.
func TestRowsFromTheFutureAreCountedAndExplained(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ahead time.Duration
		rows  bool
		hint  string
	}{
		{"eight hours ahead is a time zone", 8 * time.Hour, true, "another time zone"},
		{"five and a half hours ahead is a time zone too", 5*time.Hour + 30*time.Minute, true, "another time zone"},
		{"three hours and seven minutes ahead is a clock", 3*time.Hour + 7*time.Minute, true, "NTP"},
		{"23 minutes ahead is a clock", 23 * time.Minute, true, "NTP"},
		{"two minutes ahead is within the tolerance", 2 * time.Minute, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := openStore(t)
				enc, _ := schemas.NewEncoder(schemas.EncoderOptions{PII: schemas.PIIPlain})
				cfg := baseConfig()
				cfg.VDNs, cfg.Directions, cfg.StartAt = poller.VDNSet{1}, poller.Directions{poller.In}, "now"
				var logs bytes.Buffer
				reg := prometheus.NewRegistry()
				pub := &fakePublisher{}
				p, err := poller.New(cfg, poller.Deps{Source: aheadSource{tc.ahead}, Store: store, Publisher: pub,
					Encoder: enc, Budget: ccms.NewBudget(100, 1), Metrics: reg,
					Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
				defer cancel()
				if err := p.Work(ctx); err != nil {
					t.Fatal(err)
				}
				future := 0.0
				mfs, err := reg.Gather()
				if err != nil {
					t.Fatal(err)
				}
				for _, mf := range mfs {
					if mf.GetName() == "callpub_ccms_future_rows_total" {
						future = mf.GetMetric()[0].GetCounter().GetValue()
					}
				}
				pub.mu.Lock()
				published := len(pub.events)
				pub.mu.Unlock()
				if published == 0 {
					t.Fatal("nothing published")
				}
				if got := future > 0; got != tc.rows {
					t.Errorf("callpub_ccms_future_rows_total = %v with %d published, want counted: %v", future, published, tc.rows)
				}
				warned := strings.Count(logs.String(), "rows with times after our clock")
				if tc.rows && (warned != 1 || !strings.Contains(logs.String(), tc.hint)) {
					t.Errorf("want one warning with %q in 5 minutes, got %d:\n%s", tc.hint, warned, logs.String())
				}
				if !tc.rows && warned != 0 {
					t.Errorf("warned within the tolerance:\n%s", logs.String())
				}
			})
		})
	}
}
