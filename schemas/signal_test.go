package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The signals' golden files sit beside the state record's: they share its
// topic, and testdata/*.golden.json must be CloudEvents.
var (
	requestGolden = filepath.Join("testdata", "state", "replay-request-v1.golden.json")
	doneGolden    = filepath.Join("testdata", "state", "replay-done-v1.golden.json")
)

// replayRequest is a request with every member set, its times in Berlin
// with nanoseconds.
func replayRequest() ReplaySignal {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 123_456_789, berlin)
	return ReplaySignal{
		Kind: SignalReplay, ID: "20261203T180501Z-1f3a9c0b", Stream: "1/25/in",
		From: t0, To: t0.Add(time.Hour + 1),
		By: "ops-laptop (callpub replay)", At: time.Date(2026, 12, 3, 19, 5, 1, 987_654_321, berlin),
	}
}

// replayDone is the answer to replayRequest from a replay that failed after
// publishing some events.
func replayDone() ReplaySignal {
	s := replayRequest()
	s.Kind, s.Published, s.Error = SignalReplayDone, 1234, `query calls [08:00, 09:00): ccms: 429 "too many requests"`
	s.By, s.At = "callpub-1", s.At.Add(90*time.Second)
	return s
}

// signalInUTC is s with its times in UTC, as DecodeSignal gives them.
func signalInUTC(s ReplaySignal) ReplaySignal {
	s.From, s.To = s.From.UTC(), s.To.UTC()
	if !s.At.IsZero() {
		s.At = s.At.UTC()
	}
	return s
}

// sameSignal compares signals by value: times by instant and location.
func sameSignal(a, b ReplaySignal) string {
	return cmp.Diff(a, b, cmp.Comparer(func(x, y time.Time) bool {
		return x.Equal(y) && x.Location() == y.Location()
	}))
}

// The golden files pin EncodeSignal's bytes (indented here for review; the
// encoding is the same JSON compacted) and decode to the signals.
func TestReplaySignalsMatchTheirGoldenFiles(t *testing.T) {
	for _, tt := range []struct {
		name, file string
		signal     ReplaySignal
	}{
		{"a request", requestGolden, replayRequest()},
		{"the answer of a replay that failed part way", doneGolden, replayDone()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeSignal(tt.signal)
			if err != nil {
				t.Fatal(err)
			}
			want := goldenSignal(t, tt.file, got)
			var compact bytes.Buffer
			if err := json.Compact(&compact, want); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(compact.Bytes(), got) {
				t.Errorf("EncodeSignal is not the golden file compacted:\n%s\n%s", got, compact.Bytes())
			}
			back, err := DecodeSignal(want)
			if err != nil {
				t.Fatal(err)
			}
			if diff := sameSignal(signalInUTC(tt.signal), back); diff != "" {
				t.Errorf("the golden file decodes to another signal (-want +got):\n%s", diff)
			}
		})
	}
}

// goldenSignal compares got, indented, with file (rewriting it first with
// -update) and returns the file.
func goldenSignal(t *testing.T, file string, got []byte) []byte {
	t.Helper()
	var indented bytes.Buffer
	if err := json.Indent(&indented, got, "", "  "); err != nil {
		t.Fatal(err)
	}
	indented.WriteByte('\n')
	if *update {
		if err := os.WriteFile(file, indented.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./schemas -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), indented.String()); diff != "" {
		t.Errorf("wire format of the signal changed (-golden +now); if intended, run go test ./schemas -update and review:\n%s", diff)
	}
	return want
}

