package poller_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/schemas"
)

// readSource answers every window with the same read: calls and bad rows.
type readSource struct{ read ccms.Read }

func (s readSource) ReadWindow(ctx context.Context, _ ccms.Window) (ccms.Read, error) {
	if err := ctx.Err(); err != nil {
		return ccms.Read{}, err
	}
	r := s.read
	r.Stats = ccms.ReadStats{Requests: 1, Pages: 1}
	return r, nil
}

// runFixed runs one stream (1/1/in) over src for ten virtual minutes: about
// twenty re-reads of the same rows.
func runFixed(t *testing.T, src poller.Source, pub *fakePublisher, maxEventBytes int) *dedupe.Store {
	t.Helper()
	store := openStore(t)
	runFixedOn(t, store, src, pub, maxEventBytes)
	return store
}

// runFixedOn is runFixed on a given store.
func runFixedOn(t *testing.T, store *dedupe.Store, src poller.Source, pub *fakePublisher, maxEventBytes int) {
	t.Helper()
	p := oneStreamPoller(t, store, src, pub, maxEventBytes)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	if err := p.Work(ctx); err != nil {
		t.Fatal(err)
	}
}

// oneStreamPoller is a poller of the one stream 1/1/in over src, with the
// base configuration and masked phone numbers.
func oneStreamPoller(t *testing.T, store *dedupe.Store, src poller.Source, pub *fakePublisher, maxEventBytes int) *poller.Poller {
	t.Helper()
	enc, err := schemas.NewEncoder(schemas.EncoderOptions{PII: schemas.PIIMask})
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig()
	cfg.VDNs, cfg.Directions = poller.VDNSet{1}, poller.Directions{poller.In}
	p, err := poller.New(cfg, poller.Deps{Source: src, Store: store, Publisher: pub, Encoder: enc,
		Budget: ccms.NewBudget(100, 1), Metrics: prometheus.NewRegistry(), Logger: testLogger(t), MaxEventBytes: maxEventBytes})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func completedCall(id, caller string, end time.Time) ccms.Call {
	return ccms.Call{CallID: id, VDN: 1, CallerNo: caller, CalleeNo: "8000",
		WaitBegin: end.Add(-time.Minute), AckBegin: end.Add(-50 * time.Second), CallBegin: end.Add(-50 * time.Second), CallEnd: end}
}

func callIDs(events []schemas.Event) []string {
	var ids []string
	for _, e := range events {
		ids = append(ids, e.Subject)
	}
	return ids
}

func TestABadRowIsQuarantinedOnceAndTheRowsAroundItArePublished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		end := time.Now().Add(-time.Hour)
		src := readSource{ccms.Read{
			Calls: []ccms.Call{completedCall("good-1", "13800138000", end), completedCall("good-2", "13800138001", end)},
			Bad: []ccms.BadRow{
				{Raw: json.RawMessage(`null`), Reason: "row is not an object"},
				{Raw: json.RawMessage(`{"callId":"bad-1","callerNo":"13912345678","callEnd":"soon"}`), Reason: "callEnd is not a number"},
			}}}
		pub := &fakePublisher{}
		store := runFixed(t, src, pub, 0)
		if got := callIDs(pub.events); strings.Join(got, ",") != "good-1,good-2" {
			t.Errorf("published %v, want good-1 and good-2 once each", got)
		}
		if len(pub.dlq) != 2 {
			t.Fatalf("%d dead-letter records over many re-reads, want one per bad row (2)", len(pub.dlq))
		}
		for _, e := range pub.dlq {
			if strings.Contains(string(e.Data), "13912345678") {
				t.Errorf("the dead-letter record carries the phone number under mask: %s", e.Data)
			}
		}
		if st, _ := store.State("1/1/in"); st.Cursor.IsZero() {
			t.Error("the cursor did not move past the window with bad rows")
		}
	})
}

func TestADeadLetterOutageLosesNothingAndDuplicatesNoCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		end := time.Now().Add(-time.Hour)
		src := readSource{ccms.Read{
			Calls: []ccms.Call{completedCall("good-1", "13800138000", end)},
			Bad:   []ccms.BadRow{{Raw: json.RawMessage(`{"callId":""}`), Reason: "no callId"}}}}
		pub := &fakePublisher{dlqFail: 3}
		runFixed(t, src, pub, 0)
		if got := callIDs(pub.events); strings.Join(got, ",") != "good-1" {
			t.Errorf("published %v, want good-1 once", got)
		}
		if len(pub.dlq) != 1 {
			t.Errorf("%d dead-letter records after the outage, want 1", len(pub.dlq))
		}
	})
}

func TestACallListedTwiceWithOtherContentIsPublishedAsAnUpdate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		end := time.Now().Add(-time.Hour)
		src := readSource{ccms.Read{Calls: []ccms.Call{
			completedCall("twice", "13800138000", end), completedCall("twice", "13800138999", end)}}}
		pub := &fakePublisher{}
		runFixed(t, src, pub, 0)
		if len(pub.events) != 2 {
			t.Fatalf("%d events, want the call and its update", len(pub.events))
		}
		var first, second schemas.CallCompletedData
		_ = json.Unmarshal(pub.events[0].Data, &first)
		_ = json.Unmarshal(pub.events[1].Data, &second)
		if first.Update || !second.Update || pub.events[0].ID == pub.events[1].ID {
			t.Errorf("update flags %v, %v and ids %s, %s: want the second row as an update with its own id",
				first.Update, second.Update, pub.events[0].ID, pub.events[1].ID)
		}
	})
}

func TestAnEventLargerThanTheTopicAcceptsIsQuarantinedNotPublished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		end := time.Now().Add(-time.Hour)
		src := readSource{ccms.Read{Calls: []ccms.Call{
			completedCall("huge", strings.Repeat("1", 5000), end), completedCall("small", "13800138000", end)}}}
		pub := &fakePublisher{}
		store := runFixed(t, src, pub, 4096)
		if got := callIDs(pub.events); strings.Join(got, ",") != "small" {
			t.Errorf("published %v, want only the small call", got)
		}
		if len(pub.dlq) != 1 {
			t.Errorf("%d dead-letter records, want 1 for the huge call", len(pub.dlq))
		}
		if st, _ := store.State("1/1/in"); st.Cursor.IsZero() {
			t.Error("the cursor did not move past the huge call")
		}
	})
}

// The store holds the first of two contents (from an earlier read): the
// second goes out once, as an update, and neither again.
func TestAStoredFirstContentLeavesOnlyTheLaterOneAsAnUpdate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		end := time.Now().Add(-time.Hour)
		first, second := completedCall("twice", "13800138000", end), completedCall("twice", "13800138999", end)
		pub := &fakePublisher{}
		store := runFixed(t, readSource{ccms.Read{Calls: []ccms.Call{first}}}, pub, 0)
		runFixedOn(t, store, readSource{ccms.Read{Calls: []ccms.Call{first, second}}}, pub, 0)
		if len(pub.events) != 2 {
			t.Fatalf("%d events, want the first content, then the second once", len(pub.events))
		}
		var d schemas.CallCompletedData
		_ = json.Unmarshal(pub.events[1].Data, &d)
		if !d.Update || d.CallerNo == "" {
			t.Errorf("the second event is not an update: %+v", d)
		}
	})
}
