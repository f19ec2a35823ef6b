package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/callpub/callpub/poller"
)

// fakeStatus answers like a poller of two streams and remembers the query
// it was asked.
type fakeStatus struct{ asked *poller.StatusQuery }

func (f fakeStatus) StatusOf(_ time.Time, q poller.StatusQuery) poller.Status {
	*f.asked = q
	s := poller.Status{Now: time.Date(2025, 1, 2, 12, 0, 0, 0, time.UTC), Streams: 2, Rows: []poller.StreamStatus{}}
	for _, row := range []poller.StreamStatus{
		{Stream: "1/1/in", VDN: 1, Direction: "in", LastError: "http 503"},
		{Stream: "1/1/out", VDN: 1, Direction: "out"},
	} {
		if q.Stream == "" || q.Stream == row.Stream {
			s.Rows = append(s.Rows, row)
		}
	}
	return s
}

func TestOpsEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "callpub_streams", Help: "h"}, func() float64 { return 2 }))
	var ready atomic.Bool
	h := opsHandler(reg, &ready, fakeStatus{asked: new(poller.StatusQuery)})
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	if rec := get("/healthz"); rec.Code != 200 {
		t.Errorf("/healthz %d, want 200 (it never depends on Kafka or CC-CMS)", rec.Code)
	}
	if rec := get("/readyz"); rec.Code != 503 {
		t.Errorf("/readyz before start-up %d, want 503", rec.Code)
	}
	ready.Store(true)
	if rec := get("/readyz"); rec.Code != 200 {
		t.Errorf("/readyz after start-up %d, want 200", rec.Code)
	}
	if rec := get("/metrics"); !strings.Contains(rec.Body.String(), "callpub_streams 2") {
		t.Errorf("/metrics lacks callpub_streams:\n%s", rec.Body)
	}
	var st poller.Status
	if err := json.Unmarshal(get("/status?stream=1/1/in").Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Rows) != 1 || st.Rows[0].Stream != "1/1/in" || st.Rows[0].LastError != "http 503" {
		t.Errorf("/status?stream=1/1/in gave %+v", st.Rows)
	}
}

func TestStatusParametersBecomeTheQuery(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  poller.StatusQuery
	}{
		{"no parameter asks for the first page of every stream", "", poller.StatusQuery{Limit: 1000}},
		{"a stream asks for that stream", "?stream=1/25/in", poller.StatusQuery{Stream: "1/25/in", Limit: 1000}},
		{"a VDN and a direction narrow the rows", "?vdn=25&direction=out", poller.StatusQuery{VDN: 25, Direction: poller.Out, Limit: 1000}},
		{"failing and behind take 1 or true", "?failing=1&behind=true", poller.StatusQuery{Failing: true, Behind: true, Limit: 1000}},
		{"limit and after page the rows", "?limit=50&after=1/25/out", poller.StatusQuery{Limit: 50, After: poller.Stream{CCID: 1, VDN: 25, Dir: poller.Out}}},
		{"limit 0 asks for the summary only", "?limit=0", poller.StatusQuery{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, asked := askStatus(tt.query)
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if diff := cmp.Diff(tt.want, *asked); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
		})
	}
}

// askStatus asks the ops handler for /status with query, and returns the
// answer and the query the poller was asked.
func askStatus(query string) (*httptest.ResponseRecorder, *poller.StatusQuery) {
	asked := new(poller.StatusQuery)
	h := opsHandler(prometheus.NewRegistry(), new(atomic.Bool), fakeStatus{asked: asked})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status"+query, nil))
	return rec, asked
}

func TestBadStatusParametersAreRefusedNamingEachOne(t *testing.T) {
	tests := []struct {
		name  string
		query string
		say   []string
	}{
		{"a stream not in ccId/vdn/dir form", "?stream=25", []string{"stream"}},
		{"a VDN that is no number", "?vdn=x", []string{"vdn"}},
		{"a negative limit", "?limit=-1", []string{"limit"}},
		{"a direction other than in or out", "?direction=both", []string{"direction"}},
		{"a flag that is not a boolean, and a bad after", "?failing=yes&after=1/2/up", []string{"failing", "after"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, _ := askStatus(tt.query)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", rec.Code)
			}
			for _, s := range tt.say {
				if !strings.Contains(rec.Body.String(), s) {
					t.Errorf("the answer %q does not name %s", rec.Body, s)
				}
			}
		})
	}
}

func TestStatusIsCompactUnlessPrettyIsAsked(t *testing.T) {
	h := opsHandler(prometheus.NewRegistry(), new(atomic.Bool), fakeStatus{asked: new(poller.StatusQuery)})
	get := func(path string) []byte {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Body.Bytes()
	}
	compact, pretty := get("/status"), get("/status?pretty=1")
	if bytes.Count(compact, []byte("\n")) != 1 {
		t.Errorf("/status is not one line of JSON:\n%s", compact)
	}
	if bytes.Count(pretty, []byte("\n")) < 10 {
		t.Errorf("/status?pretty=1 is not indented:\n%s", pretty)
	}
	var a, b any
	if err := json.Unmarshal(compact, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(pretty, &b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("compact and pretty differ (-compact +pretty):\n%s", diff)
	}
}
