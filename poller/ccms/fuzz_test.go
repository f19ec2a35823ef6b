package ccms

import (
	"errors"
	"os"
	"path/filepath"
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

	minT, maxT := time.UnixMilli(1).UTC(), time.UnixMilli(maxMillis).UTC()
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodeResponse(200, body, time.UTC)
		if err != nil {
			var (
				de *DecodeError
				re *ResultError
			)
			switch {
			case errors.As(err, &de):
				if de.Status != 200 || len([]rune(de.Excerpt)) > excerptLen+1 {
					t.Errorf("bad DecodeError: %+v", de)
				}
			case errors.As(err, &re):
				if re.Code == "" || re.Code == resultOK {
					t.Errorf("ResultError with code %q", re.Code)
				}
			default:
				t.Errorf("untyped error %T: %v", err, err)
			}
			return
		}
		if p.Count < 0 || !p.HasCount && p.Count != 0 {
			t.Errorf("count %d (has %v)", p.Count, p.HasCount)
		}
		for _, c := range p.Calls {
			if c.CallID == "" {
				t.Errorf("call without id: %+v", c)
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
	})
}
