package poller

import (
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/schemas"
)

func keys(rows []StreamStatus) []string {
	out := []string{}
	for _, r := range rows {
		out = append(out, r.Stream)
	}
	return out
}

func TestStatusBuildsOnlyTheRowsItsQuerySelects(t *testing.T) {
	all := []string{"1/1/in", "1/1/out", "1/2/in", "1/2/out", "1/3/in", "1/3/out", "1/4/in", "1/4/out"}
	tests := []struct {
		name string
		q    StatusQuery
		want []string
	}{
		{"no filter and no limit gives every stream in VDN order", StatusQuery{Limit: -1}, all},
		{"a stream key gives that stream", StatusQuery{Stream: "1/3/in", Limit: -1}, []string{"1/3/in"}},
		{"a stream that is not owned gives nothing", StatusQuery{Stream: "1/9/in", Limit: -1}, []string{}},
		{"a VDN gives both its directions", StatusQuery{VDN: 2, Limit: -1}, []string{"1/2/in", "1/2/out"}},
		{"a direction gives that direction of every VDN", StatusQuery{Direction: Out, Limit: -1}, []string{"1/1/out", "1/2/out", "1/3/out", "1/4/out"}},
		{"failing gives the streams whose last turn failed", StatusQuery{Failing: true, Limit: -1}, []string{"1/2/in", "1/3/out"}},
		{"behind gives the streams further behind than the lag allows", StatusQuery{Behind: true, Limit: -1}, []string{"1/4/in"}},
		{"filters combine", StatusQuery{Failing: true, Direction: In, Limit: -1}, []string{"1/2/in"}},
		{"a limit gives the first rows", StatusQuery{Limit: 3}, all[:3]},
		{"limit 0 gives the summary only", StatusQuery{}, []string{}},
		{"after a stream the rows start at the next one", StatusQuery{After: Stream{CCID: 1, VDN: 2, Dir: Out}, Limit: 2}, []string{"1/3/in", "1/3/out"}},
	}
	p := idlePoller(t, prometheus.NewRegistry())
	now := time.Now()
	shape(p, now)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := p.StatusOf(now, tt.q)
			if got := keys(s.Rows); !slices.Equal(got, tt.want) {
				t.Errorf("rows %v, want %v", got, tt.want)
			}
			// The summary covers every stream, whatever the query.
			if s.Streams != 8 || s.Failing != 2 || s.Behind != 1 || s.Unpolled != 1 {
				t.Errorf("summary: %d streams, %d failing, %d behind, %d unpolled; want 8, 2, 1, 1",
					s.Streams, s.Failing, s.Behind, s.Unpolled)
			}
		})
	}
}

func TestStatusSummaryHasTheLeastHeadroomOfEveryStream(t *testing.T) {
	p := idlePoller(t, prometheus.NewRegistry())
	now := time.Now()
	shape(p, now)
	p.streams[5].state.Cursor = now.Add(-30 * time.Hour) // a day before the others
	s := p.StatusOf(now, StatusQuery{Limit: -1})
	least := s.Rows[0].HeadroomSeconds
	for _, r := range s.Rows {
		least = min(least, r.HeadroomSeconds)
	}
	if s.MinHeadroomSec != least || least != s.Rows[5].HeadroomSeconds || least == s.Rows[0].HeadroomSeconds {
		t.Errorf("min_horizon_headroom_seconds %v, want %v (%s's, a day behind the others)", s.MinHeadroomSec, least, s.Rows[5].Stream)
	}
}

func TestStatusPagesFollowNextAfterThroughEveryMatchingStream(t *testing.T) {
	tests := []struct {
		name  string
		q     StatusQuery
		limit int
	}{
		{"pages of three over eight streams", StatusQuery{}, 3},
		{"pages of one over the failing streams", StatusQuery{Failing: true}, 1},
		{"a page as large as the matches has no next page", StatusQuery{Direction: In}, 4},
	}
	p := idlePoller(t, prometheus.NewRegistry())
	now := time.Now()
	shape(p, now)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			whole := tt.q
			whole.Limit = -1
			want := p.StatusOf(now, whole)
			var got []string
			q := tt.q
			q.Limit = tt.limit
			for range 10 {
				s := p.StatusOf(now, q)
				if s.Matched != want.Matched {
					t.Errorf("a page says %d streams match, want %d", s.Matched, want.Matched)
				}
				got = append(got, keys(s.Rows)...)
				if s.NextAfter == "" {
					break
				}
				var err error
				if q.After, err = schemas.ParseStream(s.NextAfter); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Equal(got, keys(want.Rows)) {
				t.Errorf("pages gave %v, want %v", got, keys(want.Rows))
			}
		})
	}
}

func TestStatusAfterAStreamThisReplicaDoesNotOwnStartsAtTheNextOwnedOne(t *testing.T) {
	p := idlePoller(t, prometheus.NewRegistry(), 1, 3) // a shard owning VDNs 1 and 3
	s := p.StatusOf(time.Now(), StatusQuery{After: Stream{CCID: 1, VDN: 2, Dir: In}, Limit: -1})
	if got, want := keys(s.Rows), []string{"1/3/in", "1/3/out"}; !slices.Equal(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
}

// BenchmarkStatus prints what /status costs at 10,000 streams (5,000 VDNs in
// both directions), for one stream, a page and all of them: the time to
// select and build the rows and encode them as the handler does (compact
// JSON), and the answer's bytes. Every stream has a cursor and a success,
// one in 20 a pending call, one in 100 a recent error.
func BenchmarkStatus(b *testing.B) {
	vdns := make(VDNSet, 5000)
	for i := range vdns {
		vdns[i] = i + 1
	}
	p := idlePollerOf(b, prometheus.NewRegistry(), vdns)
	now := time.Now()
	for i, ls := range p.streams {
		ls.state.Cursor, ls.lastOK = now.Add(-20*time.Second), now.Add(-15*time.Second)
		if i%20 == 0 {
			ls.state.Pending = []dedupe.Pending{{CallID: "c" + strconv.Itoa(i), FilterTime: now.Add(-4 * time.Minute)}}
		}
		if i%100 == 0 {
			ls.failure = &failure{err: "ccms: http 503 after 3 attempts", at: now.Add(-time.Second)}
		}
	}
	for _, bm := range []struct {
		name string
		q    StatusQuery
	}{
		{"one stream", StatusQuery{Stream: "1/2500/in", Limit: 1000}},
		{"summary only", StatusQuery{}},
		{"failing streams", StatusQuery{Failing: true, Limit: 1000}},
		{"first page of 1000", StatusQuery{Limit: 1000}},
		{"all 10000 streams", StatusQuery{Limit: -1}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			var w countingWriter
			for b.Loop() {
				w = 0
				if err := json.NewEncoder(&w).Encode(p.StatusOf(now, bm.q)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(w), "bytes")
		})
	}
}

// countingWriter counts what is written to it.
type countingWriter int

func (w *countingWriter) Write(b []byte) (int, error) {
	*w += countingWriter(len(b))
	return len(b), nil
}
