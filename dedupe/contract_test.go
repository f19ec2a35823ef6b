package dedupe_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/callpub/callpub/dedupe"
)

func TestUnseen(t *testing.T) {
	late := time.Date(2026, 3, 10, 23, 59, 0, 0, time.UTC)
	tests := []struct {
		name  string
		given []dedupe.Batch
		prune time.Time // Prune(prune) before Unseen, when set
		keys  []dedupe.Key
		want  []dedupe.Key
	}{
		{
			name: "a key never committed is unseen",
			keys: []dedupe.Key{key("a", at(10, 0), 1)},
			want: []dedupe.Key{key("a", at(10, 0), 1)},
		},
		{
			name:  "a committed key with the same hash is seen",
			given: []dedupe.Batch{{Stream: testStream, Seen: []dedupe.Key{key("a", at(10, 0), 1)}}},
			keys:  []dedupe.Key{key("a", at(10, 0), 1)},
		},
		{
			name:  "a committed key with another hash comes back as an update",
			given: []dedupe.Batch{{Stream: testStream, Seen: []dedupe.Key{key("a", at(10, 0), 1)}}},
			keys:  []dedupe.Key{key("a", at(10, 0), 2)},
			want:  []dedupe.Key{{Stream: testStream, CallID: "a", CallEnd: at(10, 0), Hash: 2, Update: true}},
		},
		{
			name:  "the same call id in another stream is unseen",
			given: []dedupe.Batch{{Stream: testStream, Seen: []dedupe.Key{key("a", at(10, 0), 1)}}},
			keys:  []dedupe.Key{{Stream: "1/25/out", CallID: "a", CallEnd: at(10, 0), Hash: 1}},
			want:  []dedupe.Key{{Stream: "1/25/out", CallID: "a", CallEnd: at(10, 0), Hash: 1}},
		},
		{
			name:  "a call whose callEnd moved past midnight is found as an update",
			given: []dedupe.Batch{{Stream: testStream, Seen: []dedupe.Key{key("a", late, 1)}}},
			keys:  []dedupe.Key{key("a", late.Add(2*time.Minute), 2)},
			want:  []dedupe.Key{{Stream: testStream, CallID: "a", CallEnd: late.Add(2 * time.Minute), Hash: 2, Update: true}},
		},
		{
			name:  "a call whose callEnd moved past midnight with the same hash is seen",
			given: []dedupe.Batch{{Stream: testStream, Seen: []dedupe.Key{key("a", late, 1)}}},
			keys:  []dedupe.Key{key("a", late.Add(2*time.Minute), 1)},
		},
		{
			name: "seen keys are dropped and the order of the rest is kept",
			given: []dedupe.Batch{{Stream: testStream, Seen: []dedupe.Key{
				key("b", at(10, 0), 1), key("d", at(11, 0), 1),
			}}},
			keys: []dedupe.Key{key("e", at(9, 0), 1), key("b", at(10, 0), 1), key("c", at(12, 0), 1),
				key("d", at(11, 0), 1), key("a", at(8, 0), 1)},
			want: []dedupe.Key{key("e", at(9, 0), 1), key("c", at(12, 0), 1), key("a", at(8, 0), 1)},
		},
		{
			name: "an update flag passed in for an unknown key is cleared",
			keys: []dedupe.Key{{Stream: testStream, CallID: "a", CallEnd: at(10, 0), Hash: 1, Update: true}},
			want: []dedupe.Key{key("a", at(10, 0), 1)},
		},
		{
			name: "a pruned day forgets its calls",
			given: []dedupe.Batch{{Stream: testStream, Seen: []dedupe.Key{
				key("a", at(10, 0), 1),
			}}},
			prune: at(10, 0).AddDate(0, 0, 1),
			keys:  []dedupe.Key{key("a", at(10, 0), 1)},
			want:  []dedupe.Key{key("a", at(10, 0), 1)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, options(t))
			commit(t, s, tt.given...)
			if !tt.prune.IsZero() {
				if _, err := s.Prune(tt.prune); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.Unseen(tt.keys)
			if err != nil {
				t.Fatalf("Unseen: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Unseen (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnseenRejectsIncompleteKeys(t *testing.T) {
	s := open(t, options(t))
	for _, k := range []dedupe.Key{
		{CallID: "a", CallEnd: at(10, 0)},
		{Stream: testStream, CallEnd: at(10, 0)},
		{Stream: testStream, CallID: "a"},
	} {
		if _, err := s.Unseen([]dedupe.Key{k}); err == nil {
			t.Errorf("Unseen(%+v) = nil error, want one", k)
		}
	}
}

func TestCommit(t *testing.T) {
	late := time.Date(2026, 3, 10, 23, 59, 0, 0, time.UTC)
	tests := []struct {
		name  string
		given []dedupe.Batch
		want  dedupe.StreamState
		gaps  []dedupe.Gap
		seen  map[time.Time]int // CountSeen per day
	}{
		{
			name:  "a batch that moves nothing still lists the stream",
			given: []dedupe.Batch{{Stream: testStream}},
			want:  dedupe.StreamState{Stream: testStream},
		},
		{
			name: "the cursor moves and a nil cursor leaves it",
			given: []dedupe.Batch{
				{Stream: testStream, Cursor: ptr(at(10, 0))},
				{Stream: testStream, Seen: []dedupe.Key{key("a", at(9, 0), 1)}},
			},
			want: dedupe.StreamState{Stream: testStream, Cursor: at(10, 0)},
			seen: map[time.Time]int{at(0, 0): 1},
		},
		{
			name: "last sweep and sealed day are recorded and kept when unset",
			given: []dedupe.Batch{
				{Stream: testStream, LastSweep: ptr(at(8, 0)), SealedDay: "20260309"},
				{Stream: testStream, Cursor: ptr(at(10, 0))},
			},
			want: dedupe.StreamState{Stream: testStream, Cursor: at(10, 0), LastSweep: at(8, 0), SealedDay: "20260309"},
		},
		{
			name: "pending calls are listed by filter time",
			given: []dedupe.Batch{{Stream: testStream, Pending: []dedupe.Pending{
				{CallID: "late", FilterTime: at(9, 30), FirstSeen: at(10, 0)},
				{CallID: "early", FilterTime: at(9, 0), FirstSeen: at(10, 0)},
			}}},
			want: dedupe.StreamState{Stream: testStream, Pending: []dedupe.Pending{
				{CallID: "early", FilterTime: at(9, 0), FirstSeen: at(10, 0)},
				{CallID: "late", FilterTime: at(9, 30), FirstSeen: at(10, 0)},
			}},
		},
		{
			name: "a pending upsert keeps the first FirstSeen and takes the new filter time",
			given: []dedupe.Batch{
				{Stream: testStream, Pending: []dedupe.Pending{{CallID: "a", FilterTime: at(9, 0), FirstSeen: at(10, 0)}}},
				{Stream: testStream, Pending: []dedupe.Pending{{CallID: "a", FilterTime: at(8, 0), FirstSeen: at(11, 0)}}},
			},
			want: dedupe.StreamState{Stream: testStream, Pending: []dedupe.Pending{
				{CallID: "a", FilterTime: at(8, 0), FirstSeen: at(10, 0)},
			}},
		},
		{
			name: "resolved call ids leave pending",
			given: []dedupe.Batch{
				{Stream: testStream, Pending: []dedupe.Pending{
					{CallID: "a", FilterTime: at(9, 0)}, {CallID: "b", FilterTime: at(9, 1)},
				}},
				{Stream: testStream, Resolved: []string{"a", "never-pending"}},
			},
			want: dedupe.StreamState{Stream: testStream, Pending: []dedupe.Pending{{CallID: "b", FilterTime: at(9, 1)}}},
		},
		{
			name: "a call marked seen leaves pending",
			given: []dedupe.Batch{
				{Stream: testStream, Pending: []dedupe.Pending{{CallID: "a", FilterTime: at(9, 0)}}},
				{Stream: testStream, Seen: []dedupe.Key{key("a", at(9, 5), 1)}},
			},
			want: dedupe.StreamState{Stream: testStream},
			seen: map[time.Time]int{at(0, 0): 1},
		},
		{
			name: "pending calls of another stream are not touched",
			given: []dedupe.Batch{
				{Stream: "1/25/out", Pending: []dedupe.Pending{{CallID: "a", FilterTime: at(9, 0)}}},
				{Stream: testStream, Resolved: []string{"a"}},
			},
			want: dedupe.StreamState{Stream: testStream},
		},
		{
			name: "gaps are logged, an empty gap stream means the batch's stream",
			given: []dedupe.Batch{{Stream: testStream, Gaps: []dedupe.Gap{
				{Start: at(1, 0), End: at(2, 0), DetectedAt: at(3, 0)},
			}}},
			want: dedupe.StreamState{Stream: testStream},
			gaps: []dedupe.Gap{{Stream: testStream, Start: at(1, 0), End: at(2, 0), DetectedAt: at(3, 0)}},
		},
		{
			name: "committing the same batch twice is the same as once",
			given: []dedupe.Batch{
				{Stream: testStream, Seen: []dedupe.Key{key("a", at(9, 0), 1)}, Cursor: ptr(at(10, 0)),
					Pending: []dedupe.Pending{{CallID: "p", FilterTime: at(9, 0), FirstSeen: at(10, 0)}},
					Gaps:    []dedupe.Gap{{Start: at(1, 0), End: at(2, 0), DetectedAt: at(3, 0)}}},
				{Stream: testStream, Seen: []dedupe.Key{key("a", at(9, 0), 1)}, Cursor: ptr(at(10, 0)),
					Pending: []dedupe.Pending{{CallID: "p", FilterTime: at(9, 0), FirstSeen: at(10, 0)}},
					Gaps:    []dedupe.Gap{{Start: at(1, 0), End: at(2, 0), DetectedAt: at(3, 0)}}},
			},
			want: dedupe.StreamState{Stream: testStream, Cursor: at(10, 0),
				Pending: []dedupe.Pending{{CallID: "p", FilterTime: at(9, 0), FirstSeen: at(10, 0)}}},
			gaps: []dedupe.Gap{{Stream: testStream, Start: at(1, 0), End: at(2, 0), DetectedAt: at(3, 0)}},
			seen: map[time.Time]int{at(0, 0): 1},
		},
		{
			name: "an update across midnight moves the call to its new day",
			given: []dedupe.Batch{
				{Stream: testStream, Seen: []dedupe.Key{key("a", late, 1)}},
				{Stream: testStream, Seen: []dedupe.Key{{Stream: testStream, CallID: "a",
					CallEnd: late.Add(2 * time.Minute), Hash: 2, Update: true}}},
			},
			want: dedupe.StreamState{Stream: testStream},
			seen: map[time.Time]int{late: 0, late.Add(2 * time.Minute): 1},
		},
		{
			name: "calls are counted on the day of their callEnd",
			given: []dedupe.Batch{{Stream: testStream, Seen: []dedupe.Key{
				key("a", at(0, 0), 1), key("b", at(23, 59), 1), key("c", at(0, 0).Add(-time.Millisecond), 1),
			}}},
			want: dedupe.StreamState{Stream: testStream},
			seen: map[time.Time]int{at(12, 0): 2, at(0, 0).AddDate(0, 0, -1): 1, at(0, 0).AddDate(0, 0, 1): 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, options(t))
			commit(t, s, tt.given...)
			got, err := s.State(testStream)
			if err != nil {
				t.Fatalf("State: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("State (-want +got):\n%s", diff)
			}
			gaps, err := s.Gaps()
			if err != nil {
				t.Fatalf("Gaps: %v", err)
			}
			if diff := cmp.Diff(tt.gaps, gaps, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Gaps (-want +got):\n%s", diff)
			}
			for day, want := range tt.seen {
				n, err := s.CountSeen(testStream, day)
				if err != nil {
					t.Fatalf("CountSeen: %v", err)
				}
				if n != want {
					t.Errorf("CountSeen(%s) = %d, want %d", day.Format(time.DateOnly), n, want)
				}
			}
		})
	}
}

func TestCommitRejectsInvalidBatches(t *testing.T) {
	tests := []struct {
		name   string
		batch  dedupe.Batch
		reason string
	}{
		{"a batch without a stream is refused", dedupe.Batch{Seen: []dedupe.Key{key("a", at(9, 0), 1)}}, "empty stream"},
		{"a seen key of another stream is refused",
			dedupe.Batch{Stream: testStream, Seen: []dedupe.Key{{Stream: "1/26/in", CallID: "a", CallEnd: at(9, 0)}}},
			"belongs to another stream"},
		{"a seen key without callEnd is refused",
			dedupe.Batch{Stream: testStream, Seen: []dedupe.Key{{Stream: testStream, CallID: "a"}}}, "zero callEnd"},
		{"a seen key without call id is refused",
			dedupe.Batch{Stream: testStream, Seen: []dedupe.Key{{Stream: testStream, CallEnd: at(9, 0)}}}, "empty call id"},
		{"a call both pending and resolved is refused",
			dedupe.Batch{Stream: testStream, Pending: []dedupe.Pending{{CallID: "a", FilterTime: at(9, 0)}}, Resolved: []string{"a"}},
			"both pending and resolved"},
		{"a call both pending and seen is refused",
			dedupe.Batch{Stream: testStream, Pending: []dedupe.Pending{{CallID: "a", FilterTime: at(9, 0)}},
				Seen: []dedupe.Key{key("a", at(9, 0), 1)}},
			"both pending and seen"},
		{"a pending call without filter time is refused",
			dedupe.Batch{Stream: testStream, Pending: []dedupe.Pending{{CallID: "a"}}}, "zero filter time"},
		{"a sealed day that is not YYYYMMDD is refused",
			dedupe.Batch{Stream: testStream, SealedDay: "2026-03-09"}, "not YYYYMMDD"},
		{"a gap of another stream is refused",
			dedupe.Batch{Stream: testStream, Gaps: []dedupe.Gap{{Stream: "x", Start: at(1, 0), End: at(2, 0)}}}, "another stream"},
		{"an empty gap is refused",
			dedupe.Batch{Stream: testStream, Gaps: []dedupe.Gap{{Start: at(2, 0), End: at(2, 0)}}}, "empty or unbounded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, options(t))
			// Every invalid batch carries a valid cursor move: none of it may land.
			tt.batch.Cursor = ptr(at(10, 0))
			err := s.Commit(tt.batch)
			var be *dedupe.BatchError
			if !errors.As(err, &be) || !strings.Contains(be.Reason, tt.reason) {
				t.Fatalf("Commit = %v, want a *BatchError saying %q", err, tt.reason)
			}
			streams, err := s.Streams()
			if err != nil {
				t.Fatal(err)
			}
			if len(streams) != 0 {
				t.Errorf("a refused batch left state behind: %+v", streams)
			}
		})
	}
}
