package poller_test

import (
	"context"
	"encoding/json"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/schemas"
)

// seals returns the day-sealed records published so far.
func seals(t *testing.T, pub *fakePublisher) []schemas.DaySealedData {
	t.Helper()
	pub.mu.Lock()
	defer pub.mu.Unlock()
	var out []schemas.DaySealedData
	for _, e := range pub.control {
		if e.Type != schemas.TypeDaySealed {
			continue
		}
		var d schemas.DaySealedData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// runPastYesterdaysSeal runs one stream whose cursor stands just before
// midnight over src for five hours, past yesterday's reconciliation, and
// returns what it published.
func runPastYesterdaysSeal(t *testing.T, src poller.Source, midnight time.Time) *fakePublisher {
	t.Helper()
	store := openStore(t)
	if err := store.SetCursor("1/1/in", midnight.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	pub := &fakePublisher{}
	p := oneStreamPoller(t, store, src, pub, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Hour)
	defer cancel()
	if err := p.Work(ctx); err != nil {
		t.Fatal(err)
	}
	return pub
}

// A day with a quarantined row is sealed, but not called complete, and the
// seal says how many rows were set aside.
func TestADayWithAQuarantinedRowIsNotSealedComplete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		midnight := time.Now()
		src := readSource{ccms.Read{
			Calls: []ccms.Call{completedCall("good", "13800138000", midnight.Add(-time.Hour))},
			Bad:   []ccms.BadRow{{Raw: json.RawMessage(`null`), Reason: "row is null, not an object"}}}}
		pub := runPastYesterdaysSeal(t, src, midnight)
		got := seals(t, pub)
		if len(got) != 1 || got[0].Complete || got[0].Quarantined != 1 || got[0].Published != 1 {
			t.Fatalf("seals %+v, want yesterday sealed incomplete with 1 call and 1 quarantined row", got)
		}
	})
}

// In mode both with a tenant east of UTC, the API has already forgotten the
// first hours of the tenant's yesterday when it is reconciled: the seal says
// which span was read and does not call the day complete.
func TestADayReadOnlyInPartIsNotSealedComplete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shanghai, err := time.LoadLocation("Asia/Shanghai")
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now() // 2000-01-01 00:00 UTC, 08:00 in Shanghai
		store := openStore(t)
		if err := store.SetCursor("1/1/in", now.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		enc, _ := schemas.NewEncoder(schemas.EncoderOptions{PII: schemas.PIIPlain})
		cfg := baseConfig()
		cfg.VDNs, cfg.Directions = poller.VDNSet{1}, poller.Directions{poller.In}
		pub := &fakePublisher{}
		p, err := poller.New(cfg, poller.Deps{Source: readSource{}, Store: store, Publisher: pub, Encoder: enc,
			Budget: ccms.NewBudget(100, 1), Metrics: prometheus.NewRegistry(),
			Reach: ccms.Reach{Loc: shanghai, Boundary: ccms.BoundaryBoth}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
		defer cancel()
		if err := p.Work(ctx); err != nil {
			t.Fatal(err)
		}
		got := seals(t, pub)
		dayStart := time.Date(1999, 12, 31, 0, 0, 0, 0, shanghai)
		// The reconciliation and, the day's first hours being gone already, the
		// last-chance read both seal it; neither may call it complete.
		if len(got) == 0 {
			t.Fatal("yesterday was not sealed")
		}
		for _, d := range got {
			if d.Day != "1999-12-31" || d.Complete || !d.ReadFrom.Time.After(dayStart) {
				t.Errorf("seal %+v, want 1999-12-31 sealed incomplete, read from after %v", d, dayStart)
			}
		}
	})
}

// A span whose pages never agreed with the server's count is published as
// far as it was read, reported once per read on the control topic (the same
// id every time), and keeps its day from being sealed complete.
func TestASuspectSpanIsReportedOnTheControlTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		midnight := time.Now()
		span := ccms.Suspect{Start: midnight.Add(-2 * time.Hour), End: midnight.Add(-2*time.Hour + time.Second),
			Reason: "received 37 rows, count says 40"}
		src := readSource{ccms.Read{
			Calls:   []ccms.Call{completedCall("good", "13800138000", midnight.Add(-time.Hour))},
			Suspect: []ccms.Suspect{span}}}
		pub := runPastYesterdaysSeal(t, src, midnight)
		pub.mu.Lock()
		ids := map[string]bool{}
		for _, e := range pub.control {
			if e.Type != schemas.TypeSuspect {
				continue
			}
			ids[e.ID] = true
			var d schemas.SuspectData
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			if !d.SpanStart.Time.Equal(span.Start) || !d.SpanEnd.Time.Equal(span.End) || d.Reason != span.Reason || d.Stream != "1/1/in" {
				t.Errorf("suspect record %+v, want the span %v", d, span)
			}
		}
		pub.mu.Unlock()
		if len(ids) != 1 {
			t.Errorf("%d distinct suspect records, want one fact with one id", len(ids))
		}
		if got := seals(t, pub); len(got) == 0 || got[0].Complete || len(got[0].Suspect) != 1 {
			t.Errorf("seals %+v, want yesterday sealed incomplete listing the suspect span", got)
		}
	})
}
