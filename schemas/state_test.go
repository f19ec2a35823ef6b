package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// stateGolden is the state changelog's golden file. It lives in its own
// folder: testdata/*.golden.json are CloudEvents and must validate as such.
var stateGolden = filepath.Join("testdata", "state", "stream-state-v1.golden.json")

// fullState is a stream with every member set, its times given in Berlin
// with nanoseconds, pending calls in the store's order.
func fullState() StateRecord {
	t0 := time.Date(2026, 3, 29, 10, 15, 0, 123_456_789, berlin)
	return StateRecord{
		Stream: "1/25/in", Seq: 18446744073709551615, // uint64's largest: JSON must carry it exactly
		Cursor: t0, LastSweep: t0.Add(-15 * time.Minute),
		SealedDay: "20260328", LastChanceDay: "20260327",
		Pending: []StatePending{
			{CallID: "1774772100-538062", FilterTime: t0.Add(-time.Hour), FirstSeen: t0.Add(-59 * time.Minute)},
			{CallID: "1774772100-538070", FilterTime: t0.Add(-30*time.Minute + 1)}, // never upserted with a first-seen
		},
		Gaps: []StateGap{{Start: t0.Add(-50 * time.Hour), End: t0.Add(-48 * time.Hour), DetectedAt: t0.Add(-47 * time.Hour)}},
		Quarantined: []StateQuarantined{
			{Sum: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", DetectedAt: t0.Add(-2 * time.Hour)},
		},
		Owner:     "callpub-0 (pod callpub-0, pid 1)",
		WrittenAt: t0.Add(time.Second),
	}
}

// inUTC is r with every time in UTC, as DecodeState gives them.
func inUTC(r StateRecord) StateRecord {
	utc := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Time{}
		}
		return t.UTC()
	}
	r.Cursor, r.LastSweep, r.WrittenAt = utc(r.Cursor), utc(r.LastSweep), utc(r.WrittenAt)
	r.Pending, r.Gaps, r.Quarantined = append([]StatePending(nil), r.Pending...),
		append([]StateGap(nil), r.Gaps...), append([]StateQuarantined(nil), r.Quarantined...)
	for i := range r.Pending {
		r.Pending[i].FilterTime, r.Pending[i].FirstSeen = utc(r.Pending[i].FilterTime), utc(r.Pending[i].FirstSeen)
	}
	for i := range r.Gaps {
		r.Gaps[i].Start, r.Gaps[i].End, r.Gaps[i].DetectedAt = utc(r.Gaps[i].Start), utc(r.Gaps[i].End), utc(r.Gaps[i].DetectedAt)
	}
	for i := range r.Quarantined {
		r.Quarantined[i].DetectedAt = utc(r.Quarantined[i].DetectedAt)
	}
	return r
}

// sameState compares records by value: times by instant and location.
func sameState(a, b StateRecord) string {
	return cmp.Diff(a, b, cmp.Comparer(func(x, y time.Time) bool {
		return x.Equal(y) && x.Location() == y.Location()
	}))
}

