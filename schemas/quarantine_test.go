package schemas

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"
)

// badRow is a CC-CMS row whose callEnd is not a number, with a phone number
// as a string, one as a number and one nested.
var badRow = json.RawMessage(`{"callId":"1774772100-538062","callerNo":"+8613800001234","calleeNo":4008001000,` +
	`"callEnd":"yesterday","vdn":25,"extra":{"callerNo":"13900005678"}}`)

// truncatedRow is a row cut off in the middle of its calling number.
var truncatedRow = json.RawMessage(`{"callId":"1774772100-538062","callerNo":"+86138000`)

var (
	quarantineStream = Stream{CCID: 1, VDN: 25, Dir: In}
	quarantineStart  = time.Date(2026, 3, 29, 8, 0, 0, 0, time.UTC)
	quarantineEnd    = quarantineStart.Add(5 * time.Minute)
	quarantineAt     = time.Date(2026, 3, 29, 8, 7, 30, 125_000_000, time.UTC)
)

func quarantined(e *Encoder, raw json.RawMessage) Event {
	return e.Quarantined(quarantineStream, quarantineStart, quarantineEnd, "callEnd: not a number", raw, quarantineAt)
}

func quarantinedData(t *testing.T, ev Event) QuarantinedData {
	t.Helper()
	var d QuarantinedData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func validates(t *testing.T, ev Event) {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(b); err != nil {
		t.Error(err)
	}
}

// The planted number, in every place a row can hide it, never reaches the
// wire under mask or hash: not the number, not a run of its digits longer
// than the 4 that mask keeps. Under plain it does (the rows do plant it).
func TestPlantedPhoneNumberNeverAppearsUnderMaskOrHash(t *testing.T) {
	rows := map[string]string{
		"a string":                        `{"callerNo":"+8613800001234"}`,
		"a number":                        `{"calleeNo":8613800001234}`,
		"a number with an exponent":       `{"calleeNo":8613800001234e0}`,
		"a nested object":                 `{"a":{"b":{"callerNo":"+8613800001234"}}}`,
		"an array under the key":          `{"callerNo":["x",{"n":"+8613800001234"}]}`,
		"an array of objects":             `{"legs":[{"calleeNo":"+8613800001234"}]}`,
		"a key in capitals":               `{"CALLERNO":"+8613800001234"}`,
		"an escaped key":                  `{"caller\u004eo":"+8613800001234"}`,
		"escaped digits":                  `{"callerNo":"+\u00386\u00313800001234"}`,
		"a duplicate key":                 `{"callerNo":"1","callerNo":"+8613800001234"}`,
		"truncated JSON":                  `{"callId":"x","callerNo":"+8613800001234`,
		"an array row":                    `["+8613800001234"]`,
		"a bare number":                   `8613800001234`,
		"not JSON at all":                 `callerNo=+8613800001234`,
		"invalid UTF-8 around it":         "\xff+8613800001234\xfe",
		"an object followed by rubbish":   `{"x":1} +8613800001234`,
		"two objects":                     `{"callerNo":"1"}{"callerNo":"+8613800001234"}`,
		"full-width digits in a non-row":  "＋８６１３８００００１２３４",
		"an object nested beyond a limit": strings.Repeat(`{"a":`, 10001) + `"+8613800001234"` + strings.Repeat("}", 10001),
	}
	leaks := []string{"8613800001234", "86138", "13800", "38000", "00001", "８６１３８"}
	for _, mode := range []EncoderOptions{{PII: PIIMask}, {PII: PIIHash, PIIKey: []byte("k")}, {PII: PIIPlain}} {
		enc := newEncoder(t, mode)
		for name, raw := range rows {
			t.Run(string(mode.PII)+"/"+name, func(t *testing.T) {
				ev := quarantined(enc, json.RawMessage(raw))
				validates(t, ev)
				b, err := json.Marshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				var found []string
				for _, l := range leaks {
					if strings.Contains(string(b), l) {
						found = append(found, l)
					}
				}
				switch {
				case mode.PII != PIIPlain && len(found) > 0:
					t.Errorf("the planted number shows (%v) in %s", found, b)
				case mode.PII == PIIPlain && len(found) == 0:
					t.Errorf("plain does not show the number, so the row planted nothing: %s", b)
				}
			})
		}
	}
}

func TestQuarantinedRowIsTreatedInPlace(t *testing.T) {
	raw := `{"b":1,"a":{"CALLERNO":12345678},"callerNo":["+861",{"x":"123456"},true,null],"calleeNo":"",` +
		`"callId":"<7>","b":2}`
	tests := []struct {
		name string
		opts EncoderOptions
		raw  string
		want string
	}{
		{"plain keeps the object as received, order and duplicates included", EncoderOptions{PII: PIIPlain}, raw,
			`{"b":1,"a":{"CALLERNO":12345678},"callerNo":["+861",{"x":"123456"},true,null],"calleeNo":"","callId":"\u003c7\u003e","b":2}`},
		{"mask turns numbers into masked strings and leaves other fields", EncoderOptions{PII: PIIMask}, raw,
			`{"b":1,"a":{"CALLERNO":"****5678"},"callerNo":["****",{"x":"**3456"},true,null],"calleeNo":"","callId":"\u003c7\u003e","b":2}`},
		{"hash hashes every value under a phone key", EncoderOptions{PII: PIIHash, PIIKey: []byte("key")}, `{"callerNo":1234}`,
			`{"callerNo":"280ed91eee6eb96a2b1cf598843c1308e84623d14e4208d96c20f7e2de81315e"}`},
		{"whitespace around an object is dropped", EncoderOptions{PII: PIIMask}, " \n{ \"callerNo\" : \"12345\" }\n",
			`{"callerNo":"*2345"}`},
		{"plain carries a row that is not an object as a string", EncoderOptions{PII: PIIPlain}, `[1,2]`, `"[1,2]"`},
		{"mask carries a row that is not JSON as a string without digits", EncoderOptions{PII: PIIMask}, `{"callerNo":"12`,
			`"{\"callerNo\":\"**"`},
		{"hash masks the digits of a row that is not JSON too", EncoderOptions{PII: PIIHash, PIIKey: []byte("k")}, `42`, `"**"`},
		{"an empty row is an empty string", EncoderOptions{PII: PIIMask}, ``, `""`},
		{"invalid UTF-8 becomes U+FFFD", EncoderOptions{PII: PIIPlain}, "a\xffb", `"a\ufffdb"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := quarantined(newEncoder(t, tt.opts), json.RawMessage(tt.raw))
			validates(t, ev)
			if diff := cmp.Diff(tt.want, string(quarantinedData(t, ev).Row)); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}

func TestQuarantineRecordNamesItsStreamWindowAndRow(t *testing.T) {
	enc := newEncoder(t, EncoderOptions{PII: PIIMask})
	ev := quarantined(enc, badRow)
	sum := sha256.Sum256(badRow)
	want := QuarantinedData{
		streamData:  streamData{Stream: "1/25/in", CCID: 1, VDN: 25, Direction: "inbound"},
		WindowStart: Timestamp{quarantineStart}, WindowEnd: Timestamp{quarantineEnd},
		Reason: "callEnd: not a number", RowSHA256: hex.EncodeToString(sum[:]), NumberPolicy: PIIMask,
		DetectedAt: Timestamp{quarantineAt},
	}
	got := quarantinedData(t, ev)
	got.Row = nil
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(QuarantinedData{})); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	if ev.Type != TypeQuarantined || ev.DataSchema != SchemaQuarantined || ev.PartitionKey != "25" ||
		ev.Subject != "1/25/in" || ev.Source != "/ccms/1/vdn/25" || !ev.Time.Equal(quarantineAt) {
		t.Errorf("attributes: %+v", ev)
	}
	if got := RowSum(badRow); got != want.RowSHA256 {
		t.Errorf("RowSum = %s, want %s", got, want.RowSHA256)
	}
}

// The id covers the stream, the window and the row, and nothing else: the
// same row of the same window reported again, later or with another reason
// or policy, is a duplicate.
func TestQuarantineIDCoversStreamWindowAndRow(t *testing.T) {
	mask := newEncoder(t, EncoderOptions{PII: PIIMask})
	plain := newEncoder(t, EncoderOptions{PII: PIIPlain, Source: "other"})
	id := quarantined(mask, badRow).ID
	same := map[string]Event{
		"another reason":      mask.Quarantined(quarantineStream, quarantineStart, quarantineEnd, "other", badRow, quarantineAt),
		"a later detection":   mask.Quarantined(quarantineStream, quarantineStart, quarantineEnd, "x", badRow, quarantineAt.Add(time.Hour)),
		"another policy":      quarantined(plain, badRow),
		"a sub-ms difference": mask.Quarantined(quarantineStream, quarantineStart.Add(time.Microsecond), quarantineEnd, "x", badRow, quarantineAt),
	}
	other := map[string]Event{
		"another stream":       mask.Quarantined(Stream{CCID: 1, VDN: 25, Dir: Out}, quarantineStart, quarantineEnd, "x", badRow, quarantineAt),
		"another window start": mask.Quarantined(quarantineStream, quarantineStart.Add(time.Millisecond), quarantineEnd, "x", badRow, quarantineAt),
		"another window end":   mask.Quarantined(quarantineStream, quarantineStart, quarantineEnd.Add(time.Minute), "x", badRow, quarantineAt),
		"another row":          quarantined(mask, truncatedRow),
		"the row reformatted":  quarantined(mask, append(json.RawMessage(" "), badRow...)),
	}
	for name, ev := range same {
		if ev.ID != id {
			t.Errorf("%s changed the id", name)
		}
	}
	for name, ev := range other {
		if ev.ID == id {
			t.Errorf("%s kept the id", name)
		}
	}
}

func TestQuarantinedWithoutAReasonSaysSo(t *testing.T) {
	ev := newEncoder(t, EncoderOptions{PII: PIIMask}).Quarantined(quarantineStream, quarantineStart, quarantineEnd, "", badRow, quarantineAt)
	validates(t, ev)
	if got := quarantinedData(t, ev).Reason; got != "unspecified" {
		t.Errorf("reason = %q", got)
	}
}

// Each case breaks one thing in a valid quarantine record; Validate must
// notice, and its error must not quote the row's phone number.
func TestValidateRejectsBrokenQuarantineRecords(t *testing.T) {
	tests := []struct {
		name string
		edit func(ev, data map[string]any)
	}{
		{"an id that is not the record's", func(ev, _ map[string]any) { ev["id"] = strings.Repeat("ab", 16) }},
		{"a rowSha256 the id does not cover", func(_, d map[string]any) { d["rowSha256"] = strings.Repeat("0", 64) }},
		{"an uppercase rowSha256", func(_, d map[string]any) { d["rowSha256"] = strings.ToUpper(d["rowSha256"].(string)) }},
		{"a time that is not detectedAt", func(ev, _ map[string]any) { ev["time"] = "2026-03-29T08:07:31.125Z" }},
		{"a reversed window", func(_, d map[string]any) { d["windowStart"], d["windowEnd"] = d["windowEnd"], d["windowStart"] }},
		{"a null window end", func(_, d map[string]any) { d["windowEnd"] = nil }},
		{"a missing reason", func(_, d map[string]any) { delete(d, "reason") }},
		{"an empty reason", func(_, d map[string]any) { d["reason"] = "" }},
		{"a row that is a number", func(_, d map[string]any) { d["row"] = 8613800001234 }},
		{"a row that is an array", func(_, d map[string]any) { d["row"] = []any{"+8613800001234"} }},
		{"a string row with digits under mask", func(_, d map[string]any) { d["row"] = "callerNo=+8613800001234" }},
		{"a plain number in an object row under mask", func(_, d map[string]any) {
			d["row"] = map[string]any{"callerNo": "+8613800001234"}
		}},
		{"a numeric phone number under mask", func(_, d map[string]any) { d["row"] = map[string]any{"calleeNo": 8613800001234} }},
		{"a nested plain number under mask", func(_, d map[string]any) {
			d["row"] = map[string]any{"x": []any{map[string]any{"CallerNo": "+8613800001234"}}}
		}},
		{"an unknown number policy", func(_, d map[string]any) { d["numberPolicy"] = "encrypt" }},
		{"an unexpected data field", func(_, d map[string]any) { d["rowLength"] = 12 }},
		{"a subject that is another stream", func(ev, _ map[string]any) { ev["subject"] = "1/25/out" }},
		{"a partition key that is not the vdn", func(ev, _ map[string]any) { ev["partitionkey"] = "26" }},
		{"the call-completed schema", func(ev, _ map[string]any) { ev["dataschema"] = SchemaCallCompleted }},
	}
	valid, err := json.Marshal(quarantined(newEncoder(t, EncoderOptions{PII: PIIMask}), badRow))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(valid); err != nil {
		t.Fatalf("the unbroken record is invalid: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(valid, &m); err != nil {
				t.Fatal(err)
			}
			tt.edit(m, m["data"].(map[string]any))
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			err = Validate(b)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
			if strings.Contains(err.Error(), "8613800001234") {
				t.Errorf("the error quotes the phone number: %v", err)
			}
		})
	}
}

func TestHashedRowsAreCheckedForHashes(t *testing.T) {
	ev := quarantined(newEncoder(t, EncoderOptions{PII: PIIHash, PIIKey: []byte("k")}), badRow)
	validates(t, ev)
	var m map[string]any
	b, _ := json.Marshal(ev)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["data"].(map[string]any)["row"] = map[string]any{"callerNo": "**********1234"} // masked, not hashed
	b, _ = json.Marshal(m)
	if err := Validate(b); err == nil {
		t.Error("Validate accepted a masked number under the hash policy")
	}
}

// FuzzQuarantined: whatever bytes a row holds, its quarantine record under
// every policy validates, names the row by its SHA-256, carries an object row
// as an object with the same content under plain, and never carries a digit
// of a row that is not an object under mask or hash.
func FuzzQuarantined(f *testing.F) {
	for _, seed := range []string{string(badRow), string(truncatedRow), `[1]`, `"1234"`, ``, `{}`, `{"callerNo":{"calleeNo":[1,"2",{"x":3e5}]}}`,
		`{"CallerNo":null,"calleeNo":true}`, "{\"callerNo\":\"\xff1\"}", `{"a":1}{"b":2}`, ` {"callerNo":"1"} `} {
		f.Add([]byte(seed))
	}
	encoders := []*Encoder{
		newEncoder(f, EncoderOptions{PII: PIIPlain}),
		newEncoder(f, EncoderOptions{PII: PIIMask}),
		newEncoder(f, EncoderOptions{PII: PIIHash, PIIKey: []byte("k")}),
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, enc := range encoders {
			ev := quarantined(enc, raw)
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatalf("%s: does not encode: %v", enc.opts.PII, err)
			}
			if err := Validate(b); err != nil {
				t.Fatalf("%s: %v\n%s", enc.opts.PII, err, b)
			}
			d := quarantinedData(t, ev)
			if d.RowSHA256 != RowSum(raw) {
				t.Fatalf("rowSha256 %s is not the row's", d.RowSHA256)
			}
			checkFuzzedRow(t, enc.opts.PII, raw, d.Row)
		}
	})
}

func checkFuzzedRow(t *testing.T, policy PIIMode, raw []byte, row json.RawMessage) {
	t.Helper()
	if isObject(raw) {
		if row[0] != '{' {
			t.Fatalf("%s: an object row became %s", policy, row)
		}
		if policy == PIIPlain && !sameJSON(t, raw, row) {
			t.Fatalf("plain changed the row:\n%s\n%s", raw, row)
		}
		return
	}
	var s string
	if err := json.Unmarshal(row, &s); err != nil {
		t.Fatalf("%s: a row that is not an object became %s", policy, row)
	}
	if policy != PIIPlain && strings.ContainsFunc(s, unicode.IsDigit) {
		t.Fatalf("%s: digits left in %q", policy, s)
	}
	if policy == PIIPlain && utf8Valid(raw) && s != string(raw) {
		t.Fatalf("plain changed the row %q to %q", raw, s)
	}
}

// sameJSON: a and b decode to the same value (numbers by their text).
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	decode := func(x []byte) any {
		dec := json.NewDecoder(bytes.NewReader(x))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	return cmp.Equal(decode(a), decode(b))
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\ufffd") == string(b) }
