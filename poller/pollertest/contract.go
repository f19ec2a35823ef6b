// Package pollertest states the contracts of the poller's seams — Source,
// Store and Publisher (poller/poller.go) — as checks any implementation must
// pass. The real implementations run them in their own packages' tests
// (ccms.Client against the simulator, dedupe.Store on a file, the publisher
// on the real broker) and the poller's test fakes run them in the poller's
// tests, so a fake cannot promise what the real one does not keep.
package pollertest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/schemas"
)

// ReadBack returns the first n call events and the first nControl control
// records that reached the topics of a Publisher under test, in the order
// they reached each partition (a fake: in the order acknowledged).
type ReadBack func(t *testing.T, n, nControl int) (events, control []schemas.Event)

// Publisher checks p against the Publisher contract: an acknowledged publish
// is all there, in publish order per VDN (the partition key); an empty
// publish is an acknowledgement; a publish on an ended context fails (it may
// still have been written: an error promises nothing); control
// records go to the control topic (withControl) or nowhere, with nil.
// p must be fresh: read sees only what this check published.
func Publisher(t *testing.T, p poller.Publisher, read ReadBack, withControl bool) {
	ctx := t.Context()
	enc := encoder(t)
	var events []schemas.Event
	for i := range 6 {
		events = append(events, callEvent(t, enc, 25+i%2, i))
	}
	if err := p.Publish(ctx); err != nil {
		t.Fatalf("an empty publish failed: %v", err)
	}
	if err := p.Publish(ctx, events[:4]...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if err := p.Publish(ctx, events[4:]...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	hb := enc.Heartbeat(schemas.Stream{CCID: 1, VDN: 25, Dir: schemas.In}, testTime, testTime)
	if err := p.PublishControl(ctx, hb); err != nil {
		t.Fatalf("PublishControl: %v", err)
	}
	nControl := 0
	if withControl {
		nControl = 1
	}
	got, control := read(t, len(events), nControl)
	for _, vdn := range []string{"25", "26"} {
		if want, have := idsOf(events, vdn), idsOf(got, vdn); !slices.Equal(want, have) {
			t.Errorf("VDN %s: acknowledged %v, read back %v", vdn, want, have)
		}
	}
	if withControl && (len(control) != 1 || control[0].ID != hb.ID) {
		t.Errorf("control records read back %v, want the heartbeat %s", control, hb.ID)
	}
	// Last, since the record may still have been written: an error promises
	// nothing either way, only that the caller must publish again.
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.Publish(ended, callEvent(t, enc, 25, 99)); err == nil {
		t.Error("Publish on an ended context returned nil")
	}
}

// Source checks s against the Source contract for window w: a nil error
// means every call of w was read, each with a callId (not empty), a callId
// repeated only by rows that differ in content (a row that changed while it
// was read: the later is the newer); want, when not nil, is the set of
// completed calls w holds; every bad row carries its raw JSON and a reason;
// every suspect span lies in w; a read on an ended context fails.
func Source(t *testing.T, s poller.Source, w ccms.Window, want []string) {
	r, err := s.ReadWindow(t.Context(), w)
	if err != nil {
		t.Fatalf("ReadWindow %v: %v", w, err)
	}
	rows := map[string][]ccms.Call{}
	completed := map[string]bool{}
	for _, c := range r.Calls {
		if c.CallID == "" {
			t.Errorf("ReadWindow %v: a call without a call id", w)
		}
		for _, prev := range rows[c.CallID] {
			if prev.Same(c) {
				t.Errorf("ReadWindow %v: call id %q repeated with the same content", w, c.CallID)
			}
		}
		rows[c.CallID] = append(rows[c.CallID], c)
		if c.Completed() {
			completed[c.CallID] = true
		}
	}
	for _, b := range r.Bad {
		if len(b.Raw) == 0 || b.Reason == "" {
			t.Errorf("ReadWindow %v: a bad row without its raw JSON or a reason: %q", w, b.Reason)
		}
	}
	for _, sp := range r.Suspect {
		if sp.Start.Before(w.Start) || sp.End.After(w.End) || !sp.End.After(sp.Start) || sp.Reason == "" {
			t.Errorf("ReadWindow %v: suspect span [%v, %v) %q is not a span of the window with a reason", w, sp.Start, sp.End, sp.Reason)
		}
	}
	if want != nil {
		got := slices.Sorted(maps.Keys(completed))
		want = slices.Sorted(slices.Values(want))
		if !slices.Equal(got, want) {
			t.Errorf("ReadWindow %v: %d completed calls, the window holds %d", w, len(got), len(want))
		}
	}
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.ReadWindow(ended, w); err == nil {
		t.Errorf("ReadWindow on an ended context returned nil")
	}
}

// Store checks a fresh store s against the Store contract: a stream never
// committed has a zero state; after Commit, State is the old state advanced
// by dedupe.StreamState.Apply; Unseen answers the keys not seen with their
// hash, a subsequence in the order asked, Update set where the hash differs;
// CountSeen counts a stream's seen calls by the day of their callEnd.
func Store(t *testing.T, s poller.Store) {
	const stream = "1/25/in"
	st, err := s.State(stream)
	if err != nil || !st.Cursor.IsZero() || len(st.Pending) != 0 || st.SealedDay != "" {
		t.Fatalf("State of a new stream = %+v, %v; want a zero state", st, err)
	}
	key := func(id string, hash uint64) dedupe.Key {
		return dedupe.Key{Stream: stream, CallID: id, CallEnd: testTime, Hash: hash}
	}
	cursor := testTime.Add(time.Minute)
	b := dedupe.Batch{Stream: stream, Seen: []dedupe.Key{key("a", 1), key("c", 3)}, Cursor: &cursor,
		Pending: []dedupe.Pending{{CallID: "p", FilterTime: testTime, FirstSeen: testTime}}}
	if err := s.Commit(b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	after, err := s.State(stream)
	if want := st.Apply(b); err != nil || !sameState(after, want) {
		t.Errorf("State after Commit = %+v, %v; want Apply's %+v", after, err, want)
	}
	got, err := s.Unseen([]dedupe.Key{key("a", 1), key("b", 2), key("c", 4), key("d", 5)})
	if err != nil {
		t.Fatalf("Unseen: %v", err)
	}
	if want := "b false, c true, d false"; describe(got) != want {
		t.Errorf("Unseen = %s, want %s", describe(got), want)
	}
	if n, err := s.CountSeen(stream, testTime); err != nil || n != 2 {
		t.Errorf("CountSeen = %d, %v; want 2", n, err)
	}
}

var testTime = time.Date(2026, 3, 28, 10, 0, 0, 0, time.UTC)

func encoder(t *testing.T) *schemas.Encoder {
	enc, err := schemas.NewEncoder(schemas.EncoderOptions{PII: schemas.PIIPlain})
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func callEvent(t *testing.T, enc *schemas.Encoder, vdn, seq int) schemas.Event {
	e, err := enc.CallCompleted(schemas.Call{CCID: 1, VDN: vdn, Inbound: true, CallID: fmt.Sprintf("contract-%d", seq),
		WaitBegin: testTime, CallEnd: testTime.Add(time.Duration(seq) * time.Second)}, false)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func idsOf(events []schemas.Event, key string) []string {
	var out []string
	for _, e := range events {
		if e.PartitionKey == key {
			out = append(out, e.ID)
		}
	}
	return out
}

func describe(keys []dedupe.Key) string {
	var s string
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %v", k.CallID, k.Update)
	}
	return s
}

func sameState(a, b dedupe.StreamState) bool {
	if a.Stream != b.Stream || !a.Cursor.Equal(b.Cursor) || !a.LastSweep.Equal(b.LastSweep) ||
		a.SealedDay != b.SealedDay || a.LastChanceDay != b.LastChanceDay || len(a.Pending) != len(b.Pending) {
		return false
	}
	for i := range a.Pending {
		x, y := a.Pending[i], b.Pending[i]
		if x.CallID != y.CallID || !x.FilterTime.Equal(y.FilterTime) || !x.FirstSeen.Equal(y.FirstSeen) {
			return false
		}
	}
	return true
}
