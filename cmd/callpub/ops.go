package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/schemas"
)

// statusSource is what /status needs; *poller.Poller implements it.
type statusSource interface {
	StatusOf(now time.Time, q poller.StatusQuery) poller.Status
}

// statusPageRows is how many rows /status returns without ?limit=.
const statusPageRows = 1000

// opsHandler serves /metrics, /healthz (the process is alive: never depends
// on Kafka or CC-CMS, because a restart does not fix an outage), /readyz
// (start-up checks passed and the workers run) and /status (a summary of
// every stream and a page of per-stream rows, JSON).
func opsHandler(metrics prometheus.Gatherer, ready *atomic.Bool, st statusSource) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
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
		q, pretty, err := statusQuery(r.URL.Query())
		if err != nil {
			http.Error(w, "status: "+err.Error(), http.StatusBadRequest)
			return
		}
		s := st.StatusOf(time.Now(), q)
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		if pretty {
			enc.SetIndent("", "  ")
		}
		_ = enc.Encode(s)
	})
	return mux
}

// statusQuery reads /status's parameters: stream=1/25/in, vdn=25,
// direction=in|out, failing=1, behind=1 select rows; limit=N (default
// 1000; 0: the summary only) and after=<next_after of the page before> page
// them; pretty=1 indents the JSON.
func statusQuery(v url.Values) (q poller.StatusQuery, pretty bool, err error) {
	q.Limit = statusPageRows
	var errs []error
	flag := func(name string) bool {
		s := v.Get(name)
		if s == "" {
			return false
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q is not 1, 0, true or false", name, s))
		}
		return b
	}
	stream := func(name string) poller.Stream {
		s := v.Get(name)
		if s == "" {
			return poller.Stream{}
		}
		st, err := schemas.ParseStream(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return st
	}
	number := func(name string, least int) (int, bool) {
		s := v.Get(name)
		if s == "" {
			return 0, false
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < least {
			errs = append(errs, fmt.Errorf("%s=%q is not a whole number of at least %d", name, s, least))
		}
		return n, true
	}
	if st := stream("stream"); st != (poller.Stream{}) {
		q.Stream = st.Key()
	}
	q.After = stream("after")
	q.VDN, _ = number("vdn", 1)
	if n, ok := number("limit", 0); ok {
		q.Limit = n
	}
	switch d := poller.Direction(v.Get("direction")); d {
	case "", poller.In, poller.Out:
		q.Direction = d
	default:
		errs = append(errs, fmt.Errorf("direction=%q is not in or out", d))
	}
	q.Failing, q.Behind, pretty = flag("failing"), flag("behind"), flag("pretty")
	return q, pretty, errors.Join(errs...)
}
