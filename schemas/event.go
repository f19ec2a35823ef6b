package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ContentType is the Kafka content-type header of every event (CloudEvents
// structured mode).
const ContentType = "application/cloudevents+json"

// SpecVersion is the CloudEvents version of every event.
const SpecVersion = "1.0"

// DataContentType is the datacontenttype attribute: data is a JSON object.
const DataContentType = "application/json"

// Event types.
const (
	TypeCallCompleted = "com.huawei.ccms.call.completed.v1"
	TypeCallUnended   = "com.huawei.ccms.call.unended.v1"
	TypeGap           = "com.huawei.ccms.stream.gap.v1"
	// TypeSuspect is a span read only as far as the server would page it.
	TypeSuspect = "com.huawei.ccms.stream.suspect.v1"
	// TypeDaySealed is the day-sealed record the encoder writes (v2).
	TypeDaySealed = "com.huawei.ccms.stream.day.sealed.v2"
	// TypeDaySealedV1 is the day-sealed record of earlier releases, which
	// the encoder no longer writes; records of it on a topic still validate
	// and decode (DecodeDaySealed).
	TypeDaySealedV1 = "com.huawei.ccms.stream.day.sealed.v1"
	TypeHeartbeat   = "com.huawei.ccms.stream.heartbeat.v1"
	TypeQuarantined = "com.huawei.ccms.row.quarantined.v1"
)

// timeLayout is the only time format on the wire: RFC 3339, UTC, milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z"

// FormatTime formats t the way every time appears on the wire:
// "2026-03-29T08:15:00.250Z" (UTC, exactly three fractional digits).
func FormatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// Event is one CloudEvent. It is a value: encode it with encoding/json (the
// whole event is the Kafka record's value) and key the record with
// PartitionKey.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            time.Time       `json:"time"` // UTC, ms, RFC 3339 on the wire
	DataContentType string          `json:"datacontenttype"`
	DataSchema      string          `json:"dataschema,omitempty"`
	PartitionKey    string          `json:"partitionkey"` // the VDN as a decimal string; also the Kafka key
	Data            json.RawMessage `json:"data"`
}

// Size is the length in bytes of the event's encoding, json.Marshal(e):
// exactly the Kafka record value the publisher writes (its key and header
// come on top; the publisher's MaxMessageBytes allows for them). Compare it
// with that limit before publishing, so that an event too large for the
// topic is set aside on its own instead of failing its whole batch. The
// error is that of json.Marshal: Data that is not valid JSON.
func (e Event) Size() (int, error) {
	b, err := e.MarshalJSON() // json.Marshal(e) would compact the compact result again
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

// wireEvent is Event with its time as the wire string.
type wireEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            string          `json:"time,omitempty"`
	DataContentType string          `json:"datacontenttype"`
	DataSchema      string          `json:"dataschema,omitempty"`
	PartitionKey    string          `json:"partitionkey"`
	Data            json.RawMessage `json:"data"`
}

// MarshalJSON writes the event in structured mode with time as RFC 3339 UTC
// milliseconds (omitted when zero).
func (e Event) MarshalJSON() ([]byte, error) {
	w := wireEvent{
		SpecVersion: e.SpecVersion, ID: e.ID, Source: e.Source, Type: e.Type, Subject: e.Subject,
		DataContentType: e.DataContentType, DataSchema: e.DataSchema, PartitionKey: e.PartitionKey, Data: e.Data,
	}
	if !e.Time.IsZero() {
		w.Time = FormatTime(e.Time)
	}
	if w.Data == nil {
		w.Data = json.RawMessage("null")
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads an event written by MarshalJSON (or any structured-mode
// CloudEvent with a JSON object or null as data). Time is returned in UTC.
func (e *Event) UnmarshalJSON(b []byte) error {
	var w wireEvent
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	var t time.Time
	if w.Time != "" {
		var err error
		if t, err = parseTime(w.Time); err != nil {
			return fmt.Errorf("event time: %w", err)
		}
	}
	data := bytes.TrimSpace(w.Data)
	if len(data) > 0 && data[0] != '{' && !bytes.Equal(data, []byte("null")) {
		return errors.New("event data: not a JSON object")
	}
	*e = Event{
		SpecVersion: w.SpecVersion, ID: w.ID, Source: w.Source, Type: w.Type, Subject: w.Subject, Time: t,
		DataContentType: w.DataContentType, DataSchema: w.DataSchema, PartitionKey: w.PartitionKey, Data: data,
	}
	return nil
}

// Timestamp is a time in event data: RFC 3339 UTC milliseconds, or null when
// zero (absent upstream).
type Timestamp struct{ time.Time }

// MarshalJSON writes null for the zero time.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + FormatTime(t.Time) + `"`), nil
}

// UnmarshalJSON reads null as the zero time.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Timestamp{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := parseTime(s)
	if err != nil {
		return err
	}
	*t = Timestamp{v}
	return nil
}

// parseTime parses RFC 3339 into UTC, refusing instants whose UTC year has no
// four-digit RFC 3339 form ("9999-12-31T23:30:00-01:00"), so that whatever
// decodes also encodes and decodes again.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	t = t.UTC()
	if t.Year() < 0 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("time %q is outside years 0000-9999 in UTC", s)
	}
	return t, nil
}
