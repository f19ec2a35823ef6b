package main

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/callpub/callpub/poller"
)

// statusSource is what /status needs; *poller.Poller implements it.
type statusSource interface {
	Status(now time.Time) poller.Status
}

// opsHandler serves /metrics, /healthz (the process is alive: never depends
// on Kafka or CC-CMS, because a restart does not fix an outage), /readyz
// (start-up checks passed and the workers run) and /status (per-stream JSON).
func opsHandler(reg *prometheus.Registry, ready *atomic.Bool, st statusSource) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("starting\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		s := st.Status(time.Now())
		if want := r.URL.Query().Get("stream"); want != "" {
			rows := s.Rows[:0:0]
			for _, row := range s.Rows {
				if row.Stream == want {
					rows = append(rows, row)
				}
			}
			s.Rows = rows
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s)
	})
	return mux
}