func TestReplayRequestWithoutByOrAtHasEveryOtherMemberAndPublishedZero(t *testing.T) {
	s := ReplaySignal{Kind: SignalReplay, ID: "r1", Stream: "7/4999/out",
		From: time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
	b, err := EncodeSignal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"kind":"replay","id":"r1","stream":"7/4999/out","from":"2026-12-03T08:00:00.000000000Z","to":"2026-12-03T09:00:00.000000000Z","published":0}`
	if string(b) != want {
		t.Errorf("EncodeSignal = %s\nwant           %s", b, want)
	}
	back, err := DecodeSignal(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := sameSignal(s, back); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSignalKeyIsTheKindASlashAndTheID(t *testing.T) {
	if got := SignalKey(SignalReplay, "abc"); got != "replay/abc" {
		t.Errorf("request key = %q", got)
	}
	if got := SignalKey(SignalReplayDone, "abc"); got != "replay-done/abc" {
		t.Errorf("answer key = %q", got)
	}
	if got := replayDone().Key(); got != "replay-done/20261203T180501Z-1f3a9c0b" {
		t.Errorf("ReplaySignal.Key = %q", got)
	}
}

func TestIsSignalKeyTakesOnlyAKindASlashAndAValidID(t *testing.T) {
	for _, tt := range []struct {
		key  string
		want bool
	}{
		{"replay/20261203T180501Z-1f3a9c0b", true},
		{"replay-done/20261203T180501Z-1f3a9c0b", true},
		{"replay/a.b_c:d-E9", true},
		{"replay/" + strings.Repeat("x", 100), true},
		{"replay/" + strings.Repeat("x", 101), false},
		{"replay/", false},
		{"replay", false},
		{"replay-done", false},
		{"Replay/abc", false},
		{"replayed/abc", false},
		{"replay-done/a b", false},
		{"replay/a/b", false},
		{"1/25/in", false},
		{"25", false},
		{"", false},
	} {
		if got := IsSignalKey(tt.key); got != tt.want {
			t.Errorf("IsSignalKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

// What keeps a rebuild from mistaking a signal for a stream's record.
func TestNoSignalKeyIsAStreamKey(t *testing.T) {
	for _, key := range []string{SignalKey(SignalReplay, "1"), SignalKey(SignalReplayDone, "1"), replayRequest().Key()} {
		if _, err := ParseStream(key); err == nil {
			t.Errorf("ParseStream(%q) accepted a signal key", key)
		}
	}
}

func TestNewReplayIDIsTheUTCSecondAndEightHexDigits(t *testing.T) {
	now := time.Date(2026, 12, 3, 19, 5, 1, 999_999_999, berlin)
	a, b := NewReplayID(now), NewReplayID(now)
	format := regexp.MustCompile(`^20261203T180501Z-[0-9a-f]{8}$`)
	for _, id := range []string{a, b} {
		if !format.MatchString(id) {
			t.Errorf("NewReplayID = %q, want 20261203T180501Z-<8 hex digits>", id)
		}
		if !IsSignalKey(SignalKey(SignalReplay, id)) {
			t.Errorf("%q is not a valid id", id)
		}
	}
	if a == b {
		t.Errorf("two ids in the same second are both %q", a)
	}
}

func TestDecodeSignalIgnoresMembersItDoesNotKnowAndReadsTimesIntoUTC(t *testing.T) {
	s, err := DecodeSignal([]byte(`{"v":1,"kind":"replay","id":"x","stream":"1/25/in","from":"2026-12-03T09:00:00.5+01:00",` +
		`"to":"2026-12-03T09:00:00Z","published":0,"priority":{"x":[1]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 3, 8, 0, 0, 500_000_000, time.UTC); s.From != want {
		t.Errorf("from = %v, want %v", s.From, want)
	}
}

// Each value is refused with an error that says what is wrong and where.
func TestDecodeSignalRefusesWhatNoReplicaCouldServeOrReport(t *testing.T) {
	const span = `"stream":"1/25/in","from":"2026-12-03T08:00:00Z","to":"2026-12-03T09:00:00Z"`
	tests := []struct {
		name, value, err string
	}{
		{"a tombstone", "", "decode signal: empty value (a tombstone is not a signal)"},
		{"not JSON", `{"v":1,`, "decode signal: unexpected end of JSON input"},
		{"trailing data", `{"v":1} {}`, "decode signal: invalid character '{' after top-level value"},
		{"no version", `{"kind":"replay","id":"x",` + span + `}`, "decode signal: version 0, want 1: unknown signal version"},
		{"a newer version", `{"v":2,"kind":"replay","id":"x",` + span + `}`, "decode signal: version 2, want 1: unknown signal version"},
		{"no kind", `{"v":1,"id":"x",` + span + `}`, `decode signal: kind "" is not replay or replay-done`},
		{"an unknown kind", `{"v":1,"kind":"snapshot","id":"x",` + span + `}`, `decode signal: kind "snapshot" is not replay or replay-done`},
		{"no id", `{"v":1,"kind":"replay",` + span + `}`, "decode signal: id missing"},
		{"an id with a slash", `{"v":1,"kind":"replay","id":"a/b",` + span + `}`,
			`decode signal: id "a/b": only A-Z a-z 0-9 . _ : - are allowed`},
		{"an id of 101 characters", `{"v":1,"kind":"replay","id":"` + strings.Repeat("x", 101) + `",` + span + `}`,
			"decode signal: id: 101 characters, at most 100"},
		{"no stream", `{"v":1,"kind":"replay","id":"x","from":"2026-12-03T08:00:00Z","to":"2026-12-03T09:00:00Z"}`,
			"decode signal replay/x: stream missing"},
		{"a stream that is a VDN", `{"v":1,"kind":"replay","id":"x","stream":"25","from":"2026-12-03T08:00:00Z","to":"2026-12-03T09:00:00Z"}`,
			`decode signal replay/x: stream "25": want ccId/vdn/in|out`},
		{"no from", `{"v":1,"kind":"replay","id":"x","stream":"1/25/in","to":"2026-12-03T09:00:00Z"}`,
			"decode signal replay/x: from missing"},
		{"no to", `{"v":1,"kind":"replay-done","id":"x","stream":"1/25/in","from":"2026-12-03T08:00:00Z"}`,
			"decode signal replay-done/x: to missing"},
		{"a span that ends where it starts", `{"v":1,"kind":"replay","id":"x","stream":"1/25/in","from":"2026-12-03T09:00:00Z","to":"2026-12-03T10:00:00+01:00"}`,
			"decode signal replay/x: from 2026-12-03T09:00:00.000000000Z is not before to 2026-12-03T09:00:00.000000000Z"},
		{"a span that ends before it starts", `{"v":1,"kind":"replay","id":"x","stream":"1/25/in","from":"2026-12-03T09:00:00Z","to":"2026-12-03T08:00:00Z"}`,
			"decode signal replay/x: from 2026-12-03T09:00:00.000000000Z is not before to 2026-12-03T08:00:00.000000000Z"},
		{"a from that is not a time", `{"v":1,"kind":"replay","id":"x","stream":"1/25/in","from":"yesterday","to":"2026-12-03T08:00:00Z"}`,
			`decode signal replay/x: from: "yesterday" is not an RFC 3339 time: parsing time "yesterday" as "2006-01-02T15:04:05.999999999Z07:00": cannot parse "yesterday" as "2006"`},
		{"a to in year 10000 in UTC", `{"v":1,"kind":"replay","id":"x","stream":"1/25/in","from":"2026-12-03T08:00:00Z","to":"9999-12-31T23:30:00-01:00"}`,
			`decode signal replay/x: to: "9999-12-31T23:30:00-01:00" is not an RFC 3339 time: time "9999-12-31T23:30:00-01:00" is outside years 0000-9999 in UTC`},
		{"an at without a zone", `{"v":1,"kind":"replay","id":"x",` + span + `,"at":"2026-12-03T18:05:01"}`,
			`decode signal replay/x: at: "2026-12-03T18:05:01" is not an RFC 3339 time: parsing time "2026-12-03T18:05:01" as "2006-01-02T15:04:05.999999999Z07:00": cannot parse "" as "Z07:00"`},
		{"a negative count", `{"v":1,"kind":"replay-done","id":"x",` + span + `,"published":-1}`,
			"decode signal replay-done/x: published: -1 is negative"},
		{"a count that is not a whole number", `{"v":1,"kind":"replay-done","id":"x",` + span + `,"published":1.5}`,
			"decode signal: json: cannot unmarshal number 1.5 into Go struct field signalWire.published of type int"},
		{"a request with a count", `{"v":1,"kind":"replay","id":"x",` + span + `,"published":3}`,
			"decode signal replay/x: published: 3 in a request (only an answer counts events)"},
		{"a request with an error", `{"v":1,"kind":"replay","id":"x",` + span + `,"error":"no"}`,
			"decode signal replay/x: error: set in a request (only an answer reports one)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := DecodeSignal([]byte(tt.value))
			if err == nil {
				t.Fatalf("DecodeSignal accepted it: %+v", s)
			}
			if err.Error() != tt.err {
				t.Errorf("err = %s\nwant  %s", err, tt.err)
			}
		})
	}
}

