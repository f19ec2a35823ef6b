package schemas

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Control records go to the optional control topic, keyed like calls by the
// stream's VDN so that a stream's records share a partition with each other.
// Their ids are deterministic too: re-sending the same fact gives the same id.

// streamData is the part every control record's data shares.
type streamData struct {
	Stream    string `json:"stream"` // "1/25/in"
	CCID      int    `json:"ccId"`
	VDN       int    `json:"vdn"`
	Direction string `json:"direction"`
}

// GapData is the data of a gap record: calls in [LostStart, LostEnd) were
// never read and are out of the API's reach.
type GapData struct {
	streamData
	LostStart  Timestamp `json:"lostStart"`
	LostEnd    Timestamp `json:"lostEnd"`
	LostMs     int64     `json:"lostMs"`
	DetectedAt Timestamp `json:"detectedAt"`
}

// SuspectData is the data of a suspect record: the stream's calls in
// [SpanStart, SpanEnd) were published as far as the server would page them,
// and its pages never agreed with its count, so some may be missing.
type SuspectData struct {
	streamData
	SpanStart  Timestamp `json:"spanStart"`
	SpanEnd    Timestamp `json:"spanEnd"`
	Reason     string    `json:"reason"`
	DetectedAt Timestamp `json:"detectedAt"`
}

// maxReason bounds a suspect record's reason (the schema's maxLength).
const maxReason = 1024

// Suspect encodes a span [start, end) of a stream read only as far as the
// server would page it, detected at detectedAt (the event time). The id
// covers the stream and the span, so every report of it is one fact.
func (e *Encoder) Suspect(s Stream, start, end time.Time, reason string, detectedAt time.Time) Event {
	start, end = normaliseTime(start), normaliseTime(end)
	if len(reason) > maxReason {
		reason = strings.ToValidUTF8(reason[:maxReason], "")
	}
	d := SuspectData{streamData: streamOf(s), SpanStart: Timestamp{start}, SpanEnd: Timestamp{end}, Reason: reason,
		DetectedAt: Timestamp{normaliseTime(detectedAt)}}
	canonical := fmt.Sprintf("ccms-suspect/%s/%d/%d", s.Key(), ms(start), ms(end))
	return e.control(TypeSuspect, SchemaSuspect, canonical, s, detectedAt, d)
}

// HeartbeatData is the data of a heartbeat: every call of the stream whose
// filter time is before Cursor has been published (null: no cursor yet).
type HeartbeatData struct {
	streamData
	Cursor Timestamp `json:"cursor"`
	At     Timestamp `json:"at"`
}

// streamOf is the part of a control record's data that names s.
func streamOf(s Stream) streamData {
	return streamData{Stream: s.Key(), CCID: s.CCID, VDN: s.VDN, Direction: s.Dir.Name()}
}

func (e *Encoder) control(typ, schema, canonical string, s Stream, at time.Time, data any) Event {
	b, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("schemas: marshal %s data: %v", typ, err)) // plain structs: cannot happen
	}
	return Event{
		SpecVersion:     SpecVersion,
		ID:              idOf(canonical),
		Source:          e.source(s.CCID, s.VDN),
		Type:            typ,
		Subject:         s.Key(),
		Time:            normaliseTime(at),
		DataContentType: DataContentType,
		DataSchema:      schema,
		PartitionKey:    strconv.Itoa(s.VDN),
		Data:            b,
	}
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// Gap encodes a lost span [start, end) of a stream, detected at detectedAt
// (the event time). The id covers the stream and the span.
func (e *Encoder) Gap(s Stream, start, end, detectedAt time.Time) Event {
	start, end = normaliseTime(start), normaliseTime(end)
	lost := int64(0)
	if end.After(start) {
		lost = end.Sub(start).Milliseconds()
	}
	d := GapData{streamData: streamOf(s), LostStart: Timestamp{start}, LostEnd: Timestamp{end}, LostMs: lost,
		DetectedAt: Timestamp{normaliseTime(detectedAt)}}
	canonical := fmt.Sprintf("ccms-gap/%s/%d/%d", s.Key(), ms(start), ms(end))
	return e.control(TypeGap, SchemaGap, canonical, s, detectedAt, d)
}

// Heartbeat encodes a stream's cursor (zero: none yet) at time at.
func (e *Encoder) Heartbeat(s Stream, cursor, at time.Time) Event {
	cursor, at = normaliseTime(cursor), normaliseTime(at)
	d := HeartbeatData{streamData: streamOf(s), Cursor: Timestamp{cursor}, At: Timestamp{at}}
	canonical := fmt.Sprintf("ccms-heartbeat/%s/%d/%d", s.Key(), ms(cursor), ms(at))
	return e.control(TypeHeartbeat, SchemaHeartbeat, canonical, s, at, d)
}
