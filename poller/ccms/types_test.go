package ccms

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "responses", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

func TestDecodeResponse(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		want     Page
		wantErr  any    // nil, **ResultError or **DecodeError
		wantText string // substring of the error
	}{
		{
			name: "the original page's example decodes with strings and numbers mixed",
			file: "original-page-example.json",
			want: Page{Count: 5, HasCount: true, Calls: []Call{{
				CallID: "167789709-33", CallerNo: "1212", CalleeNo: "12121212",
				VDN: 170, CallType: 1, LeaveReason: 1, MediaType: 53, SubMediaType: 1,
				LogDate: ms(1615717765000), WaitBegin: ms(1615717765000), AckBegin: ms(1615717765000),
				CallBegin: ms(1615717765000), CallEnd: ms(1615717765000),
			}}},
		},
		{
			name:     "the original page's example verbatim, with comments, is not JSON",
			file:     "original-page-verbatim.txt",
			wantErr:  new(*DecodeError),
			wantText: "invalid character '/'",
		},
		{
			name: "numbers as JSON numbers decode, and 0 times are zero",
			file: "numbers.json",
			want: Page{Count: 2, HasCount: true, Calls: []Call{
				{CallID: "1735689600-1", CallerNo: "8613800000001", CalleeNo: "4001", VDN: 25, LeaveReason: 15, MediaType: 5,
					LogDate: ms(1735689660000), WaitBegin: ms(1735689601000), AckBegin: ms(1735689605000),
					CallBegin: ms(1735689605000), CallEnd: ms(1735689660000)},
				{CallID: "1735689610-2", CallerNo: "8613800000002", CalleeNo: "4001", VDN: 25, LeaveReason: 89, MediaType: 5,
					LogDate: ms(1735689700000), WaitBegin: ms(1735689611000), CallEnd: ms(1735689650000)},
			}},
		},
		{
			name: "every number as a string decodes, count included",
			file: "numbers-as-strings.json",
			want: Page{Count: 1, HasCount: true, Calls: []Call{
				{CallID: "1735689600-1", CallerNo: "8613800000001", CalleeNo: "4001", VDN: 25, LeaveReason: 15, MediaType: 5,
					LogDate: ms(1735689660000), WaitBegin: ms(1735689601000), AckBegin: ms(1735689605000),
					CallBegin: ms(1735689605000), CallEnd: ms(1735689660000)},
			}},
		},
		{
			name: "null and empty strings are absent, unknown fields are ignored, and a null row is bad",
			file: "nulls-and-missing.json",
			want: Page{Count: 1, HasCount: true, Calls: []Call{
				{CallID: "1735689600-7", VDN: 25, MediaType: 5, CallBegin: ms(1735689605000)},
			}, Bad: []BadRow{{Raw: json.RawMessage("null"), Reason: "row is null, not an object"}}},
		},
		{
			name: "a missing count is reported as absent",
			file: "no-count.json",
			want: Page{Calls: []Call{{CallID: "1735689600-9", CallEnd: ms(1735689660000)}}},
		},
		{
			name: "an empty success is an empty page",
			file: "empty-success.json",
			want: Page{Calls: []Call{}, HasCount: true},
		},
		{
			name: "integral floats and exponents are accepted",
			file: "float-and-exponent.json",
			want: Page{Count: 1, HasCount: true, Calls: []Call{{CallID: "1-1", VDN: 25, CallEnd: ms(1735689660000)}}},
		},
		{
			name:     "a failure with a string resultDesc is a ResultError",
			file:     "error-string-desc.json",
			wantErr:  new(*ResultError),
			wantText: `result code 0100002 (invalid parameter: check the window against the API's range and the number encoding): "Invalid parameter"`,
		},
		{
			name:     "a failure with an object resultDesc is a ResultError",
			file:     "error-object-desc.json",
			wantErr:  new(*ResultError),
			wantText: "result code 0101003 (insufficient permission",
		},
		{
			name:     "a numeric resultCode gets its leading zero back",
			file:     "result-code-number.json",
			wantErr:  new(*ResultError),
			wantText: "result code 0100002",
		},
		{
			name:     "truncated JSON is a DecodeError saying where, not what",
			file:     "truncated.json",
			wantErr:  new(*DecodeError),
			wantText: `decode response (http 200, 113 bytes, at byte 113): invalid character '\n' in string literal`,
		},
		{
			name: "a row without callId is a bad row of its page",
			file: "no-call-id.json",
			want: Page{Count: 1, HasCount: true, Calls: []Call{}, Bad: []BadRow{
				{Raw: json.RawMessage(`{"callerNo":"1","callEnd":1735689660000}`), Reason: "no callId"},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeResponse(200, readFixture(t, tc.file), time.UTC)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("page (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil || !errors.As(err, tc.wantErr) {
				t.Fatalf("want %T, got %v", tc.wantErr, err)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not contain %q", err, tc.wantText)
			}
		})
	}
}

func TestDecodeRejectsAResponseThatIsNotAPage(t *testing.T) {
	tests := []struct{ name, body, wantText string }{
		{"a negative count", `{"resultCode":"0100000","resultDesc":{"data":[],"count":-1}}`, "count is negative or beyond 32 bits"},
		{"a count beyond 32 bits", `{"resultCode":"0100000","resultDesc":{"data":[],"count":8613912345678}}`, "count is negative or beyond 32 bits"},
		{"a count that is not a number", `{"resultCode":"0100000","resultDesc":{"data":[],"count":"many"}}`,
			"resultDesc: json: cannot unmarshal a non-numeric string into Go struct field wireDesc.count of type int64"},
		{"a string resultDesc on success", `{"resultCode":"0100000","resultDesc":"ok"}`, "at byte 37): resultDesc of a success is a string, not an object"},
		{"no resultCode", `{"resultDesc":{"data":[]}}`, "no resultCode"},
		{"data that is not an array", `{"resultCode":"0100000","resultDesc":{"data":{}}}`, "resultDesc: json: cannot unmarshal object into Go struct field wireDesc.data"},
		{"an empty body", ``, "decode response (http 200, 0 bytes): unexpected end of JSON input"},
	}
	for _, tc := range tests {
		t.Run(tc.name+" is a DecodeError", func(t *testing.T) {
			_, err := decodeResponse(200, []byte(tc.body), time.UTC)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("want *DecodeError, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not contain %q", err, tc.wantText)
			}
		})
	}
}

