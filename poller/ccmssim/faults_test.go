package ccmssim

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
)

func TestFailNextForcesEachFaultThenStops(t *testing.T) {
	from := testNow.Add(-6 * time.Hour)
	tests := []struct {
		kind  FaultKind
		check func(t *testing.T, w *httptest.ResponseRecorder, normal []byte, count int)
	}{
		{FaultServerError, func(t *testing.T, w *httptest.ResponseRecorder, _ []byte, _ int) {
			if w.Code < 500 || w.Code > 504 {
				t.Errorf("status %d, want 500..504", w.Code)
			}
		}},
		{FaultRateLimit, func(t *testing.T, w *httptest.ResponseRecorder, _ []byte, _ int) {
			if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" {
				t.Errorf("status %d Retry-After %q, want 429 and 2 (1.5s rounded up)", w.Code, w.Header().Get("Retry-After"))
			}
		}},
		{FaultResultError, func(t *testing.T, w *httptest.ResponseRecorder, _ []byte, _ int) {
			var resp wireResponse
			var desc string
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || w.Code != 200 || resp.ResultCode != "0100001" ||
				json.Unmarshal(resp.ResultDesc, &desc) != nil {
				t.Errorf("status %d body %s, want 200 with resultCode 0100001 and a string resultDesc", w.Code, w.Body)
			}
		}},
		{FaultMalformed, func(t *testing.T, w *httptest.ResponseRecorder, _ []byte, _ int) {
			if w.Code != 200 || json.Valid(w.Body.Bytes()) {
				t.Errorf("status %d, valid JSON %v: want 200 and a body that is not JSON", w.Code, json.Valid(w.Body.Bytes()))
			}
		}},
		{FaultTruncate, func(t *testing.T, w *httptest.ResponseRecorder, normal []byte, _ int) {
			b := w.Body.Bytes()
			if len(b) >= len(normal) || !bytes.HasPrefix(normal, b) || json.Valid(b) {
				t.Errorf("got %d of %d bytes: want a strict, invalid prefix of the normal body", len(b), len(normal))
			}
		}},
		{FaultNumbersAsStrings, func(t *testing.T, w *httptest.ResponseRecorder, _ []byte, count int) {
			var resp struct {
				ResultDesc struct {
					Data  []map[string]any `json:"data"`
					Count any              `json:"count"`
				} `json:"resultDesc"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			if resp.ResultDesc.Count != itoa(count) {
				t.Errorf("count = %#v, want the string %q", resp.ResultDesc.Count, itoa(count))
			}
			for _, row := range resp.ResultDesc.Data {
				for _, k := range []string{"logDate", "callType", "waitBegin", "callEnd", "vdn", "leaveReason", "mediaType"} {
					if _, ok := row[k].(string); !ok {
						t.Errorf("%s = %#v, want a numeric string", k, row[k])
					}
				}
			}
		}},
		{FaultIgnoreOffset, func(t *testing.T, w *httptest.ResponseRecorder, normal []byte, _ int) {
			// The request asks for offset 100; the answer is the first page.
			if !bytes.Contains(w.Body.Bytes(), firstRowsOf(t, normal)) {
				t.Error("offset 100 did not return the rows of offset 0")
			}
		}},
		{FaultCountDrift, func(t *testing.T, w *httptest.ResponseRecorder, _ []byte, count int) {
			if !strings.HasSuffix(w.Body.String(), `"count":`+itoa(count+3)+`}}`) {
				t.Errorf("body ends %q, want count %d (true count %d + CountDrift 3)", tail(w.Body.String()), count+3, count)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind)+" is forced on the next 2 requests only", func(t *testing.T) {
			s, _ := newSim(t, Options{Faults: Faults{RetryAfter: 1500 * time.Millisecond, CountDrift: 0}})
			first := serve(t, s, reqSpec{body: body(t, queryBody(1, true, from, testNow, 100, 0))})
			if !strings.Contains(first.Body.String(), `"resultCode":"0100000"`) {
				t.Fatalf("unfaulted request failed: %s", first.Body)
			}
			count := page(t, s, queryBody(1, true, from, testNow, 100, 0)).Count
			offset := 0
			if tt.kind == FaultIgnoreOffset {
				offset = 100
			}
			if tt.kind == FaultCountDrift {
				s.SetFaults(Faults{CountDrift: 3}) // forced drift is +CountDrift
			}
			s.FailNext(tt.kind, 2)
			req := reqSpec{body: body(t, queryBody(1, true, from, testNow, 100, offset))}
			for range 2 {
				w := serve(t, s, req)
				tt.check(t, w, first.Body.Bytes(), count)
			}
			if tt.kind == FaultCountDrift {
				s.SetFaults(Faults{})
			}
			third := serve(t, s, reqSpec{body: body(t, queryBody(1, true, from, testNow, 100, 0))})
			if !bytes.Equal(third.Body.Bytes(), first.Body.Bytes()) {
				t.Errorf("third request still faulted: status %d, %d bytes", third.Code, third.Body.Len())
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func tail(s string) string { return s[max(0, len(s)-30):] }

// firstRowsOf returns the first data row of a success body.
func firstRowsOf(t *testing.T, body []byte) []byte {
	t.Helper()
	var resp struct {
		ResultDesc struct {
			Data []json.RawMessage `json:"data"`
		} `json:"resultDesc"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || len(resp.ResultDesc.Data) == 0 {
		t.Fatalf("no rows in %s", body)
	}
	return resp.ResultDesc.Data[0]
}

func TestSlowAndTimeoutFaultsWaitAndRespectTheRequestContext(t *testing.T) {
	b := []byte(`{"ccId":1,"vdn":2,"beginDate":` + strconv.FormatInt(testNow.Add(-time.Hour).UnixMilli(), 10) + `,"endDate":` +
		strconv.FormatInt(testNow.UnixMilli(), 10) + `,"isCallIn":"true"}`)
	tests := []struct {
		name       string
		kind       FaultKind
		ctxTimeout time.Duration
		wantWait   time.Duration
		wantStatus int
		wantBody   bool
	}{
		{"a slow request answers normally after SlowDelay", FaultSlow, 0, 3 * time.Second, 200, true},
		{"a slow request whose client gives up gets nothing", FaultSlow, time.Second, time.Second, 0, false},
		{"a timeout holds the request until the client gives up", FaultTimeout, 10 * time.Second, 10 * time.Second, 0, false},
		{"a timeout answers 504 after TimeoutDelay if the client waits", FaultTimeout, 0, 30 * time.Second, 504, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, _ := newSim(t, Options{Faults: Faults{SlowDelay: 3 * time.Second, TimeoutDelay: 30 * time.Second}})
				s.FailNext(tt.kind, 1)
				r := newRequest(t, s.Now(), reqSpec{body: b})
				ctx := t.Context()
				if tt.ctxTimeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.ctxTimeout)
					defer cancel()
				}
				w := httptest.NewRecorder()
				start := time.Now() // virtual time inside the bubble
				s.ServeHTTP(w, r.WithContext(ctx))
				if waited := time.Since(start); waited != tt.wantWait {
					t.Errorf("handler took %v of virtual time, want %v", waited, tt.wantWait)
				}
				if tt.wantBody != (w.Body.Len() > 0) || tt.wantBody && w.Code != tt.wantStatus {
					t.Errorf("status %d, %d body bytes; want status %d, body %v", w.Code, w.Body.Len(), tt.wantStatus, tt.wantBody)
				}
			})
		})
	}
}

