package ccmssim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// testNow is a Monday afternoon; yesterday and today are ordinary days in UTC.
var testNow = time.Date(2025, 3, 10, 15, 0, 0, 0, time.UTC)

func newSim(t testing.TB, o Options) (*Sim, *ManualClock) {
	t.Helper()
	clock := NewManualClock(testNow)
	if o.AK == "" {
		o.AK, o.SK = testAK, testSK
	}
	if o.CCID == 0 {
		o.CCID = 1
	}
	if o.VDNs == 0 {
		o.VDNs = 50
	}
	if o.Seed == 0 {
		o.Seed = 7
	}
	if o.Clock == nil {
		o.Clock = clock
	} else {
		clock = o.Clock.(*ManualClock)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s, clock
}

// wireRow is a data element as a test reads it, independent of the package's types.
type wireRow struct {
	LogDate      int64  `json:"logDate"`
	CallerNo     string `json:"callerNo"`
	CalleeNo     string `json:"calleeNo"`
	CallID       string `json:"callId"`
	CallType     int    `json:"callType"`
	WaitBegin    int64  `json:"waitBegin"`
	AckBegin     int64  `json:"ackBegin"`
	CallBegin    int64  `json:"callBegin"`
	CallEnd      int64  `json:"callEnd"`
	VDN          int    `json:"vdn"`
	LeaveReason  int    `json:"leaveReason"`
	MediaType    int    `json:"mediaType"`
	SubMediaType int    `json:"subMediaType"`
}

type wireResponse struct {
	ResultCode string          `json:"resultCode"`
	ResultDesc json.RawMessage `json:"resultDesc"`
}

type wirePage struct {
	Data  []wireRow `json:"data"`
	Count int       `json:"count"`
}

// queryBody is a valid body for vdn and direction over [begin, end] (inclusive ms).
func queryBody(vdn int, inbound bool, begin, end time.Time, limit, offset int) map[string]any {
	m := map[string]any{"ccId": 1, "vdn": vdn, "beginDate": begin.UnixMilli(), "endDate": end.UnixMilli(),
		"isCallIn": "false"}
	if inbound {
		m["isCallIn"] = "true"
	}
	if limit > 0 {
		m["limit"] = limit
		m["offset"] = offset
	}
	return m
}

// serve signs and serves one request, returning the recorder.
func serve(t testing.TB, s *Sim, spec reqSpec) *httptest.ResponseRecorder {
	t.Helper()
	r := newRequest(t, s.Now(), spec)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// page serves a query and decodes a success page, failing the test otherwise.
func page(t testing.TB, s *Sim, fields map[string]any) wirePage {
	t.Helper()
	w := serve(t, s, reqSpec{body: body(t, fields)})
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var resp wireResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
	if resp.ResultCode != "0100000" {
		t.Fatalf("resultCode %s: %s", resp.ResultCode, resp.ResultDesc)
	}
	var p wirePage
	if err := json.Unmarshal(resp.ResultDesc, &p); err != nil {
		t.Fatalf("decode resultDesc: %v", err)
	}
	return p
}

// readAll pages through a whole query with limit 100 and returns every row.
func readAll(t testing.TB, s *Sim, vdn int, inbound bool, begin, end time.Time) []wireRow {
	t.Helper()
	var rows []wireRow
	for offset := 0; ; offset += 100 {
		p := page(t, s, queryBody(vdn, inbound, begin, end, 100, offset))
		rows = append(rows, p.Data...)
		if offset+100 >= p.Count {
			if len(rows) != p.Count {
				t.Fatalf("read %d rows, count %d", len(rows), p.Count)
			}
			return rows
		}
	}
}