func TestDecodeSignalOfANewerVersionIsErrSignalVersion(t *testing.T) {
	_, err := DecodeSignal([]byte(`{"v":2,"kind":"replay","id":"x","everything":"different"}`))
	if !errors.Is(err, ErrSignalVersion) || errors.Is(err, ErrStateVersion) {
		t.Errorf("err = %v, want ErrSignalVersion (and not ErrStateVersion)", err)
	}
}

// EncodeSignal never writes what DecodeSignal would refuse.
func TestEncodeSignalRefusesWhatDecodeSignalWouldRefuse(t *testing.T) {
	tests := []struct {
		name string
		edit func(*ReplaySignal)
		err  string
	}{
		{"an unknown kind", func(s *ReplaySignal) { s.Kind = "Replay" }, `encode signal: kind "Replay" is not replay or replay-done`},
		{"no id", func(s *ReplaySignal) { s.ID = "" }, "encode signal: id missing"},
		{"an id with a space", func(s *ReplaySignal) { s.ID = "a b" }, `encode signal: id "a b": only A-Z a-z 0-9 . _ : - are allowed`},
		{"a stream with a leading zero", func(s *ReplaySignal) { s.Stream = "1/025/in" },
			`encode signal replay-done/20261203T180501Z-1f3a9c0b: stream "1/025/in": not in canonical form`},
		{"no from", func(s *ReplaySignal) { s.From = time.Time{} }, "encode signal replay-done/20261203T180501Z-1f3a9c0b: from missing"},
		{"no to", func(s *ReplaySignal) { s.To = time.Time{} }, "encode signal replay-done/20261203T180501Z-1f3a9c0b: to missing"},
		{"a span that ends before it starts", func(s *ReplaySignal) { s.From, s.To = s.To, s.From },
			"encode signal replay-done/20261203T180501Z-1f3a9c0b: from 2026-12-03T09:00:00.123456790Z is not before to 2026-12-03T08:00:00.123456789Z"},
		{"a negative count", func(s *ReplaySignal) { s.Published = -1 },
			"encode signal replay-done/20261203T180501Z-1f3a9c0b: published: -1 is negative"},
		{"a request with a count", func(s *ReplaySignal) { s.Kind = SignalReplay },
			"encode signal replay/20261203T180501Z-1f3a9c0b: published: 1234 in a request (only an answer counts events)"},
		{"a request with an error", func(s *ReplaySignal) { s.Kind, s.Published = SignalReplay, 0 },
			"encode signal replay/20261203T180501Z-1f3a9c0b: error: set in a request (only an answer reports one)"},
		{"an error that is not UTF-8", func(s *ReplaySignal) { s.Error = "broker \xff" },
			"encode signal replay-done/20261203T180501Z-1f3a9c0b: error: not valid UTF-8"},
		{"a writer that is not UTF-8", func(s *ReplaySignal) { s.By = "pod-\xc3" },
			"encode signal replay-done/20261203T180501Z-1f3a9c0b: by: not valid UTF-8"},
		{"a to after year 9999", func(s *ReplaySignal) { s.To = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
			"encode signal replay-done/20261203T180501Z-1f3a9c0b: to: year 10000 in UTC is outside 0000-9999"},
		{"an at before year 0", func(s *ReplaySignal) { s.At = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) },
			"encode signal replay-done/20261203T180501Z-1f3a9c0b: at: year -1 in UTC is outside 0000-9999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := replayDone()
			tt.edit(&s)
			b, err := EncodeSignal(s)
			if err == nil {
				t.Fatalf("EncodeSignal wrote %s", b)
			}
			if err.Error() != tt.err {
				t.Errorf("err = %s\nwant  %s", err, tt.err)
			}
		})
	}
}

