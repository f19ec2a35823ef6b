package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"
	"unicode/utf8"
)

// The CloudEvents Kafka protocol binding (version 1.0): how an Event
// becomes a Kafka record and back. It has two content modes, and every
// record callpub writes (call, control and dead-letter) uses the one
// configured (CALLPUB_EVENT_MODE):
//
//   - structured: the whole event is the value (ContentType JSON), the
//     content-type header says so, and the attributes a consumer routes on
//     are repeated as ce_ headers (id, source, type, subject, time,
//     specversion), so it can filter without parsing the value. The value is
//     what counts: a reader takes the attributes from it, never from the
//     headers.
//   - binary: the value is the data alone (a JSON object), the content-type
//     header is datacontenttype, and every attribute is a ce_ header,
//     partitionkey and dataschema included.
//
// In both the record key is partitionkey, the VDN's decimal string. A
// reader tells the modes apart as the binding says: a content-type header
// of application/cloudevents… is structured; otherwise a ce_specversion
// header is binary; anything else is not a CloudEvent.

// Mode is a CloudEvents content mode of the Kafka binding.
type Mode string

const (
	Structured Mode = "structured" // the event as the value, attributes repeated as ce_ headers
	Binary     Mode = "binary"     // the data as the value, attributes as ce_ headers
)

// ParseMode accepts "structured" or "binary".
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Structured, Binary:
		return m, nil
	}
	return "", fmt.Errorf("%q is not structured or binary", s)
}

// UnmarshalText is ParseMode, so a Mode can be read from the environment.
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := ParseMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is an event as a Kafka record: key, value and headers.
type Record struct {
	Key     []byte
	Value   []byte
	Headers []Header
}

// Header names of the binding.
const (
	HeaderContentType = "content-type"
	headerPrefix      = "ce_"
)

// MaxStructuredHeader is the longest ce_ header value a structured record
// carries: a longer attribute (a callId of 300 bytes as the subject, say;
// CC-CMS's are some 20) is left out of the headers and is found in the
// value only. This bounds what the headers add to a record, so that an
// event's Size still tells whether its record fits the topic. Binary
// records carry every attribute, whatever its length: there the value
// holds the data alone, and the record is no larger than Size.
const MaxStructuredHeader = 256

// StructuredHeaderRoom is the most the ce_ headers of a structured record
// add to its size in Kafka's record format: six headers, each a name, a
// value of at most MaxStructuredHeader bytes and two varint lengths.
const StructuredHeaderRoom = len(headerPrefix+"specversion"+headerPrefix+"id"+headerPrefix+"source"+
	headerPrefix+"type"+headerPrefix+"subject"+headerPrefix+"time") + 6*(MaxStructuredHeader+3)

// Record encodes e in mode. The error is that of json.Marshal (Data that is
// not valid JSON), an unknown mode, or, in binary mode, an event without
// specversion or with data that is not JSON.
func (e Event) Record(mode Mode) (Record, error) {
	switch mode {
	case Structured:
		value, err := e.MarshalJSON() // what json.Marshal(e) gives, without compacting it all over again
		if err != nil {
			return Record{}, err
		}
		h := []Header{{HeaderContentType, []byte(ContentType)}}
		for _, a := range e.attributes() {
			if a.routed && len(a.value) <= MaxStructuredHeader {
				h = append(h, Header{headerPrefix + a.name, []byte(a.value)})
			}
		}
		return Record{Key: []byte(e.PartitionKey), Value: value, Headers: h}, nil
	case Binary:
		if !jsonContentType(e.DataContentType) {
			return Record{}, fmt.Errorf("event %s: data content type %q is not JSON", e.ID, e.DataContentType)
		}
		if e.SpecVersion == "" { // its ce_specversion header is what marks a binary record
			return Record{}, fmt.Errorf("event %s: no specversion", e.ID)
		}
		var value []byte
		if e.Data != nil {
			var b bytes.Buffer
			if err := json.Compact(&b, e.Data); err != nil {
				return Record{}, fmt.Errorf("event %s data: %w", e.ID, err)
			}
			value = b.Bytes()
		}
		var h []Header
		if e.DataContentType != "" {
			h = append(h, Header{HeaderContentType, []byte(e.DataContentType)})
		}
		for _, a := range e.attributes() {
			h = append(h, Header{headerPrefix + a.name, []byte(a.value)})
		}
		return Record{Key: []byte(e.PartitionKey), Value: value, Headers: h}, nil
	}
	return Record{}, fmt.Errorf("event %s: unknown content mode %q", e.ID, mode)
}

