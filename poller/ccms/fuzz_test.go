package ccms

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeQueryCallsResponse feeds arbitrary bodies to the response
// decoder. It must never panic, and whatever decodes must hold Page's
// invariants; otherwise the decoder must return a typed error.
func FuzzDecodeQueryCallsResponse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "responses", "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed corpus: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"resultCode":"0100000","resultDesc":{"data":[{"callId":"1","vdn":"\u0032\u0035"}],"count":" 7 "}}`))
	f.Add([]byte(`{"resultCode":null,"resultDesc":null}`))
	f.Add([]byte(`{"resultCode":"0100000","resultDesc":""}`))
	f.Add([]byte(``))

	f.Add([]byte(`{"resultCode":"0100000","resultDesc":{"data":[null,"8613912345678",{"callId":"x","callerNo":"8613912345678","callEnd":-1},{"callerNo":"86139"}],"count":4}}`))

	minT, maxT := time.UnixMilli(1).UTC(), time.UnixMilli(maxMillis).UTC()
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodeResponse(200, body, time.UTC)
		if err != nil {
			checkDecodeError(t, body, err)
			return
		}
		if p.Count < 0 || !p.HasCount && p.Count != 0 {
			t.Errorf("count %d (has %v)", p.Count, p.HasCount)
		}
		if n, ok := dataRows(body); ok && n != p.rows() {
			t.Errorf("%d rows in data, the page holds %d calls and %d bad rows", n, len(p.Calls), len(p.Bad))
		}
		for _, c := range p.Calls {
			if c.CallID == "" || len(c.CallID) > MaxCallIDBytes {
				t.Errorf("call id of %d bytes: %+v", len(c.CallID), c)
			}
			for _, ts := range []time.Time{c.LogDate, c.WaitBegin, c.AckBegin, c.CallBegin, c.CallEnd} {
				if !ts.IsZero() && (ts.Before(minT) || ts.After(maxT)) {
					t.Errorf("time %v out of range in %+v", ts, c)
				}
				if _, err := ts.MarshalJSON(); err != nil {
					t.Errorf("time %v cannot be written as RFC 3339: %v", ts, err)
				}
			}
		}
		for _, b := range p.Bad {
			checkBadRow(t, b)
		}
	})
}

// checkDecodeError holds an error of decodeResponse to its type's promises:
// a DecodeError of a 200 body says where, never what.
func checkDecodeError(t *testing.T, body []byte, err error) {
	var (
		de *DecodeError
		re *ResultError
	)
	switch {
	case errors.As(err, &de):
		if de.Status != 200 || de.Excerpt != "" || de.Length != len(body) || de.Offset < 0 || de.Offset > int64(len(body)) {
			t.Errorf("bad DecodeError: %+v", de)
		}
	case errors.As(err, &re):
		if re.Code == "" || re.Code == resultOK {
			t.Errorf("ResultError with code %q", re.Code)
		}
		if sevenDigits(re.Desc) {
			t.Errorf("ResultError desc %q shows a phone-number-like run", re.Desc)
		}
	default:
		t.Errorf("untyped error %T: %v", err, err)
	}
}

// checkBadRow holds a bad row to its promises: its raw JSON, and a reason
// that shows neither phone number.
func checkBadRow(t *testing.T, b BadRow) {
	if b.Reason == "" || !json.Valid(b.Raw) {
		t.Errorf("bad row without a reason or with invalid JSON: %q %q", b.Raw, b.Reason)
	}
	var row map[string]json.RawMessage
	if json.Unmarshal(b.Raw, &row) != nil {
		return
	}
	for _, k := range []string{"callerNo", "calleeNo"} {
		no := strings.Trim(string(row[k]), `"`)
		if len(no) >= 5 && isDigits(no) && strings.Contains(b.Reason, no) {
			t.Errorf("reason %q shows %s %s", b.Reason, k, no)
		}
	}
}

// dataRows counts resultDesc.data's elements, when body has them.
func dataRows(body []byte) (int, bool) {
	var r struct {
		ResultDesc struct {
			Data []json.RawMessage `json:"data"`
		} `json:"resultDesc"`
	}
	if json.Unmarshal(body, &r) != nil {
		return 0, false
	}
	return len(r.ResultDesc.Data), true
}

func sevenDigits(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		switch {
		case '0' <= s[i] && s[i] <= '9':
			n++
			if n >= 7 {
				return true
			}
		default:
			n = 0
		}
	}
	return false
}
