package ccmssim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestEveryBrokenRuleAnswersInvalidParameterWithAStringDesc(t *testing.T) {
	s, _ := newSim(t, Options{})
	earliest, latest := s.AllowedRange(testNow)
	valid := func() map[string]any { return queryBody(1, true, testNow.Add(-time.Hour), testNow, 100, 0) }
	with := func(k string, v any) map[string]any {
		m := valid()
		m[k] = v
		return m
	}
	without := func(k string) map[string]any {
		m := valid()
		delete(m, k)
		return m
	}
	tests := []struct {
		name string
		spec reqSpec
	}{
		{name: "GET is refused", spec: reqSpec{method: http.MethodGet}},
		{name: "PUT is refused", spec: reqSpec{method: http.MethodPut}},
		{name: "a Content-Type without charset is refused", spec: reqSpec{contentType: "application/json"}},
		{name: "a Content-Type that is not JSON is refused", spec: reqSpec{contentType: "text/plain; charset=UTF-8"}},
		{name: "a charset other than UTF-8 is refused", spec: reqSpec{contentType: "application/json; charset=ISO-8859-1"}},
		{name: "a body that is not JSON is refused", spec: reqSpec{body: []byte(`{"ccId":1,`)}},
		{name: "a JSON array body is refused", spec: reqSpec{body: []byte(`[1]`)}},
		{name: "a missing ccId is refused", spec: reqSpec{body: body(t, without("ccId"))}},
		{name: "ccId 0 is refused", spec: reqSpec{body: body(t, with("ccId", 0))}},
		{name: "ccId 65536 is refused", spec: reqSpec{body: body(t, with("ccId", 65536))}},
		{name: "another call center's ccId is refused", spec: reqSpec{body: body(t, with("ccId", 2))}},
		{name: "ccId as a string is refused", spec: reqSpec{body: body(t, with("ccId", "1"))}},
		{name: "a missing vdn is refused", spec: reqSpec{body: body(t, without("vdn"))}},
		{name: "vdn 0 is refused", spec: reqSpec{body: body(t, with("vdn", 0))}},
		{name: "vdn 5001 is refused", spec: reqSpec{body: body(t, with("vdn", 5001))}},
		{name: "a vdn beyond the configured VDNs is refused", spec: reqSpec{body: body(t, with("vdn", 51))}},
		{name: "a fractional vdn is refused", spec: reqSpec{body: body(t, with("vdn", 1.5))}},
		{name: "isCallIn as a JSON boolean is refused", spec: reqSpec{body: body(t, with("isCallIn", true))}},
		{name: "isCallIn other than true or false is refused", spec: reqSpec{body: body(t, with("isCallIn", "yes"))}},
		{name: "a missing isCallIn is refused", spec: reqSpec{body: body(t, without("isCallIn"))}},
		{name: "limit 0 is refused", spec: reqSpec{body: body(t, with("limit", 0))}},
		{name: "limit 101 is refused", spec: reqSpec{body: body(t, with("limit", 101))}},
		{name: "a negative offset is refused", spec: reqSpec{body: body(t, with("offset", -1))}},
		{name: "a missing beginDate is refused", spec: reqSpec{body: body(t, without("beginDate"))}},
		{name: "a missing endDate is refused", spec: reqSpec{body: body(t, without("endDate"))}},
		{name: "a date that is not a number is refused", spec: reqSpec{body: body(t, with("endDate", "soon"))}},
		{name: "beginDate after endDate is refused", spec: reqSpec{body: body(t, with("beginDate", testNow.UnixMilli()+1))}},
		{name: "beginDate 1 ms before 00:00 of yesterday is refused", spec: reqSpec{body: body(t, with("beginDate", earliest.UnixMilli()-1))}},
		{name: "endDate 1 ms after 23:59:59.999 of today is refused", spec: reqSpec{body: body(t, with("endDate", latest.UnixMilli()+1))}},
		{name: "a callerNo with letters is refused", spec: reqSpec{body: body(t, with("callerNo", "12a4"))}},
		{name: "a calleeNo that is a number is refused", spec: reqSpec{body: body(t, with("calleeNo", 1234))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.spec.body == nil {
				tt.spec.body = body(t, valid())
			}
			w := serve(t, s, tt.spec)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, want 200: %s", w.Code, w.Body)
			}
			var resp wireResponse
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatalf("decode %s: %v", w.Body, err)
			}
			if resp.ResultCode != "0100002" {
				t.Errorf("resultCode = %q, want 0100002", resp.ResultCode)
			}
			var desc string
			if err := json.Unmarshal(resp.ResultDesc, &desc); err != nil || !strings.HasPrefix(desc, "Invalid parameter") {
				t.Errorf("resultDesc = %s, want a string starting with Invalid parameter", resp.ResultDesc)
			}
		})
	}
}

