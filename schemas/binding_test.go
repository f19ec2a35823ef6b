package schemas

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// goldenRecord is a Kafka record as testdata/records/*.golden.json writes
// it: the key, the headers in order, and the value, which is always JSON
// (the event in structured mode, its data in binary mode), indented for
// reading; the encoder writes it compact.
type goldenRecord struct {
	Key     string          `json:"key"`
	Headers []goldenHeader  `json:"headers"`
	Value   json.RawMessage `json:"value"`
}

type goldenHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// recordGoldens are the events whose records the golden files pin in both
// modes: a call, a sealed day that lists why it is incomplete, and a
// dead-letter record.
var recordGoldens = []string{"call-completed-answered", "stream-day-sealed-v2-incomplete", "row-quarantined-masked"}

func TestRecordGoldenFiles(t *testing.T) {
	events := goldenEvents(t)
	for _, mode := range []Mode{Structured, Binary} {
		for _, name := range recordGoldens {
			t.Run(string(mode)+"/"+name, func(t *testing.T) {
				r, err := events[name].Record(mode)
				if err != nil {
					t.Fatal(err)
				}
				var compact bytes.Buffer
				if err := json.Compact(&compact, r.Value); err != nil || !bytes.Equal(compact.Bytes(), r.Value) {
					t.Fatalf("the record value is not compact JSON (%v): %s", err, r.Value)
				}
				g := goldenRecord{Key: string(r.Key), Value: r.Value}
				for _, h := range r.Headers {
					g.Headers = append(g.Headers, goldenHeader{h.Key, string(h.Value)})
				}
				got, err := json.MarshalIndent(g, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, '\n')
				path := filepath.Join("testdata", "records", string(mode), name+".golden.json")
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test ./schemas -update to create it)", err)
				}
				if diff := cmp.Diff(string(want), string(got)); diff != "" {
					t.Errorf("Kafka record of %s in %s mode changed (-golden +now); if intended, run go test ./schemas -update and review:\n%s", name, mode, diff)
				}
			})
		}
	}
}

