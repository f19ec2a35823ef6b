package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sethvargo/go-envconfig"

	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/schemas"
)

var verifyEnc = func() *schemas.Encoder {
	e, err := schemas.NewEncoder(schemas.EncoderOptions{PII: schemas.PIIPlain})
	if err != nil {
		panic(err)
	}
	return e
}()

var (
	berlin = mustZone("Europe/Berlin")
	s25in  = schemas.Stream{CCID: 1, VDN: 25, Dir: schemas.In}
	s26out = schemas.Stream{CCID: 1, VDN: 26, Dir: schemas.Out}
)

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// at is a time on 2026-03-29 in Berlin: the night clocks went forward, a
// 23-hour day.
func at(hour, minute int) time.Time { return time.Date(2026, 3, 29, hour, minute, 0, 0, berlin) }

// call is the completed call id of s ending at end.
func call(t *testing.T, s schemas.Stream, id string, end time.Time, update bool) schemas.Event {
	t.Helper()
	c := schemas.Call{CCID: s.CCID, VDN: s.VDN, Inbound: s.Inbound(), CallID: id, CallerNo: "1", CalleeNo: "2",
		MediaType: 5, WaitBegin: end.Add(-time.Minute), CallEnd: end}
	if update {
		c.LeaveReason = 16 // other content
	}
	e, err := verifyEnc.CallCompleted(c, update)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// fullDay is a seal of the Berlin day of 2026-03-29 that read it whole.
func fullDay(published int, complete bool) schemas.DaySeal {
	return schemas.DaySeal{Day: "20260329", Published: published, From: at(0, 0), To: at(0, 0).AddDate(0, 0, 1), Complete: complete}
}

func seal(s schemas.Stream, d schemas.DaySeal) schemas.Event {
	return verifyEnc.DaySealed(s, d, at(0, 0).AddDate(0, 0, 1).Add(time.Hour))
}

// record is one record of one topic, in topic order.
type record struct {
	control bool
	e       schemas.Event
}

func onEvents(es ...schemas.Event) []record {
	out := make([]record, len(es))
	for i, e := range es {
		out[i] = record{e: e}
	}
	return out
}

func onControl(es ...schemas.Event) []record {
	out := make([]record, len(es))
	for i, e := range es {
		out[i] = record{control: true, e: e}
	}
	return out
}

func cat(parts ...[]record) []record {
	var out []record
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// row is the part of a verdict a case checks.
type row struct {
	stream, day                   string
	sealed                        int // -1: no seal
	found, dups, updates, unended int
	verdict                       string
	reasons                       []string
}

func rowOf(v dayVerdict) row {
	r := row{v.Stream, v.Day, -1, v.Found, v.Duplicates, v.Updates, v.Unended, v.Verdict, v.Reasons}
	if v.Sealed != nil {
		r.sealed = *v.Sealed
	}
	return r
}

func TestVerifyJudgesEachDayAgainstItsLatestSeal(t *testing.T) {
	a1, a2, a3 := call(t, s25in, "a1", at(8, 0), false), call(t, s25in, "a2", at(12, 0), false), call(t, s25in, "a3", at(23, 30), false)
	lateNight := call(t, s25in, "a4", at(0, 0).AddDate(0, 0, 1).Add(30*time.Minute), false) // 00:30 on the 30th
	moved := call(t, s25in, "a4", at(23, 59), true)                                         // corrected into the 29th
	unended, err := verifyEnc.Unended(schemas.Hash(schemas.Call{CCID: 1, VDN: 25, Inbound: true, CallID: "u1",
		WaitBegin: at(9, 0), CallBegin: at(9, 1)}), at(23, 0))
	if err != nil {
		t.Fatal(err)
	}
	lostDay := time.Date(2026, 3, 27, 0, 0, 0, 0, berlin)
	gap := verifyEnc.Gap(s26out, lostDay.Add(10*time.Hour), lostDay.AddDate(0, 0, 2), at(1, 0))
	partial := fullDay(2, false)
	partial.From = at(8, 0)
	troubled := fullDay(3, true)
	troubled.Gaps = []schemas.Span{{Start: at(0, 0), End: at(3, 0)}}
	troubled.Quarantined = 2
	troubled.From = at(3, 0)
	reconciled := fullDay(2, true)
	lastChance := fullDay(3, true)
	lastChance.LastChance = true

	for _, tc := range []struct {
		name    string
		records []record
		sel     selection
		want    []row
	}{
		{"a complete seal whose calls are all on the topic proves the day",
			cat(onEvents(a1, a2, a3), onControl(seal(s25in, fullDay(3, true)))), selection{},
			[]row{{"1/25/in", "2026-03-29", 3, 3, 0, 0, 0, "complete", []string{}}}},
		{"a call missing from the topic fails the day",
			cat(onEvents(a1, a3), onControl(seal(s25in, fullDay(3, true)))), selection{},
			[]row{{"1/25/in", "2026-03-29", 3, 2, 0, 0, 0, "mismatch", []string{"sealed 3 calls, the topic holds 2: 1 missing from the topic"}}}},
		{"a call the seal does not know fails the day",
			cat(onEvents(a1, a2, a3), onControl(seal(s25in, fullDay(2, true)))), selection{},
			[]row{{"1/25/in", "2026-03-29", 2, 3, 0, 0, 0, "mismatch", []string{"sealed 2 calls, the topic holds 3: 1 more on the topic than sealed"}}}},
		{"a repeated event id is a duplicate, not another call",
			cat(onEvents(a1, a2, a1, a3, a1), onControl(seal(s25in, fullDay(3, true)))), selection{},
			[]row{{"1/25/in", "2026-03-29", 3, 3, 2, 0, 0, "complete", []string{}}}},
		{"an update is the same call published again",
			cat(onEvents(a1, a2, a3, call(t, s25in, "a2", at(12, 0), true)), onControl(seal(s25in, fullDay(3, true)))), selection{},
			[]row{{"1/25/in", "2026-03-29", 3, 3, 0, 1, 0, "complete", []string{}}}},
		{"an update that corrects callEnd across midnight moves the call to its new day",
			cat(onEvents(a1, a2, a3, lateNight, moved), onControl(seal(s25in, fullDay(4, true)))), selection{},
			[]row{{"1/25/in", "2026-03-29", 4, 4, 0, 1, 0, "complete", []string{}}}},
		{"the latest seal wins: the last-chance read resealed with a new count",
			cat(onEvents(a1, a2), onControl(seal(s25in, reconciled)), onEvents(a3), onControl(seal(s25in, lastChance))), selection{},
			[]row{{"1/25/in", "2026-03-29", 3, 3, 0, 0, 0, "complete", []string{}}}},
		{"an earlier seal does not prove what a later one's count denies",
			cat(onEvents(a1, a2, a3), onControl(seal(s25in, fullDay(3, true)), seal(s25in, fullDay(4, true)))), selection{},
			[]row{{"1/25/in", "2026-03-29", 4, 3, 0, 0, 0, "mismatch", []string{"sealed 4 calls, the topic holds 3: 1 missing from the topic"}}}},
		{"a seal listing a gap and quarantined rows is incomplete, with its reasons",
			cat(onEvents(a1, a2, a3), onControl(seal(s25in, troubled))), selection{},
			[]row{{"1/25/in", "2026-03-29", 3, 3, 0, 0, 0, "incomplete", []string{
				"lost to the API's horizon: 00:00–03:00", "2 quarantined rows (on the dead-letter topic)", "read only 03:00–24:00 of the day"}}}},
		{"a day read only in part says which part, even when the count matches",
			cat(onEvents(a2, a3), onControl(seal(s25in, partial))), selection{},
			[]row{{"1/25/in", "2026-03-29", 2, 2, 0, 0, 0, "incomplete", []string{"read only 08:00–24:00 of the day"}}}},
		{"a v1 seal never proves a day",
			cat(onEvents(a1), onControl(v1Seal(t, s25in, 1))), selection{},
			[]row{{"1/25/in", "2026-03-29", 1, 1, 0, 0, 0, "incomplete", []string{
				"sealed by an earlier release (day.sealed.v1), which does not say whether the whole day was read"}}}},
		{"a day with calls and no seal is not sealed",
			onEvents(a1), selection{},
			[]row{{"1/25/in", "2026-03-29", -1, 1, 0, 0, 0, "not sealed", []string{
				"no day-sealed record on the control topic (not sealed yet, or the record has left the topic)"}}}},
		{"the days a gap record covers are reported with the span lost",
			onControl(gap), selection{},
			[]row{
				{"1/26/out", "2026-03-27", -1, 0, 0, 0, 0, "not sealed", []string{"lost to the API's horizon: 10:00–24:00 (gap record)"}},
				{"1/26/out", "2026-03-28", -1, 0, 0, 0, 0, "not sealed", []string{"lost to the API's horizon: 00:00–24:00 (gap record)"}},
			}},
		{"a call published without an end is not a call of the seal's count",
			cat(onEvents(a1, unended), onControl(seal(s25in, fullDay(1, true)))), selection{},
			[]row{{"1/25/in", "2026-03-29", 1, 1, 0, 0, 1, "complete", []string{}}}},
		{"days named are reported for every stream, even one with nothing that day",
			cat(onEvents(a1), onControl(seal(s25in, fullDay(1, true)), gap)), selection{from: "2026-03-29", to: "2026-03-29"},
			[]row{
				{"1/25/in", "2026-03-29", 1, 1, 0, 0, 0, "complete", []string{}},
				{"1/26/out", "2026-03-29", -1, 0, 0, 0, 0, "not sealed", []string{
					"no day-sealed record on the control topic (not sealed yet, or the record has left the topic)"}},
			}},
		{"a stream named alone is all that is reported",
			cat(onEvents(a1), onControl(seal(s25in, fullDay(1, true)), gap)), selection{stream: "1/26/out", from: "2026-03-28", to: "2026-03-28"},
			[]row{{"1/26/out", "2026-03-28", -1, 0, 0, 0, 0, "not sealed", []string{"lost to the API's horizon: 00:00–24:00 (gap record)"}}}},
		{"days starting before the floor are left out unless named",
			cat(onEvents(a1), onControl(seal(s25in, fullDay(1, true)), gap)), selection{floor: at(0, 0), why: "where -from starts"},
			[]row{{"1/25/in", "2026-03-29", 1, 1, 0, 0, 0, "complete", []string{}}}},
		{"a day named that starts before the floor is not read",
			cat(onEvents(a1), onControl(seal(s25in, fullDay(1, true)))), selection{from: "2026-03-29", to: "2026-03-29", floor: at(6, 0), why: "where -from starts"},
			[]row{{"1/25/in", "2026-03-29", 1, 1, 0, 0, 0, "not read", []string{
				"the day starts before 2026-03-29T06:00:00+02:00, where -from starts: its calls are not all read"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLedger(berlin)
			for _, r := range tc.records {
				take := l.event
				if r.control {
					take = l.control
				}
				if err := take(r.e); err != nil {
					t.Fatal(err)
				}
			}
			var got []row
			for _, v := range l.judge(tc.sel) {
				got = append(got, rowOf(v))
				if v.OK != (v.Verdict == verdictComplete) {
					t.Errorf("%s %s: ok %v with verdict %q", v.Stream, v.Day, v.OK, v.Verdict)
				}
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(row{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// v1Seal is a day-sealed v1 record as earlier releases wrote it.
func v1Seal(t *testing.T, s schemas.Stream, published int) schemas.Event {
	t.Helper()
	e := seal(s, fullDay(published, false))
	e.Type, e.DataSchema = schemas.TypeDaySealedV1, schemas.SchemaDaySealedV1
	e.Data = json.RawMessage(fmt.Sprintf(`{"stream":%q,"ccId":%d,"vdn":%d,"direction":%q,"day":"2026-03-29","published":%d,"sealedAt":"2026-03-30T00:00:00.000Z"}`,
		s.Key(), s.CCID, s.VDN, s.Dir.Name(), published))
	return e
}

// Days are named in the tenant's zone: a call ending at 23:30 UTC on the
// 28th is on the 29th in Berlin, and one at 22:30 UTC on the 29th on the 30th
// (summer time from 02:00).
func TestVerifyNamesDaysInTheTenantsZone(t *testing.T) {
	l := newLedger(berlin)
	for _, e := range []schemas.Event{
		call(t, s25in, "x", time.Date(2026, 3, 28, 23, 30, 0, 0, time.UTC), false),
		call(t, s25in, "y", time.Date(2026, 3, 29, 22, 30, 0, 0, time.UTC), false),
	} {
		if err := l.event(e); err != nil {
			t.Fatal(err)
		}
	}
	var days []string
	for _, v := range l.judge(selection{}) {
		days = append(days, v.Day)
	}
	if diff := cmp.Diff([]string{"2026-03-29", "2026-03-30"}, days); diff != "" {
		t.Errorf("days (-want +got):\n%s", diff)
	}
}

// verify reads only the Kafka variables and the zone: no store, no CC-CMS
// URL or credentials.
func TestVerifyConfigNeedsNoCCMSCredentials(t *testing.T) {
	for _, tc := range []struct {
		name    string
		vars    map[string]string
		wantErr string
	}{
		{"brokers, topics and a zone are enough",
			map[string]string{"CALLPUB_KAFKA_BROKERS": "k:9092", "CALLPUB_KAFKA_CONTROL_TOPIC": "c", "CALLPUB_CCMS_TIMEZONE": "Asia/Shanghai"}, ""},
		{"the zone defaults to UTC", map[string]string{"CALLPUB_KAFKA_BROKERS": "k:9092", "CALLPUB_KAFKA_CONTROL_TOPIC": "c"}, ""},
		{"without a control topic there are no seals to compare",
			map[string]string{"CALLPUB_KAFKA_BROKERS": "k:9092"},
			"config: CALLPUB_KAFKA_CONTROL_TOPIC: not set: verify compares the day-sealed records there with the event topic"},
		{"without brokers there is nothing to read", map[string]string{"CALLPUB_KAFKA_CONTROL_TOPIC": "c"},
			"config: CALLPUB_KAFKA_BROKERS: missing required value"},
		{"an unknown zone", map[string]string{"CALLPUB_KAFKA_BROKERS": "k:9092", "CALLPUB_KAFKA_CONTROL_TOPIC": "c", "CALLPUB_CCMS_TIMEZONE": "Mars/Olympus"},
			`config: CALLPUB_CCMS_TIMEZONE: "Mars/Olympus" is not an IANA time zone`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc, loc, err := loadVerifyEnv(t.Context(), envconfig.MapLookuper(tc.vars))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || exitCode(err, io.Discard) != 2 {
					t.Fatalf("error %v, want %q and exit code 2", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if kc.Topic != "cc.calls.completed" || kc.ControlTopic != "c" {
				t.Errorf("topics %q and %q", kc.Topic, kc.ControlTopic)
			}
			if want := tc.vars["CALLPUB_CCMS_TIMEZONE"]; loc.String() != cmpOr(want, "UTC") {
				t.Errorf("zone %s, want %s", loc, cmpOr(want, "UTC"))
			}
		})
	}
}

func cmpOr(s, or string) string {
	if s == "" {
		return or
	}
	return s
}

// verify's CALLPUB_CCMS_TIMEZONE has the default the service's has, so both
// name days alike when the variable is unset.
func TestVerifyZoneDefaultIsTheServices(t *testing.T) {
	f, _ := reflect.TypeFor[ccms.Config]().FieldByName("Timezone")
	g, _ := reflect.TypeFor[verifyEnv]().FieldByName("Timezone")
	_, want, _ := strings.Cut(f.Tag.Get("env"), "default=")
	_, got, _ := strings.Cut(g.Tag.Get("env"), "default=")
	if want == "" || got != want {
		t.Errorf("verify's zone default %q, the service's %q", got, want)
	}
}

func TestVerifyFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"one day", []string{"-day", "2026-03-29"}, ""},
		{"a range of days with a stream and JSON", []string{"-day", "2026-03-01..2026-03-07", "-stream", "1/25/in", "-json"}, ""},
		{"a start time", []string{"-from", "2026-03-29T00:00:00+02:00"}, ""},
		{"a day that is not a date", []string{"-day", "29.3.2026"}, `verify: -day "29.3.2026": want YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD`},
		{"a range backwards", []string{"-day", "2026-03-07..2026-03-01"}, `verify: -day "2026-03-07..2026-03-01": the range ends before it starts`},
		{"a stream that is not one", []string{"-stream", "25"}, `verify: -stream: stream "25": want ccId/vdn/in|out`},
		{"a start that is not a time", []string{"-from", "yesterday"}, `verify: -from "yesterday" is not beginning or an RFC 3339 time`},
		{"an argument left over", []string{"2026-03-29"}, `verify: unexpected argument "2026-03-29"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseVerifyFlags(tc.args, io.Discard)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ue *usageError
			if err == nil || err.Error() != tc.wantErr || !errors.As(err, &ue) {
				t.Fatalf("error %v, want the usage error %q", err, tc.wantErr)
			}
		})
	}
	var out bytes.Buffer
	if f, err := parseVerifyFlags([]string{"-h"}, &out); f != nil || err != nil || !strings.Contains(out.String(), "-stream") {
		t.Errorf("-h: %v, %v, %q", f, err, out.String())
	}
}