// attribute is one CloudEvents attribute as a ce_ header would carry it;
// routed marks those structured records repeat in their headers.
type attribute struct {
	name, value string
	routed      bool
}

// attributes lists e's attributes other than data and datacontenttype (the
// content-type header), in the spec's order, leaving out the empty ones.
func (e Event) attributes() []attribute {
	all := []attribute{
		{"specversion", e.SpecVersion, true},
		{"id", e.ID, true},
		{"source", e.Source, true},
		{"type", e.Type, true},
		{"subject", e.Subject, true},
		{"time", "", true},
		{"dataschema", e.DataSchema, false},
		{"partitionkey", e.PartitionKey, false},
	}
	if !e.Time.IsZero() {
		all[5].value = FormatTime(e.Time)
	}
	out := all[:0]
	for _, a := range all {
		if a.value != "" {
			out = append(out, a)
		}
	}
	return out
}

// ErrNotCloudEvent says a record is in neither content mode: no
// application/cloudevents content type and no ce_specversion header.
var ErrNotCloudEvent = errors.New("not a CloudEvent: no cloudevents content-type and no ce_specversion header")

// DecodeRecord decodes a record's headers and value into an Event, in
// whichever content mode the record is. A structured record is read from
// its value alone (Event.UnmarshalJSON), its ce_ headers ignored; only
// application/cloudevents+json is understood (not batches). A binary record
// takes its attributes from its ce_ headers (UTF-8, names matched without
// regard to case; unknown ones ignored, as unknown JSON attributes are),
// datacontenttype from its content-type header, and its value as data, which
// must be a JSON object, or empty for no data. Time is returned in UTC.
func DecodeRecord(headers []Header, value []byte) (Event, error) {
	var contentType, specVersion string
	var binary bool
	for _, h := range headers {
		switch k := strings.ToLower(h.Key); k {
		case HeaderContentType:
			contentType = string(h.Value)
		case headerPrefix + "specversion":
			specVersion, binary = string(h.Value), true
		}
	}
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && strings.HasPrefix(mt, "application/cloudevents") {
		if mt != ContentType {
			return Event{}, fmt.Errorf("structured content type %q: only %s is understood", mt, ContentType)
		}
		var e Event
		if err := json.Unmarshal(value, &e); err != nil {
			return Event{}, fmt.Errorf("structured event: %w", err)
		}
		return e, nil
	}
	if !binary {
		return Event{}, ErrNotCloudEvent
	}
	return decodeBinary(headers, contentType, specVersion, value)
}

// decodeBinary is DecodeRecord of a binary-mode record.
func decodeBinary(headers []Header, contentType, specVersion string, value []byte) (Event, error) {
	e := Event{SpecVersion: specVersion, DataContentType: contentType}
	for _, h := range headers {
		name, ok := strings.CutPrefix(strings.ToLower(h.Key), headerPrefix)
		if !ok {
			continue
		}
		if !utf8.Valid(h.Value) {
			return Event{}, fmt.Errorf("binary event: header %s is not UTF-8", h.Key)
		}
		v := string(h.Value)
		switch name {
		case "id":
			e.ID = v
		case "source":
			e.Source = v
		case "type":
			e.Type = v
		case "subject":
			e.Subject = v
		case "dataschema":
			e.DataSchema = v
		case "partitionkey":
			e.PartitionKey = v
		case "time":
			t, err := parseTime(v)
			if err != nil {
				return Event{}, fmt.Errorf("binary event %s: ce_time: %w", e.ID, err)
			}
			e.Time = t
		}
	}
	if !jsonContentType(contentType) {
		return Event{}, fmt.Errorf("binary event %s: data content type %q is not JSON", e.ID, contentType)
	}
	data := bytes.TrimSpace(value)
	switch {
	case len(data) == 0:
		e.Data = json.RawMessage("null")
	case !json.Valid(data) || (data[0] != '{' && !bytes.Equal(data, []byte("null"))):
		return Event{}, fmt.Errorf("binary event %s: data is not a JSON object", e.ID)
	default:
		e.Data = json.RawMessage(bytes.Clone(data))
	}
	return e, nil
}

// jsonContentType reports whether a datacontenttype says JSON: empty (the
// spec's default for JSON data), application/json or any +json type.
func jsonContentType(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}