// Every golden record decodes to the event it was made from, and a
// structured one's value still validates.
func TestEveryGoldenRecordDecodesToItsEvent(t *testing.T) {
	events := goldenEvents(t)
	files, err := filepath.Glob(filepath.Join("testdata", "records", "*", "*.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2*len(recordGoldens) {
		t.Fatalf("found %d golden records, want %d", len(files), 2*len(recordGoldens))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var g goldenRecord
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var value bytes.Buffer
		if err := json.Compact(&value, g.Value); err != nil {
			t.Fatal(err)
		}
		var headers []Header
		for _, h := range g.Headers {
			headers = append(headers, Header{h.Key, []byte(h.Value)})
		}
		got, err := DecodeRecord(headers, value.Bytes())
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		name := strings.TrimSuffix(filepath.Base(f), ".golden.json")
		if diff := cmp.Diff(events[name], got); diff != "" {
			t.Errorf("%s decodes to another event (-want +got):\n%s", f, diff)
		}
		if g.Key != got.PartitionKey {
			t.Errorf("%s: key %q, partitionkey %q", f, g.Key, got.PartitionKey)
		}
	}
}

// Every event shape survives both modes unchanged.
func TestEveryEventSurvivesBothModes(t *testing.T) {
	for name, ev := range goldenEvents(t) {
		for _, mode := range []Mode{Structured, Binary} {
			r, err := ev.Record(mode)
			if err != nil {
				t.Fatalf("%s %s: %v", name, mode, err)
			}
			got, err := DecodeRecord(r.Headers, r.Value)
			if err != nil {
				t.Fatalf("%s %s: %v", name, mode, err)
			}
			if diff := cmp.Diff(ev, got); diff != "" {
				t.Errorf("%s changed in %s mode (-want +got):\n%s", name, mode, diff)
			}
			if size, _ := ev.Size(); mode == Binary && recordBytes(r) > size {
				t.Errorf("%s: binary record of %d bytes, above the event's Size %d", name, recordBytes(r), size)
			}
		}
	}
}

// recordBytes is what the value and headers take in Kafka's record format
// (v2): each header's name and value with a varint length each.
func recordBytes(r Record) int {
	n := len(r.Value)
	for _, h := range r.Headers {
		n += varintLen(len(h.Key)) + len(h.Key) + varintLen(len(h.Value)) + len(h.Value)
	}
	return n
}

func varintLen(n int) int {
	z := uint64(n) << 1 // zig-zag of a non-negative n
	l := 1
	for z >= 0x80 {
		z >>= 7
		l++
	}
	return l
}

func TestStructuredHeadersRepeatTheRoutingAttributesUpToTheirBound(t *testing.T) {
	ev := goldenEvents(t)["call-completed-answered"]
	long := ev
	long.Subject = strings.Repeat("s", MaxStructuredHeader+1)
	atBound := ev
	atBound.Subject = strings.Repeat("s", MaxStructuredHeader)
	atBound.Source = "/" + strings.Repeat("c", MaxStructuredHeader-len("//1/vdn/25")) + "/1/vdn/25"
	for _, tc := range []struct {
		name string
		ev   Event
		want []string
	}{
		{"a call has every routing header", ev,
			[]string{"content-type", "ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time"}},
		{"a subject longer than the bound is left to the value", long,
			[]string{"content-type", "ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time"}},
		{"values at the bound are still headers", atBound,
			[]string{"content-type", "ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.ev.Record(Structured)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, h := range r.Headers {
				got = append(got, h.Key)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			size, _ := tc.ev.Size()
			ct := Record{Headers: r.Headers[:1]}
			if extra := recordBytes(r) - size - recordBytes(ct); extra > StructuredHeaderRoom {
				t.Errorf("the ce_ headers take %d bytes, above StructuredHeaderRoom %d", extra, StructuredHeaderRoom)
			}
			back, err := DecodeRecord(r.Headers, r.Value)
			if err != nil || back.Subject != tc.ev.Subject {
				t.Errorf("decoded subject %q, %v; want the value's", back.Subject, err)
			}
			bin, err := tc.ev.Record(Binary)
			if err != nil {
				t.Fatal(err)
			}
			if got := header(bin, "ce_subject"); got != tc.ev.Subject {
				t.Errorf("binary ce_subject = %q, want every attribute whatever its length", got)
			}
		})
	}
}

func header(r Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func TestDecodeRecord(t *testing.T) {
	ev := goldenEvents(t)["stream-heartbeat"]
	structured, err := ev.Record(Structured)
	if err != nil {
		t.Fatal(err)
	}
	binary, err := ev.Record(Binary)
	if err != nil {
		t.Fatal(err)
	}
	with := func(r Record, key, value string) []Header {
		out := []Header{}
		set := false
		for _, h := range r.Headers {
			if h.Key == key {
				if !set && value != "" {
					out = append(out, Header{key, []byte(value)})
				}
				set = true
				continue
			}
			out = append(out, h)
		}
		if !set && value != "" {
			out = append(out, Header{key, []byte(value)})
		}
		return out
	}
	upper := []Header{}
	for _, h := range binary.Headers {
		upper = append(upper, Header{strings.ToUpper(h.Key), h.Value})
	}
	noData := ev
	noData.Data = json.RawMessage("null")
	for _, tc := range []struct {
		name    string
		headers []Header
		value   []byte
		want    Event
		wantErr string
	}{
		{"a structured record is read from its value", structured.Headers, structured.Value, ev, ""},
		{"a structured record's ce_ headers never override its value", with(structured, "ce_id", "forged"), structured.Value, ev, ""},
		{"a structured content type with parameters is structured", with(structured, "content-type", "application/cloudevents+json; charset=UTF-8"),
			structured.Value, ev, ""},
		{"a structured record needs nothing but its content type", structured.Headers[:1], structured.Value, ev, ""},
		{"a batch is not understood", with(structured, "content-type", "application/cloudevents-batch+json"), structured.Value,
			Event{}, `structured content type "application/cloudevents-batch+json": only application/cloudevents+json is understood`},
		{"a binary record takes its attributes from its headers", binary.Headers, binary.Value, ev, ""},
		{"binary header names are matched without regard to case", upper, binary.Value, ev, ""},
		{"a binary record with an empty value has null data", binary.Headers, nil, noData, ""},
		{"binary data that is not a JSON object is refused", binary.Headers, []byte(`[1]`), Event{},
			"binary event " + ev.ID + ": data is not a JSON object"},
		{"binary data that is not JSON at all is refused", binary.Headers, []byte(`{"a":`), Event{},
			"binary event " + ev.ID + ": data is not a JSON object"},
		{"binary data of another content type is refused", with(binary, "content-type", "text/plain"), binary.Value, Event{},
			"binary event " + ev.ID + `: data content type "text/plain" is not JSON`},
		{"a binary time that is not RFC 3339 is refused", with(binary, "ce_time", "yesterday"), binary.Value, Event{},
			"binary event " + ev.ID + `: ce_time: parsing time "yesterday" as "2006-01-02T15:04:05.999999999Z07:00": cannot parse "yesterday" as "2006"`},
		{"a record in neither mode is not a CloudEvent", []Header{{"content-type", []byte("application/json")}}, binary.Value,
			Event{}, ErrNotCloudEvent.Error()},
		{"a record without headers is not a CloudEvent", nil, structured.Value, Event{}, ErrNotCloudEvent.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeRecord(tc.headers, tc.value)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Mode
		wantErr string
	}{
		{"structured", Structured, ""},
		{"binary", Binary, ""},
		{"Binary", "", `"Binary" is not structured or binary`},
		{"", "", `"" is not structured or binary`},
	} {
		var m Mode
		err := m.UnmarshalText([]byte(tc.in))
		if (err == nil) != (tc.wantErr == "") || (err != nil && err.Error() != tc.wantErr) || m != tc.want {
			t.Errorf("UnmarshalText(%q) = %q, %v; want %q, %q", tc.in, m, err, tc.want, tc.wantErr)
		}
	}
}

// FuzzDecodeRecord: DecodeRecord never panics, and whatever it accepts
// encodes in both modes and decodes again to the same event.
func FuzzDecodeRecord(f *testing.F) {
	for name, ev := range goldenEvents(f) {
		for _, mode := range []Mode{Structured, Binary} {
			r, err := ev.Record(mode)
			if err != nil {
				f.Fatal(name, err)
			}
			f.Add(header(r, "content-type"), header(r, "ce_specversion"), header(r, "ce_id"), header(r, "ce_time"), r.Value)
		}
	}
	f.Add("", "1.0", "x", "2026-03-29T08:00:00.123456+02:00", []byte(` {"a":1} `))
	f.Add("application/cloudevents+json;;", "", "", "", []byte(`{}`))
	f.Add("", "1.0", "", "9999-12-31T23:30:00-01:00", []byte(`null`))
	f.Fuzz(func(t *testing.T, contentType, specVersion, id, when string, value []byte) {
		var headers []Header
		for _, h := range []Header{{"content-type", []byte(contentType)}, {"ce_specversion", []byte(specVersion)},
			{"ce_id", []byte(id)}, {"ce_time", []byte(when)}, {"ce_partitionkey", []byte("25")}} {
			if len(h.Value) > 0 {
				headers = append(headers, h)
			}
		}
		ev, err := DecodeRecord(headers, value)
		if err != nil {
			return
		}
		for _, mode := range []Mode{Structured, Binary} {
			r, err := ev.Record(mode)
			if err != nil && mode == Binary && (!jsonContentType(ev.DataContentType) || ev.SpecVersion == "") {
				continue // binary mode carries JSON data only, and needs ce_specversion
			}
			if err != nil {
				t.Fatalf("a decoded event does not encode in %s mode: %v", mode, err)
			}
			back, err := DecodeRecord(r.Headers, r.Value)
			if err != nil {
				t.Fatalf("a re-encoded %s record does not decode: %v", mode, err)
			}
			var want, got any // the same JSON, whatever its escapes (json.Marshal writes & as \u0026)
			_ = json.Unmarshal(cmpOr(ev.Data, "null"), &want)
			_ = json.Unmarshal(cmpOr(back.Data, "null"), &got)
			if back.ID != ev.ID || !back.Time.Equal(ev.Time.Truncate(1e6)) || back.SpecVersion != ev.SpecVersion ||
				!cmp.Equal(want, got) {
				t.Fatalf("%s round trip changed the event:\n%+v\n%+v", mode, ev, back)
			}
		}
	})
}

// cmpOr is b, or or when b is empty: data absent counts as null.
func cmpOr(b json.RawMessage, or string) []byte {
	if len(b) == 0 {
		return []byte(or)
	}
	return b
}