// FuzzDecodeSignal: DecodeSignal never panics, and whatever it accepts
// encodes, decodes to the same signal, and encodes to the same bytes again.
func FuzzDecodeSignal(f *testing.F) {
	for _, file := range []string{requestGolden, doneGolden} {
		golden, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(golden)
	}
	f.Add([]byte(`{"v":1,"kind":"replay","id":"x","stream":"1/25/in","from":"0000-01-01T00:00:00Z","to":"0001-01-01T00:00:00.000000001Z","published":0}`))
	f.Add([]byte(`{"v":1,"kind":"replay-done","id":"a:b.c_d-e","stream":"9/1/out","from":"2026-12-03T09:00:00.5+01:00","to":"9999-12-31T23:59:59.999999999Z","published":9223372036854775807,"error":"\ud800","by":"\u0000","at":"0001-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"V":1,"KIND":"replay","id":"x","id":"y","stream":"1/25/in","from":"2026-12-03T08:00:00Z","to":"2026-12-03T09:00:00Z"}`))
	f.Add([]byte(`{"v":2,"kind":"replay"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSignal(b)
		if err != nil {
			return
		}
		if !IsSignalKey(s.Key()) {
			t.Fatalf("accepted a signal whose key %q is not a signal key", s.Key())
		}
		enc, err := EncodeSignal(s)
		if err != nil {
			t.Fatalf("a decoded signal does not encode: %v\n%+v", err, s)
		}
		again, err := DecodeSignal(enc)
		if err != nil {
			t.Fatalf("a re-encoded signal does not decode: %v\n%s", err, enc)
		}
		if diff := sameSignal(s, again); diff != "" {
			t.Fatalf("round trip changed the signal (-first +again):\n%s", diff)
		}
		enc2, err := EncodeSignal(again)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable (%v):\n%s\n%s", err, enc, enc2)
		}
	})
}