// The golden file pins EncodeState's bytes (indented here for review; the
// encoding is the same JSON compacted) and decodes to the record.
func TestStateRecordMatchesItsGoldenFile(t *testing.T) {
	got, err := EncodeState(fullState())
	if err != nil {
		t.Fatal(err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, got, "", "  "); err != nil {
		t.Fatal(err)
	}
	indented.WriteByte('\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(stateGolden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(stateGolden, indented.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(stateGolden)
	if err != nil {
		t.Fatalf("%v (run go test ./schemas -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), indented.String()); diff != "" {
		t.Errorf("wire format of the state record changed (-golden +now); if intended, run go test ./schemas -update and review:\n%s", diff)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(compact.Bytes(), got) {
		t.Errorf("EncodeState is not the golden file compacted:\n%s\n%s", got, compact.Bytes())
	}
	back, err := DecodeState(want)
	if err != nil {
		t.Fatal(err)
	}
	if diff := sameState(inUTC(fullState()), back); diff != "" {
		t.Errorf("the golden file decodes to another record (-want +got):\n%s", diff)
	}
}

func TestStateRecordOfANewStreamHasOnlyItsKeyVersionAndSeq(t *testing.T) {
	b, err := EncodeState(StateRecord{Stream: "7/4999/out", Seq: 1, Pending: []StatePending{}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"v":1,"stream":"7/4999/out","seq":1}`; string(b) != want {
		t.Errorf("EncodeState = %s, want %s", b, want)
	}
	r, err := DecodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := sameState(StateRecord{Stream: "7/4999/out", Seq: 1}, r); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDecodeStateIgnoresMembersItDoesNotKnow(t *testing.T) {
	r, err := DecodeState([]byte(`{"v":1,"stream":"1/25/in","seq":3,"hint":{"x":[1,2]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Stream != "1/25/in" || r.Seq != 3 {
		t.Errorf("decoded %+v", r)
	}
}

func TestDecodeStateReadsAnyRFC3339TimeIntoUTC(t *testing.T) {
	r, err := DecodeState([]byte(`{"v":1,"stream":"1/25/in","seq":3,"cursor":"2026-03-29T10:15:00.5+02:00"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 3, 29, 8, 15, 0, 500_000_000, time.UTC); r.Cursor != want {
		t.Errorf("cursor = %v, want %v", r.Cursor, want)
	}
}

// Each value is refused with an error that says what is wrong and where.
func TestDecodeStateRefusesWhatItCannotRebuildFrom(t *testing.T) {
	tests := []struct {
		name, value, err string
	}{
		{"a tombstone", "", "decode state record: empty value (a tombstone is not a record)"},
		{"not JSON", `{"v":1,`, "decode state record: unexpected end of JSON input"},
		{"not an object", `[1]`, "decode state record: json: cannot unmarshal array into Go value of type schemas.stateWire"},
		{"no version", `{"stream":"1/25/in","seq":1}`,
			`decode state record of "1/25/in": version 0, want 1: unknown state record version`},
		{"a newer version", `{"v":2,"stream":"1/25/in","seq":1}`,
			`decode state record of "1/25/in": version 2, want 1: unknown state record version`},
		{"a version as a string", `{"v":"1","stream":"1/25/in"}`,
			"decode state record: json: cannot unmarshal string into Go struct field stateWire.v of type int"},
		{"no stream", `{"v":1,"seq":1}`, "decode state record: stream missing"},
		{"a stream that is a VDN", `{"v":1,"stream":"25","seq":1}`, `decode state record: stream "25": want ccId/vdn/in|out`},
		{"a stream with a leading zero", `{"v":1,"stream":"1/025/in","seq":1}`,
			`decode state record: stream "1/025/in": not in canonical form`},
		{"a negative seq", `{"v":1,"stream":"1/25/in","seq":-1}`,
			"decode state record: json: cannot unmarshal number -1 into Go struct field stateWire.seq of type uint64"},
		{"a cursor that is not a time", `{"v":1,"stream":"1/25/in","cursor":"yesterday"}`,
			`decode state record of 1/25/in: cursor: "yesterday" is not an RFC 3339 time: parsing time "yesterday" as "2006-01-02T15:04:05.999999999Z07:00": cannot parse "yesterday" as "2006"`},
		{"a time without a zone", `{"v":1,"stream":"1/25/in","written_at":"2026-03-29T08:00:00"}`,
			`decode state record of 1/25/in: written_at: "2026-03-29T08:00:00" is not an RFC 3339 time: parsing time "2026-03-29T08:00:00" as "2006-01-02T15:04:05.999999999Z07:00": cannot parse "" as "Z07:00"`},
		{"a time in year 10000 in UTC", `{"v":1,"stream":"1/25/in","last_sweep":"9999-12-31T23:30:00-01:00"}`,
			`decode state record of 1/25/in: last_sweep: "9999-12-31T23:30:00-01:00" is not an RFC 3339 time: time "9999-12-31T23:30:00-01:00" is outside years 0000-9999 in UTC`},
		{"a sealed day with dashes", `{"v":1,"stream":"1/25/in","sealed_day":"2026-03-28"}`,
			`decode state record of 1/25/in: sealed_day: "2026-03-28" is not a day written YYYYMMDD`},
		{"a last-chance day that does not exist", `{"v":1,"stream":"1/25/in","last_chance_day":"20260230"}`,
			`decode state record of 1/25/in: last_chance_day: "20260230" is not a day written YYYYMMDD`},
		{"a pending call without id", `{"v":1,"stream":"1/25/in","pending":[{"filter_time":"2026-03-29T08:00:00Z"}]}`,
			"decode state record of 1/25/in: pending[0]: call_id missing"},
		{"a pending call without filter time", `{"v":1,"stream":"1/25/in","pending":[{"call_id":"a","filter_time":"2026-03-29T08:00:00Z"},{"call_id":"b"}]}`,
			`decode state record of 1/25/in: pending[1] (call "b"): filter_time missing`},
		{"a pending call twice", `{"v":1,"stream":"1/25/in","pending":[{"call_id":"a","filter_time":"2026-03-29T08:00:00Z"},{"call_id":"a","filter_time":"2026-03-29T09:00:00Z"}]}`,
			`decode state record of 1/25/in: pending[1]: call "a" listed twice`},
		{"a malformed first-seen", `{"v":1,"stream":"1/25/in","pending":[{"call_id":"a","filter_time":"2026-03-29T08:00:00Z","first_seen":"0"}]}`,
			`decode state record of 1/25/in: pending[0].first_seen: "0" is not an RFC 3339 time: parsing time "0" as "2006-01-02T15:04:05.999999999Z07:00": cannot parse "0" as "2006"`},
		{"an empty gap", `{"v":1,"stream":"1/25/in","gaps":[{"start":"2026-03-29T08:00:00Z","end":"2026-03-29T08:00:00Z"}]}`,
			"decode state record of 1/25/in: gaps[0]: [2026-03-29T08:00:00.000000000Z, 2026-03-29T08:00:00.000000000Z) is empty or unbounded"},
		{"a gap without end", `{"v":1,"stream":"1/25/in","gaps":[{"start":"2026-03-29T08:00:00Z"}]}`,
			"decode state record of 1/25/in: gaps[0]: [2026-03-29T08:00:00.000000000Z, ) is empty or unbounded"},
		{"a quarantined row without sum", `{"v":1,"stream":"1/25/in","quarantined":[{"detected_at":"2026-03-29T08:00:00Z"}]}`,
			"decode state record of 1/25/in: quarantined[0]: sum missing"},
		{"a quarantined row twice", `{"v":1,"stream":"1/25/in","quarantined":[{"sum":"ab"},{"sum":"ab"}]}`,
			`decode state record of 1/25/in: quarantined[1]: row "ab" listed twice`},
		{"trailing data", `{"v":1,"stream":"1/25/in"} {}`, "decode state record: invalid character '{' after top-level value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeState([]byte(tt.value))
			if err == nil {
				t.Fatal("DecodeState accepted it")
			}
			if err.Error() != tt.err {
				t.Errorf("err = %s\nwant  %s", err, tt.err)
			}
		})
	}
	if _, err := DecodeState(nil); err == nil {
		t.Error("DecodeState(nil) accepted a tombstone")
	}
}

func TestDecodeStateOfANewerVersionIsErrStateVersion(t *testing.T) {
	_, err := DecodeState([]byte(`{"v":2,"stream":"1/25/in","seq":9,"everything":"different"}`))
	if !errors.Is(err, ErrStateVersion) {
		t.Errorf("err = %v, want ErrStateVersion", err)
	}
}

// EncodeState never writes what DecodeState would refuse.
func TestEncodeStateRefusesWhatDecodeStateWouldRefuse(t *testing.T) {
	tests := []struct {
		name string
		edit func(*StateRecord)
		err  string
	}{
		{"no stream", func(r *StateRecord) { r.Stream = "" }, "encode state record: stream missing"},
		{"a VDN for a stream", func(r *StateRecord) { r.Stream = "25" }, `encode state record: stream "25": want ccId/vdn/in|out`},
		{"a day with dashes", func(r *StateRecord) { r.SealedDay = "2026-03-28" },
			`encode state record of 1/25/in: sealed_day: "2026-03-28" is not a day written YYYYMMDD`},
		{"an owner that is not UTF-8", func(r *StateRecord) { r.Owner = "pod-\xff" },
			"encode state record of 1/25/in: owner: not valid UTF-8"},
		{"a call id that is not UTF-8", func(r *StateRecord) { r.Pending[1].CallID = "\xc3" },
			"encode state record of 1/25/in: pending[1].call_id: not valid UTF-8"},
		{"a time after year 9999", func(r *StateRecord) { r.WrittenAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
			"encode state record of 1/25/in: written_at: year 10000 in UTC is outside 0000-9999"},
		{"a detection time before year 0", func(r *StateRecord) { r.Quarantined[0].DetectedAt = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) },
			"encode state record of 1/25/in: quarantined[0].detected_at: year -1 in UTC is outside 0000-9999"},
		{"a pending call without filter time", func(r *StateRecord) { r.Pending[0].FilterTime = time.Time{} },
			`encode state record of 1/25/in: pending[0] (call "1774772100-538062"): filter_time missing`},
		{"a gap that ends before it starts", func(r *StateRecord) { r.Gaps[0].Start, r.Gaps[0].End = r.Gaps[0].End, r.Gaps[0].Start },
			"encode state record of 1/25/in: gaps[0]: [2026-03-27T08:15:00.123456789Z, 2026-03-27T06:15:00.123456789Z) is empty or unbounded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fullState()
			tt.edit(&r)
			b, err := EncodeState(r)
			if err == nil {
				t.Fatalf("EncodeState wrote %s", b)
			}
			if err.Error() != tt.err {
				t.Errorf("err = %s\nwant  %s", err, tt.err)
			}
		})
	}
}

func TestStateTimesKeepTheirNanoseconds(t *testing.T) {
	r := StateRecord{Stream: "1/25/in", Seq: 2, Cursor: time.Date(2026, 3, 29, 8, 0, 0, 1, time.UTC)}
	b, err := EncodeState(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"cursor":"2026-03-29T08:00:00.000000001Z"`) {
		t.Errorf("EncodeState = %s", b)
	}
	back, err := DecodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Cursor != r.Cursor {
		t.Errorf("cursor = %v, want %v", back.Cursor, r.Cursor)
	}
}

// FuzzDecodeState: DecodeState never panics, and whatever it accepts
// encodes, decodes to the same record, and encodes to the same bytes again.
func FuzzDecodeState(f *testing.F) {
	golden, err := os.ReadFile(stateGolden)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte(`{"v":1,"stream":"1/25/in","seq":0}`))
	f.Add([]byte(`{"v":1,"stream":"1/25/in","cursor":"0001-01-01T00:00:00Z","pending":[],"gaps":null}`))
	f.Add([]byte(`{"v":1,"stream":"1/25/in","cursor":"2026-03-29T10:15:00.5+02:00","sealed_day":"00000101"}`))
	f.Add([]byte(`{"v":1,"stream":"1/25/in","owner":"\ud800","pending":[{"call_id":"\u0000","filter_time":"0000-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"v":2,"stream":"1/25/in"}`))
	f.Add([]byte(`{"v":1,"stream":"1/25/in","gaps":[{"start":"2026-03-29T08:00:00Z","end":"2026-03-29T08:00:00.000000001Z"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeState(b)
		if err != nil {
			return
		}
		if _, err := ParseStream(r.Stream); err != nil {
			t.Fatalf("accepted a bad stream: %v", err)
		}
		enc, err := EncodeState(r)
		if err != nil {
			t.Fatalf("a decoded record does not encode: %v\n%+v", err, r)
		}
		again, err := DecodeState(enc)
		if err != nil {
			t.Fatalf("a re-encoded record does not decode: %v\n%s", err, enc)
		}
		if diff := sameState(r, again); diff != "" {
			t.Fatalf("round trip changed the record (-first +again):\n%s", diff)
		}
		enc2, err := EncodeState(again)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable (%v):\n%s\n%s", err, enc, enc2)
		}
	})
}