func TestLenientAndBoundaryRequestsAreAccepted(t *testing.T) {
	s, _ := newSim(t, Options{})
	earliest, latest := s.AllowedRange(testNow)
	tests := []struct {
		name   string
		fields map[string]any
		ct     string
	}{
		{name: "the whole allowed range is accepted", fields: queryBody(1, true, earliest, latest, 100, 0)},
		{name: "dates as numeric strings are accepted", fields: map[string]any{"ccId": 1, "vdn": 2, "isCallIn": "false",
			"beginDate": "1741561200000", "endDate": "1741564800000"}},
		{name: "no limit and no offset are accepted", fields: queryBody(3, true, earliest, testNow, 0, 0)},
		{name: "a Content-Type without the space is accepted", fields: queryBody(1, false, earliest, testNow, 1, 0),
			ct: "application/json;charset=UTF-8"},
		{name: "a lower-case charset is accepted", fields: queryBody(1, false, earliest, testNow, 1, 0),
			ct: "application/json; charset=utf-8"},
		{name: "empty callerNo and calleeNo mean all numbers", fields: func() map[string]any {
			m := queryBody(1, true, earliest, testNow, 10, 0)
			m["callerNo"], m["calleeNo"] = "", ""
			return m
		}()},
		{name: "null optional fields are ignored", fields: func() map[string]any {
			m := queryBody(1, true, earliest, testNow, 0, 0)
			m["limit"], m["offset"], m["callerNo"] = json.RawMessage("null"), json.RawMessage("null"), json.RawMessage("null")
			return m
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, s, reqSpec{body: body(t, tt.fields), contentType: tt.ct})
			if !strings.Contains(w.Body.String(), `"resultCode":"0100000"`) {
				t.Errorf("status %d body %s, want success", w.Code, w.Body)
			}
		})
	}
}

