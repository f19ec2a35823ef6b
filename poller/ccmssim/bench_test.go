package ccmssim

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkServePages serves full 100-row pages of a busy VDN (600 calls an
// hour) through ServeHTTP, signature check and validation included. Each
// request filters and sorts its whole window, so the window's size matters.
func BenchmarkServePages(b *testing.B) {
	for _, w := range []struct {
		name string
		span time.Duration
	}{{"window=1h", time.Hour}, {"window=since-yesterday", 39 * time.Hour}} {
		b.Run(w.name, func(b *testing.B) { benchmarkPages(b, testNow.Add(-w.span)) })
	}
}

func benchmarkPages(b *testing.B, earliest time.Time) {
	s, _ := newSim(b, Options{Traffic: Traffic{BusyPerHour: 600, Flat: true}})
	count := page(b, s, queryBody(1, true, earliest, testNow, 100, 0)).Count
	if count < 200 {
		b.Fatalf("only %d rows", count)
	}
	// Signed once: the manual clock does not move, so the signatures stay fresh.
	type signed struct {
		r    *http.Request
		body []byte
	}
	var reqs []signed
	for offset := 0; offset+100 <= count && len(reqs) < 10; offset += 100 {
		body := body(b, queryBody(1, true, earliest, testNow, 100, offset))
		reqs = append(reqs, signed{newRequest(b, s.Now(), reqSpec{body: body}), body})
	}
	var pages, rows int
	start := time.Now()
	for b.Loop() {
		req := reqs[pages%len(reqs)]
		r := req.r.Clone(b.Context())
		r.Body = io.NopCloser(bytes.NewReader(req.body))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != 200 || !bytes.Contains(w.Body.Bytes(), []byte(`"count":`)) {
			b.Fatalf("status %d", w.Code)
		}
		pages++
		rows += 100
	}
	secs := time.Since(start).Seconds()
	b.ReportMetric(float64(pages)/secs, "pages/s")
	b.ReportMetric(float64(rows)/secs, "rows/s")
}

// BenchmarkOracleDay is the oracle over a whole day of 5000 VDNs.
func BenchmarkOracleDay(b *testing.B) {
	s, _ := newSim(b, Options{VDNs: 5000})
	var calls int
	for b.Loop() {
		calls = len(s.Oracle(testNow.Add(-24*time.Hour), testNow))
	}
	b.ReportMetric(float64(calls), "calls/op")
}