func TestProbabilisticFaultsFollowSetFaults(t *testing.T) {
	s, _ := newSim(t, Options{Faults: Faults{ServerError: 1}})
	req := reqSpec{body: body(t, queryBody(1, true, testNow.Add(-time.Hour), testNow, 10, 0))}
	if w := serve(t, s, req); w.Code < 500 {
		t.Errorf("ServerError 1: status %d, want 5xx", w.Code)
	}
	s.SetFaults(Faults{ServerError: 1, ServerStatus: 502})
	for range 10 {
		if w := serve(t, s, req); w.Code != http.StatusBadGateway {
			t.Errorf("ServerError 1, ServerStatus 502: status %d, want 502 every time", w.Code)
		}
	}
	s.SetFaults(Faults{RateLimit: 1})
	if w := serve(t, s, req); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Errorf("RateLimit 1: status %d, Retry-After %q; want 429 and the default 1", w.Code, w.Header().Get("Retry-After"))
	}
	s.SetFaults(Faults{})
	if w := serve(t, s, req); !strings.Contains(w.Body.String(), `"resultCode":"0100000"`) {
		t.Errorf("no faults: %d %s", w.Code, w.Body)
	}
	// A drifting count stays within CountDrift of the truth.
	truth := page(t, s, queryBody(1, true, testNow.Add(-time.Hour), testNow, 10, 0)).Count
	s.SetFaults(Faults{CountDrift: 2})
	for range 20 {
		if c := page(t, s, queryBody(1, true, testNow.Add(-time.Hour), testNow, 10, 0)).Count; c < truth-2 || c > truth+2 {
			t.Errorf("count %d, want within 2 of %d", c, truth)
		}
	}
}

