package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Files holds the JSON Schemas and asyncapi.yaml, for serving or printing
// (callpub could expose them; tests read them).
//
//go:embed *.schema.json asyncapi.yaml
var Files embed.FS

// SchemaBase is the base of every schema's $id. The ids are names, not
// addresses anyone must fetch: Validate resolves them from Files.
const SchemaBase = "https://github.com/callpub/callpub/schemas/"

// The $id of each type's schema; also the events' dataschema attribute.
const (
	SchemaEnvelope      = SchemaBase + "cloudevent.v1.schema.json"
	SchemaCallCompleted = SchemaBase + "call-completed.v1.schema.json"
	SchemaCallUnended   = SchemaBase + "call-unended.v1.schema.json"
	SchemaGap           = SchemaBase + "stream-gap.v1.schema.json"
	SchemaSuspect       = SchemaBase + "stream-suspect.v1.schema.json"
	SchemaDaySealed     = SchemaBase + "stream-day-sealed.v2.schema.json"
	SchemaDaySealedV1   = SchemaBase + "stream-day-sealed.v1.schema.json"
	SchemaHeartbeat     = SchemaBase + "stream-heartbeat.v1.schema.json"
	SchemaQuarantined   = SchemaBase + "row-quarantined.v1.schema.json"
)

// SchemaFor returns the schema $id of an event type, or "" when unknown.
func SchemaFor(eventType string) string {
	switch eventType {
	case TypeCallCompleted:
		return SchemaCallCompleted
	case TypeCallUnended:
		return SchemaCallUnended
	case TypeGap:
		return SchemaGap
	case TypeSuspect:
		return SchemaSuspect
	case TypeDaySealed:
		return SchemaDaySealed
	case TypeDaySealedV1:
		return SchemaDaySealedV1
	case TypeHeartbeat:
		return SchemaHeartbeat
	case TypeQuarantined:
		return SchemaQuarantined
	}
	return ""
}

// Types lists every event type Validate knows, each with its schema
// (SchemaFor): those the encoder writes and TypeDaySealedV1, which it no
// longer writes.
func Types() []string {
	return []string{TypeCallCompleted, TypeCallUnended, TypeGap, TypeSuspect, TypeDaySealed, TypeDaySealedV1, TypeHeartbeat, TypeQuarantined}
}

var compiled = sync.OnceValues(compile)

func compile() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat() // date-time, date, uri are assertions, not annotations
	files, err := fs.Glob(Files, "*.schema.json")
	if err != nil {
		return nil, err
	}
	for _, name := range files {
		b, err := Files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		if err := c.AddResource(SchemaBase+name, doc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
	}
	out := map[string]*jsonschema.Schema{}
	for _, typ := range Types() {
		s, err := c.Compile(SchemaFor(typ))
		if err != nil {
			return nil, fmt.Errorf("compile schema of %s: %w", typ, err)
		}
		out[typ] = s
	}
	return out, nil
}

// ValidationError says why an event does not meet its schema.
type ValidationError struct {
	ID, Type string
	Err      error // a *jsonschema.ValidationError, or a consistency check
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("event %q of type %q is invalid: %v", e.ID, e.Type, e.Err)
}

func (e *ValidationError) Unwrap() error { return e.Err }

// Validate checks one event value (the JSON of a structured-mode CloudEvent)
// against the embedded JSON Schema of its type, with a real draft 2020-12
// validator, and then checks what a schema cannot express: partitionkey is
// data.vdn; for a completed call subject is callId, time is callEnd and id is
// the EventID (or, for an update, UpdateEventID) of the call; for an unended
// call subject is callId, time is its latest time (callBegin, else ackBegin,
// else waitBegin, else logDate) and id is its UnendedEventID; for a v2
// day-sealed record time is sealedAt, id is the record's, spans run forward
// and a complete day lists no gap, suspect span or quarantined row and was
// read over a span with readFrom before readTo; for a quarantine record time
// is detectedAt, id is the record's and, unless numberPolicy is plain, no
// phone number is left in the row. Meant for tests in any package and for
// tools; the publisher does not call it per event.
func Validate(eventJSON []byte) error {
	schemas, err := compiled()
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(eventJSON))
	if err != nil {
		return fmt.Errorf("validate event: %w", err)
	}
	var head eventHead
	if err := json.Unmarshal(eventJSON, &head); err != nil {
		return fmt.Errorf("validate event: %w", err)
	}
	s, ok := schemas[head.Type]
	if !ok {
		return &ValidationError{ID: head.ID, Type: head.Type, Err: errors.New("unknown event type")}
	}
	if err := s.Validate(doc); err != nil {
		return &ValidationError{ID: head.ID, Type: head.Type, Err: err}
	}
	var d eventData
	if err := json.Unmarshal(head.Data, &d); err != nil {
		return &ValidationError{ID: head.ID, Type: head.Type, Err: err}
	}
	if err := checkFor(head.Type)(head, d); err != nil {
		return &ValidationError{ID: head.ID, Type: head.Type, Err: err}
	}
	return nil
}

