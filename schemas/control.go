package schemas

import (
	"encoding/json"
	"fmt"
	"strconv"
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

// DaySealedData is the data of a day.sealed record: the stream's day (in the
// API's day zone) was reconciled and Published calls ending that day were
// published in total.
type DaySealedData struct {
	streamData
	Day       string    `json:"day"` // YYYY-MM-DD
	Published int       `json:"published"`
	SealedAt  Timestamp `json:"sealedAt"`
}

// HeartbeatData is the data of a heartbeat: every call of the stream whose
// filter time is before Cursor has been published (null: no cursor yet).
type HeartbeatData struct {
	streamData
	Cursor Timestamp `json:"cursor"`
	At     Timestamp `json:"at"`
}

// streamOf parses the stream key. A malformed key still yields an event
// (the methods below cannot fail), which then fails Validate: ccId and vdn are
// 0 and partitionkey is the raw key.
func streamOf(stream string) (streamData, string, int, int) {
	ccID, vdn, inbound, err := ParseStream(stream)
	if err != nil {
		return streamData{Stream: stream}, stream, 0, 0
	}
	return streamData{Stream: stream, CCID: ccID, VDN: vdn, Direction: direction(inbound)}, strconv.Itoa(vdn), ccID, vdn
}

func (e *Encoder) control(typ, schema, canonical, stream, key string, ccID, vdn int, at time.Time, data any) Event {
	b, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("schemas: marshal %s data: %v", typ, err)) // plain structs: cannot happen
	}
	return Event{
		SpecVersion:     SpecVersion,
		ID:              idOf(canonical),
		Source:          e.source(ccID, vdn),
		Type:            typ,
		Subject:         stream,
		Time:            normaliseTime(at),
		DataContentType: DataContentType,
		DataSchema:      schema,
		PartitionKey:    key,
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
func (e *Encoder) Gap(stream string, start, end, detectedAt time.Time) Event {
	sd, key, ccID, vdn := streamOf(stream)
	start, end = normaliseTime(start), normaliseTime(end)
	lost := int64(0)
	if end.After(start) {
		lost = end.Sub(start).Milliseconds()
	}
	d := GapData{streamData: sd, LostStart: Timestamp{start}, LostEnd: Timestamp{end}, LostMs: lost,
		DetectedAt: Timestamp{normaliseTime(detectedAt)}}
	canonical := fmt.Sprintf("ccms-gap/%s/%d/%d", stream, ms(start), ms(end))
	return e.control(TypeGap, SchemaGap, canonical, stream, key, ccID, vdn, detectedAt, d)
}

// DaySealed encodes the completeness record of a stream's day ("YYYYMMDD", as
// dedupe names days, or "YYYY-MM-DD"; written as YYYY-MM-DD), sealed at at.
// The id covers the stream, the day and the count, so a re-seal with the same
// count is a duplicate and one with another count is not.
func (e *Encoder) DaySealed(stream string, day string, published int, at time.Time) Event {
	sd, key, ccID, vdn := streamOf(stream)
	if len(day) == 8 {
		if t, err := time.Parse("20060102", day); err == nil {
			day = t.Format(time.DateOnly)
		}
	}
	d := DaySealedData{streamData: sd, Day: day, Published: published, SealedAt: Timestamp{normaliseTime(at)}}
	canonical := fmt.Sprintf("ccms-day-sealed/%s/%d/%s", stream, published, day)
	return e.control(TypeDaySealed, SchemaDaySealed, canonical, stream, key, ccID, vdn, at, d)
}

// Heartbeat encodes a stream's cursor (zero: none yet) at time at.
func (e *Encoder) Heartbeat(stream string, cursor, at time.Time) Event {
	sd, key, ccID, vdn := streamOf(stream)
	cursor, at = normaliseTime(cursor), normaliseTime(at)
	d := HeartbeatData{streamData: sd, Cursor: Timestamp{cursor}, At: Timestamp{at}}
	canonical := fmt.Sprintf("ccms-heartbeat/%s/%d/%d", stream, ms(cursor), ms(at))
	return e.control(TypeHeartbeat, SchemaHeartbeat, canonical, stream, key, ccID, vdn, at, d)
}