func TestAllowedRangeFollowsTheZoneAcrossDST(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	tests := []struct {
		name                   string
		now                    time.Time
		wantEarliest, wantLast time.Time
	}{
		{
			name:         "the day after spring forward: yesterday had 23 hours",
			now:          time.Date(2025, 3, 10, 12, 0, 0, 0, ny),
			wantEarliest: time.Date(2025, 3, 9, 5, 0, 0, 0, time.UTC), // EST, -5
			wantLast:     time.Date(2025, 3, 11, 3, 59, 59, 999e6, time.UTC),
		},
		{
			name:         "the day after fall back: yesterday had 25 hours",
			now:          time.Date(2025, 11, 3, 0, 30, 0, 0, ny),
			wantEarliest: time.Date(2025, 11, 2, 4, 0, 0, 0, time.UTC), // EDT, -4
			wantLast:     time.Date(2025, 11, 4, 4, 59, 59, 999e6, time.UTC),
		},
		{
			name:         "UTC now just before local midnight still counts as today in New York",
			now:          time.Date(2025, 6, 2, 3, 0, 0, 0, time.UTC), // 23:00 on June 1 in New York
			wantEarliest: time.Date(2025, 5, 31, 4, 0, 0, 0, time.UTC),
			wantLast:     time.Date(2025, 6, 2, 3, 59, 59, 999e6, time.UTC),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, l := allowedRange(tt.now, ny)
			if !e.Equal(tt.wantEarliest) || !l.Equal(tt.wantLast) {
				t.Errorf("allowedRange = %v .. %v, want %v .. %v", e.UTC(), l.UTC(), tt.wantEarliest, tt.wantLast)
			}
		})
	}

	// And the server enforces exactly that range.
	clock := NewManualClock(tests[0].now)
	s, _ := newSim(t, Options{Location: ny, Clock: clock})
	for _, c := range []struct {
		name       string
		begin, end time.Time
		ok         bool
	}{
		{"the first ms of yesterday is accepted", tests[0].wantEarliest, tests[0].now, true},
		{"the last ms of the day before yesterday is refused", tests[0].wantEarliest.Add(-time.Millisecond), tests[0].now, false},
		{"the last ms of today is accepted", tests[0].now, tests[0].wantLast, true},
		{"the first ms of tomorrow is refused", tests[0].now, tests[0].wantLast.Add(time.Millisecond), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := serve(t, s, reqSpec{body: body(t, queryBody(1, true, c.begin, c.end, 10, 0))})
			if got := strings.Contains(w.Body.String(), `"resultCode":"0100000"`); got != c.ok {
				t.Errorf("success = %v, want %v: %s", got, c.ok, w.Body)
			}
		})
	}
}

func TestUnauthenticatedRequestsGet401WithoutEchoingSecrets(t *testing.T) {
	s, _ := newSim(t, Options{})
	b := body(t, queryBody(1, true, testNow.Add(-time.Hour), testNow, 10, 0))
	tests := []struct {
		name string
		spec reqSpec
	}{
		{"a wrong SK gets 401", reqSpec{sk: "not-the-sk"}},
		{"a timestamp 20 minutes behind the server clock gets 401", reqSpec{at: testNow.Add(-20 * time.Minute)}},
		{"a timestamp 20 minutes ahead of the server clock gets 401", reqSpec{at: testNow.Add(20 * time.Minute)}},
		{"a signed host that differs from the Host header gets 401", reqSpec{signedHost: "127.0.0.1:28443"}},
		{"an invalid request with a wrong SK gets 401, not 0100002", reqSpec{sk: "not-the-sk", method: http.MethodGet}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.body = b
			r := newRequest(t, s.Now(), tt.spec)
			auth := r.Header.Get("Authorization")
			w := serve(t, s, tt.spec)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", w.Code, w.Body)
			}
			sig := auth[strings.LastIndex(auth, "/")+1:]
			if strings.Contains(w.Body.String(), sig) || strings.Contains(w.Body.String(), testSK) {
				t.Errorf("401 body %q echoes the signature or the SK", w.Body)
			}
		})
	}
}

func FuzzDecodeQuery(f *testing.F) {
	f.Add([]byte(vectorBody))
	f.Add([]byte(`{"ccId":1,"vdn":170,"callerNo":"12345","calleeNo":"23131","beginDate":"14511111111","endDate":"14522222222","isCallIn":"true","limit":10,"offset":0}`))
	f.Add([]byte(`{"ccId":1,"vdn":25,"beginDate":1,"endDate":0,"isCallIn":true}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := decodeQuery(b)
		if err != nil {
			if !strings.HasPrefix(err.desc, "Invalid parameter: ") {
				t.Errorf("desc %q lacks the prefix", err.desc)
			}
			return
		}
		if q.ccID < 1 || q.ccID > 65535 || q.vdn < 1 || q.vdn > 5000 || q.limit < 0 || q.limit > 100 ||
			q.offset < 0 || q.begin > q.end {
			t.Errorf("decoded an invalid query %+v from %q", q, b)
		}
	})
}