// checkFor is the check Validate runs after the schema on an event of type typ.
func checkFor(typ string) func(eventHead, eventData) error {
	switch typ {
	case TypeCallCompleted:
		return checkCall
	case TypeCallUnended:
		return checkUnended
	}
	return checkStreamRecord
}

// eventHead is what Validate reads of an event's attributes.
type eventHead struct {
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	Source       string          `json:"source"`
	Subject      string          `json:"subject"`
	Time         string          `json:"time"`
	PartitionKey string          `json:"partitionkey"`
	Data         json.RawMessage `json:"data"`
}

// eventData is what Validate reads of any event's data, once the schema
// has checked its shape.
type eventData struct {
	CCID        int       `json:"ccId"`
	VDN         int       `json:"vdn"`
	Direction   string    `json:"direction"`
	CallID      string    `json:"callId"`
	WaitBegin   Timestamp `json:"waitBegin"`
	AckBegin    Timestamp `json:"ackBegin"`
	CallBegin   Timestamp `json:"callBegin"`
	CallEnd     Timestamp `json:"callEnd"`
	LogDate     Timestamp `json:"logDate"`
	Update      bool      `json:"update"`
	ContentHash string    `json:"contentHash"`
	Stream      string    `json:"stream"`
}

// checkKey checks what every event shares: partitionkey and source name
// data's VDN (and ccId).
func checkKey(head eventHead, d eventData) error {
	if want := strconv.Itoa(d.VDN); head.PartitionKey != want {
		return fmt.Errorf("partitionkey %q is not data.vdn %q", head.PartitionKey, want)
	}
	if suffix := fmt.Sprintf("/%d/vdn/%d", d.CCID, d.VDN); !strings.HasSuffix(head.Source, suffix) {
		return fmt.Errorf("source %q does not end in data's ccId and vdn (%s)", head.Source, suffix)
	}
	return nil
}

// checkStreamRecord checks a control or quarantine record: its key, its
// subject and data.stream name the stream of data, a v2 day-sealed record
// meets checkDaySealed and a quarantine record checkQuarantined.
func checkStreamRecord(head eventHead, d eventData) error {
	if err := checkKey(head, d); err != nil {
		return err
	}
	if head.Subject != d.Stream {
		return fmt.Errorf("subject %q is not data.stream %q", head.Subject, d.Stream)
	}
	if want := (Stream{CCID: d.CCID, VDN: d.VDN, Dir: DirectionOf(d.Direction == "inbound")}).Key(); d.Stream != want {
		return fmt.Errorf("data.stream %q does not match ccId, vdn and direction (%q)", d.Stream, want)
	}
	switch head.Type {
	case TypeDaySealed:
		return checkDaySealed(head.ID, head.Time, head.Data)
	case TypeQuarantined:
		return checkQuarantined(head.ID, head.Time, head.Data)
	}
	return nil
}

// checkCallSubject checks what every call event shares: its key, and
// subject is callId.
func checkCallSubject(head eventHead, d eventData) error {
	if err := checkKey(head, d); err != nil {
		return err
	}
	if head.Subject != d.CallID {
		return fmt.Errorf("subject %q is not data.callId %q", head.Subject, d.CallID)
	}
	return nil
}

// checkCall checks a call-completed event: its key, subject is callId, time
// is callEnd and id is the call's (EventID, or UpdateEventID for an update).
func checkCall(head eventHead, d eventData) error {
	if err := checkCallSubject(head, d); err != nil {
		return err
	}
	if want := FormatTime(d.CallEnd.Time); head.Time != want {
		return fmt.Errorf("time %s is not data.callEnd %s", head.Time, want)
	}
	inbound := d.Direction == "inbound"
	want := EventID(d.CCID, d.VDN, inbound, d.CallID)
	if d.Update {
		hash, err := strconv.ParseUint(d.ContentHash, 16, 64)
		if err != nil {
			return fmt.Errorf("data.contentHash: %v", err)
		}
		want = UpdateEventID(d.CCID, d.VDN, inbound, d.CallID, hash)
	}
	if head.ID != want {
		return fmt.Errorf("id is not the id of the call (want %s)", want)
	}
	return nil
}
