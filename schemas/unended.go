package schemas

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// An unended call is one CC-CMS kept listing with callEnd 0 until callpub
// stopped waiting for it (ccms-api.md A17: it may be an abandoned call, so
// it is published, never dropped). Its event carries what is known of the
// call, says that the end was never reported, and when callpub last saw the
// call listed as running.

// CallUnendedData is the data of a call-unended event
// (call-unended.v1.schema.json): the fields of a call-completed event, with
// CallEnd zero (null on the wire), TalkMs 0 and Update false, plus
// EndReported, always false, and LastSeen.
type CallUnendedData struct {
	CallCompletedData
	// EndReported is false: CC-CMS never reported the call's end.
	EndReported bool `json:"endReported"`
	// LastSeen is when callpub last read the call still without an end.
	LastSeen Timestamp `json:"lastSeen"`
}

// unendedTime is an unended call's event time: the latest time it has,
// callBegin, else ackBegin, else waitBegin, else logDate; zero if none.
func unendedTime(c Call) time.Time {
	for _, t := range []time.Time{c.CallBegin, c.AckBegin, c.WaitBegin, c.LogDate} {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// validateUnended checks a call and its last sighting for a call-unended
// event: the identity validateCall checks, no end, some time to date the
// event with, and a last sighting.
func validateUnended(c Call, lastSeen time.Time) error {
	switch err := validateIdentity(c); {
	case err != nil:
		return err
	case !c.CallEnd.IsZero():
		return &FieldError{"callEnd", "present: the call completed (encode it with Completed)"}
	case unendedTime(c).IsZero():
		return &FieldError{"callBegin", "absent, and so are ackBegin, waitBegin and logDate: nothing dates the call"}
	case lastSeen.IsZero():
		return &FieldError{"lastSeen", "absent"}
	}
	return nil
}

// Unended encodes a call whose end was never reported: h is Hash of a call
// with CallEnd zero, lastSeen when callpub last read it without an end. The
// data is that of Completed with callEnd null (answered, waitMs and talkMs
// come from what is known: without an end, talkMs is 0, and so is waitMs
// unless the call was answered), endReported false and lastSeen. The event
// time is the call's latest time (callBegin, else ackBegin, else waitBegin,
// else logDate), the subject its callId and the id its UnendedEventID. A call
// with CallEnd set, none of those four times, or a zero lastSeen is refused
// with a *FieldError, and so is one Completed would refuse for its identity.
func (e *Encoder) Unended(h HashedCall, lastSeen time.Time) (Event, error) {
	c := h.Call
	if err := validateUnended(c, lastSeen); err != nil {
		return Event{}, err
	}
	d := CallUnendedData{CallCompletedData: e.callData(h, false), LastSeen: Timestamp{normaliseTime(lastSeen)}}
	data, err := json.Marshal(d)
	if err != nil {
		return Event{}, fmt.Errorf("encode unended call %s: %w", c.CallID, err)
	}
	return Event{
		SpecVersion:     SpecVersion,
		ID:              UnendedEventID(c.CCID, c.VDN, c.Inbound, c.CallID),
		Source:          e.source(c.CCID, c.VDN),
		Type:            TypeCallUnended,
		Subject:         c.CallID,
		Time:            unendedTime(c),
		DataContentType: DataContentType,
		DataSchema:      SchemaCallUnended,
		PartitionKey:    strconv.Itoa(c.VDN),
		Data:            data,
	}, nil
}

// checkUnended checks a call-unended event: its key, subject is callId, time
// is the call's latest time and id is its UnendedEventID. The schema has
// already checked that callEnd is null and endReported false.
func checkUnended(head eventHead, d eventData) error {
	if err := checkCallSubject(head, d); err != nil {
		return err
	}
	c := Call{WaitBegin: d.WaitBegin.Time, AckBegin: d.AckBegin.Time, CallBegin: d.CallBegin.Time, LogDate: d.LogDate.Time}
	at := unendedTime(c)
	if at.IsZero() {
		return fmt.Errorf("data has none of callBegin, ackBegin, waitBegin and logDate to date the call")
	}
	if want := FormatTime(at); head.Time != want {
		return fmt.Errorf("time %s is not the call's latest time %s", head.Time, want)
	}
	if want := UnendedEventID(d.CCID, d.VDN, d.Direction == "inbound", d.CallID); head.ID != want {
		return fmt.Errorf("id is not the unended id of the call (want %s)", want)
	}
	return nil
}