func TestFaultsAreSafeToChangeWhileServing(t *testing.T) {
	s, _ := newSim(t, Options{})
	req := reqSpec{body: body(t, queryBody(1, true, testNow.Add(-time.Hour), testNow, 10, 0))}
	var kinds []FaultKind // those that do not wait on real timers
	for _, k := range FaultKinds {
		if k != FaultSlow && k != FaultTimeout {
			kinds = append(kinds, k)
		}
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 50 {
				serve(t, s, req)
			}
		})
		wg.Go(func() {
			for j := range 50 {
				s.SetFaults(Faults{Malformed: 0.5, CountDrift: i})
				s.FailNext(kinds[j%len(kinds)], 1)
			}
		})
	}
	wg.Wait()
	if got := s.Requests(); got != 200 {
		t.Errorf("Requests() = %d, want 200", got)
	}
}

func TestParseFaultsReadsTheFlagSyntax(t *testing.T) {
	got, err := ParseFaults("5xx=0.05,429=0.02,slow=0.01,truncate=0.01,malformed=0.01,resultcode=0.01,strings,ignore-offset,count-drift=2,timeout=0.001,retry-after=3s,slow-delay=5s,timeout-delay=1m," +
		"poison=0.02,poison-kind=negative-time,count-per-page,page-cap=50,5xx-status=502")
	if err != nil {
		t.Fatal(err)
	}
	want := Faults{ServerError: 0.05, RateLimit: 0.02, Slow: 0.01, Truncate: 0.01, Malformed: 0.01, ResultError: 0.01,
		NumbersAsStrings: true, IgnoreOffset: true, CountDrift: 2, Timeout: 0.001,
		RetryAfter: 3 * time.Second, SlowDelay: 5 * time.Second, TimeoutDelay: time.Minute,
		Poison: 0.02, PoisonKind: PoisonNegativeTime, CountPerPage: true, PageCap: 50, ServerStatus: 502}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("ParseFaults (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"5xx", "5xx=2", "429=x", "count-drift=-1", "strings=maybe", "gremlins=1", "slow-delay=soon",
		"poison=2", "poison", "poison-kind=gremlin", "page-cap=-1", "page-cap", "count-per-page=perhaps",
		"5xx-status=429", "5xx-status=600", "5xx-status"} {
		t.Run("the spec "+bad+" is refused", func(t *testing.T) {
			if _, err := ParseFaults(bad); err == nil {
				t.Errorf("ParseFaults(%q) accepted it", bad)
			}
		})
	}
	if f, err := ParseFaults(""); err != nil || f != (Faults{}) {
		t.Errorf("ParseFaults(\"\") = %+v, %v; want no faults", f, err)
	}
}
