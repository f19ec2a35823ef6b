package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callpub/callpub/poller"
)

type fakeStatus struct{}

func (fakeStatus) Status(now time.Time) poller.Status {
	return poller.Status{Now: now, Streams: 2, Rows: []poller.StreamStatus{
		{Stream: "1/1/in", VDN: 1, Direction: "in", LastError: "http 503"},
		{Stream: "1/1/out", VDN: 1, Direction: "out"},
	}}
}

func TestOpsEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "callpub_streams", Help: "h"}, func() float64 { return 2 }))
	var ready atomic.Bool
	h := opsHandler(reg, &ready, fakeStatus{})
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
