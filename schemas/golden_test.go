package schemas

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current encoder")

var berlin = mustLoad("Europe/Berlin")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// answeredCall is an inbound voice call answered after 12.5 s that talked
// for 3 min, given in a non-UTC zone with sub-millisecond noise.
func answeredCall() Call {
	t0 := time.Date(2026, 3, 29, 10, 15, 0, 250_400_000, berlin)
	return Call{
		CCID: 1, VDN: 25, Inbound: true, CallID: "1774772100-538062",
		CallerNo: "+8613800001234", CalleeNo: "4008001000",
		CallType: 0, LeaveReason: 88, MediaType: 5, SubMediaType: 0,
		WaitBegin: t0, AckBegin: t0.Add(12500 * time.Millisecond), CallBegin: t0.Add(13 * time.Second),
		CallEnd: t0.Add(13*time.Second + 3*time.Minute), LogDate: t0.Add(4 * time.Minute),
	}
}

// unansweredCall is an outbound call nobody answered, with codes the tables
// do not know.
func unansweredCall() Call {
	t0 := time.Date(2026, 3, 29, 8, 0, 0, 0, time.UTC)
	return Call{
		CCID: 1, VDN: 4999, Inbound: false, CallID: "167789709-33",
		CallerNo: "1212", CalleeNo: "",
		CallType: 99, LeaveReason: 21, MediaType: 53, SubMediaType: 4,
		WaitBegin: t0, CallEnd: t0.Add(40 * time.Second),
	}
}

// unendedCall is answeredCall without an end: CC-CMS kept listing it with
// callEnd 0.
func unendedCall() Call {
	c := answeredCall()
	c.CallEnd = time.Time{}
	return c
}

// unendedWaitingCall is unansweredCall without an end, and with a logDate:
// its latest time is still waitBegin.
func unendedWaitingCall() Call {
	c := unansweredCall()
	c.CallEnd = time.Time{}
	c.LogDate = c.WaitBegin.Add(time.Minute)
	return c
}

// lastSeen is when callpub last read the unended calls: shortly before
// their day left the API's reach.
var lastSeen = time.Date(2026, 3, 30, 21, 40, 0, 0, time.UTC)

// completeSeal is a reconciliation that read the whole of a Berlin day (23
// hours long: the clocks went forward that night).
func completeSeal() DaySeal {
	return DaySeal{
		Day: "20260329", Published: 1234, Complete: true,
		From: time.Date(2026, 3, 29, 0, 0, 0, 0, berlin), To: time.Date(2026, 3, 30, 0, 0, 0, 0, berlin),
	}
}

// incompleteSeal is a last-chance read of a day whose first three hours
// were lost, one half hour of which the server would not page through, and
// with two quarantined rows; its spans are given out of order.
func incompleteSeal() DaySeal {
	day := time.Date(2026, 3, 29, 0, 0, 0, 0, berlin)
	return DaySeal{
		Day: "20260329", Published: 17, From: day.Add(3 * time.Hour), To: day.Add(23 * time.Hour),
		Gaps: []Span{{day, day.Add(3 * time.Hour)}},
		Suspect: []Span{{day.Add(14 * time.Hour), day.Add(14*time.Hour + 30*time.Minute)},
			{day.Add(10 * time.Hour), day.Add(10*time.Hour + 30*time.Minute)}},
		Quarantined: 2, LastChance: true,
	}
}

func newEncoder(t testing.TB, o EncoderOptions) *Encoder {
	t.Helper()
	e, err := NewEncoder(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// must returns a func for one-line encodes: must(enc.CallCompleted(c, false)).
func must(t testing.TB) func(Event, error) Event {
	return func(ev Event, err error) Event {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
}

// goldenEvents is every event shape the golden files pin. The encoder no
// longer writes day-sealed v1: testdata/stream-day-sealed-v1.golden.json
// stays as a fixture of the old record, which must still validate.
func goldenEvents(t testing.TB) map[string]Event {
	plain := newEncoder(t, EncoderOptions{PII: PIIPlain})
	masked := newEncoder(t, EncoderOptions{PII: PIIMask, Source: "cc-cms.tenant-a"})
	hashed := newEncoder(t, EncoderOptions{PII: PIIHash, PIIKey: []byte("golden-key")})
	at := time.Date(2026, 3, 30, 0, 5, 0, 0, time.UTC)
	changed := answeredCall()
	changed.LeaveReason = 16
	return map[string]Event{
		"call-completed-answered":   must(t)(plain.CallCompleted(answeredCall(), false)),
		"call-completed-unanswered": must(t)(plain.CallCompleted(unansweredCall(), false)),
		"call-completed-update":     must(t)(plain.CallCompleted(changed, true)),
		"call-completed-masked":     must(t)(masked.CallCompleted(answeredCall(), false)),
		"call-completed-hashed":     must(t)(hashed.CallCompleted(answeredCall(), false)),
		"stream-gap": plain.Gap(Stream{CCID: 1, VDN: 25, Dir: In}, time.Date(2026, 3, 27, 22, 0, 0, 0, time.UTC),
			time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC), at),
		"stream-suspect": plain.Suspect(Stream{CCID: 1, VDN: 25, Dir: Out}, time.Date(2026, 3, 29, 9, 0, 0, 0, time.UTC),
			time.Date(2026, 3, 29, 9, 0, 1, 0, time.UTC), "received 37 rows, count says 40 (3 reads, and the span cannot be split below 1s)", at),
		"stream-day-sealed-v2-complete": plain.DaySealed(Stream{CCID: 1, VDN: 25, Dir: Out}, completeSeal(), at),
		"stream-day-sealed-v2-incomplete": masked.DaySealed(Stream{CCID: 1, VDN: 4999, Dir: In}, incompleteSeal(),
			at.Add(45*time.Hour)),
		"call-unended-plain":         must(t)(plain.Unended(Hash(unendedCall()), lastSeen)),
		"call-unended-masked":        must(t)(masked.Unended(Hash(unendedCall()), lastSeen)),
		"call-unended-hashed":        must(t)(hashed.Unended(Hash(unendedCall()), lastSeen)),
		"call-unended-unanswered":    must(t)(plain.Unended(Hash(unendedWaitingCall()), lastSeen)),
		"stream-heartbeat":           plain.Heartbeat(Stream{CCID: 1, VDN: 25, Dir: In}, at.Add(-2*time.Minute), at),
		"stream-heartbeat-no-cursor": plain.Heartbeat(Stream{CCID: 1, VDN: 4999, Dir: Out}, time.Time{}, at),
		"row-quarantined-plain":      quarantined(plain, badRow),
		"row-quarantined-masked":     quarantined(masked, badRow),
		"row-quarantined-hashed":     quarantined(hashed, badRow),
		"row-quarantined-truncated":  quarantined(masked, truncatedRow),
	}
}

func TestGoldenFiles(t *testing.T) {
	for name, ev := range goldenEvents(t) {
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(ev, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./schemas -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("wire format of %s changed (-golden +now); if intended, run go test ./schemas -update and review:\n%s", name, diff)
			}
		})
	}
}

// Every golden file, including any left over from an older run, must meet
// the schema: the files are the wire format consumers see.
func TestEveryGoldenFileValidates(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < len(goldenEvents(t)) {
		t.Fatalf("found %d golden files, want at least %d", len(files), len(goldenEvents(t)))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(b); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		again, err := json.MarshalIndent(ev, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(append(again, '\n'), b) {
			t.Errorf("%s does not survive decode and encode unchanged", f)
		}
	}
}

func TestEveryEncodedEventValidates(t *testing.T) {
	for name, ev := range goldenEvents(t) {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