// Each bad row sits between two good rows on one page: the page decodes,
// the good rows are kept in order, and the bad row says why without its
// phone numbers.
func TestDecodeQuarantinesABadRowAndKeepsTheRowsAroundIt(t *testing.T) {
	const phone = "8613912345678"
	longID := strings.Repeat("7", MaxCallIDBytes+1)
	tests := []struct{ name, row, wantReason string }{
		{"a null row", `null`, "row is null, not an object"},
		{"a string row", `"` + phone + `"`, "row is a string, not an object"},
		{"a number row", phone, "row is a number, not an object"},
		{"an array row", `["` + phone + `"]`, "row is an array, not an object"},
		{"a row without callId", `{"callerNo":"` + phone + `","callEnd":1735689660000}`, "no callId"},
		{"a row with an empty callId", `{"callId":"","callerNo":"` + phone + `"}`, "no callId"},
		{"a row with a null callId", `{"callId":null,"callerNo":"` + phone + `"}`, "no callId"},
		{"a callId that is an object", `{"callId":{"id":"` + phone + `"},"callerNo":"` + phone + `"}`, "callId is an object, want a string"},
		{"a callId longer than 1024 bytes", `{"callId":"` + longID + `","callerNo":"` + phone + `"}`,
			"callId is longer than 1024 bytes (the store keys calls by callId, and bbolt keys are bounded)"},
		{"a time that is not a number", `{"callId":"9-1","callerNo":"` + phone + `","callEnd":"soon"}`, "callEnd is a non-numeric string, want an integer"},
		{"a time that is an object", `{"callId":"9-1","callerNo":"` + phone + `","callEnd":{"at":` + phone + `}}`, "callEnd is an object, want an integer"},
		{"a negative time", `{"callId":"9-1","callerNo":"` + phone + `","callEnd":-5}`, `callId "9-1": callEnd is negative`},
		{"a time after the year 9999", `{"callId":"9-1","callerNo":"` + phone + `","logDate":"253402300800000"}`, `callId "9-1": logDate is after the year 9999`},
		{"a fractional code", `{"callId":"9-1","callerNo":"` + phone + `","vdn":2.5}`, "vdn is a fractional number, want an integer"},
		{"a code beyond 32 bits", `{"callId":"9-1","callerNo":"` + phone + `","mediaType":4294967296}`, `callId "9-1": mediaType does not fit 32 bits`},
		{"a boolean code", `{"callId":"9-1","callerNo":"` + phone + `","vdn":true}`, "vdn is a boolean, want an integer"},
		{"a callId holding the phone number is not named", `{"callId":"` + phone + `-1","callerNo":"` + phone + `","callEnd":-1}`, "callEnd is negative"},
	}
	good := func(id string) string {
		return `{"callId":"` + id + `","callerNo":"` + phone + `","callEnd":1735689660000,"vdn":25}`
	}
	for _, tc := range tests {
		t.Run(tc.name+" is quarantined", func(t *testing.T) {
			body := `{"resultCode":"0100000","resultDesc":{"data":[` + good("a") + "," + tc.row + "," + good("b") + `],"count":3}}`
			p, err := decodeResponse(200, []byte(body), time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			want := Page{Count: 3, HasCount: true,
				Calls: []Call{{CallID: "a", CallerNo: phone, VDN: 25, CallEnd: ms(1735689660000)}, {CallID: "b", CallerNo: phone, VDN: 25, CallEnd: ms(1735689660000)}},
				Bad:   []BadRow{{Raw: json.RawMessage(tc.row), Reason: tc.wantReason}}}
			if diff := cmp.Diff(want, p); diff != "" {
				t.Errorf("page (-want +got):\n%s", diff)
			}
			if p.rows() != 3 {
				t.Errorf("rows = %d, want 3: a bad row occupies its slot", p.rows())
			}
		})
	}
}

func TestDecodedTimesAreInTheClientsLocation(t *testing.T) {
	sh := mustLoad(t, "Asia/Shanghai")
	p, err := decodeResponse(200, readFixture(t, "numbers.json"), sh)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Calls[0].CallEnd.Location(); got != sh {
		t.Errorf("location = %v, want %v", got, sh)
	}
	if !p.Calls[0].Completed() {
		t.Error("a call with callEnd is not Completed")
	}
	if (Call{CallID: "x"}).Completed() {
		t.Error("a call without callEnd is Completed")
	}
}

func TestExcerptRedactsAuthorizationValues(t *testing.T) {
	body := []byte("bad request, got header auth-v2/ak/2025-01-02T03:04:05Z/host/ab4eb7fa7143e5e2af56db23 end\n\x00")
	got := excerpt(body)
	if strings.Contains(got, "ab4eb7fa") || !strings.Contains(got, "auth-v2/[redacted] end") {
		t.Errorf("excerpt = %q", got)
	}
	long := excerpt([]byte(strings.Repeat("x", 1000)))
	if n := len([]rune(long)); n != excerptLen+1 {
		t.Errorf("long excerpt has %d runes, want %d", n, excerptLen+1)
	}
}
