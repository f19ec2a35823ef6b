package schemas

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Call is one call as read from CC-CMS, before any policy. Zero times are
// absent (the API's 0).
type Call struct {
	CCID, VDN                                        int
	Inbound                                          bool
	CallID, CallerNo, CalleeNo                       string
	CallType, LeaveReason, MediaType, SubMediaType   int
	LogDate, WaitBegin, AckBegin, CallBegin, CallEnd time.Time
}

// CallCompletedData is the data of a call-completed event
// (call-completed.v1.schema.json). Consumers in this module (tail, state
// rebuild, tests) decode it with DecodeCallCompleted.
type CallCompletedData struct {
	CCID      int    `json:"ccId"`
	VDN       int    `json:"vdn"`
	Direction string `json:"direction"` // "inbound" or "outbound"
	CallID    string `json:"callId"`
	// Phone numbers after the policy named in NumberPolicy.
	CallerNo     string  `json:"callerNo"`
	CalleeNo     string  `json:"calleeNo"`
	NumberPolicy PIIMode `json:"numberPolicy"`

	CallType     Code `json:"callType"`
	LeaveReason  Code `json:"leaveReason"`
	MediaType    Code `json:"mediaType"`
	SubMediaType Code `json:"subMediaType"` // name only when mediaType is 53

	WaitBegin Timestamp `json:"waitBegin"`
	AckBegin  Timestamp `json:"ackBegin"`
	CallBegin Timestamp `json:"callBegin"`
	CallEnd   Timestamp `json:"callEnd"`
	LogDate   Timestamp `json:"logDate"`

	WaitMs   int64 `json:"waitMs"`
	TalkMs   int64 `json:"talkMs"`
	Answered bool  `json:"answered"`

	// Update is true when this event replaces an earlier one of the same
	// call whose content differed; its id then covers ContentHash.
	Update bool `json:"update"`
	// ContentHash is ContentHash of the call, 16 lower-case hex digits.
	ContentHash string `json:"contentHash"`
}

// FieldError says which field of a call cannot become an event.
type FieldError struct {
	Field, Reason string
}

func (e *FieldError) Error() string { return "call " + e.Field + ": " + e.Reason }

func normaliseTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Millisecond)
}

// validateIdentity checks what every call event needs: a ccId, a VDN and a
// call id in range.
func validateIdentity(c Call) error {
	switch {
	case c.CCID < 1 || c.CCID > 65535:
		return &FieldError{"ccId", fmt.Sprintf("%d is outside 1..65535", c.CCID)}
	case c.VDN < 1 || c.VDN > 5000:
		return &FieldError{"vdn", fmt.Sprintf("%d is outside 1..5000", c.VDN)}
	case c.CallID == "":
		return &FieldError{"callId", "empty"}
	}
	return nil
}

// validateCall checks a call for a call-completed event.
func validateCall(c Call) error {
	if err := validateIdentity(c); err != nil {
		return err
	}
	if c.CallEnd.IsZero() {
		return &FieldError{"callEnd", "absent: the call is not completed"}
	}
	return nil
}

// derive computes answered, waitMs and talkMs:
//   - answered: ackBegin is present (the API's "call answered" time);
//   - talkMs: when answered, callEnd minus callBegin (talk start), or minus
//     ackBegin when callBegin is absent; else 0;
//   - waitMs: from waitBegin to ackBegin when answered, to callEnd when not;
//     0 when waitBegin is absent.
//
// Negative spans (clock skew upstream) become 0.
func derive(c Call) (answered bool, waitMs, talkMs int64) {
	span := func(from, to time.Time) int64 {
		if from.IsZero() || to.IsZero() || to.Before(from) {
			return 0
		}
		return to.Sub(from).Milliseconds()
	}
	answered = !c.AckBegin.IsZero()
	if answered {
		start := c.CallBegin
		if start.IsZero() {
			start = c.AckBegin
		}
		talkMs = span(start, c.CallEnd)
		waitMs = span(c.WaitBegin, c.AckBegin)
	} else {
		waitMs = span(c.WaitBegin, c.CallEnd)
	}
	return answered, waitMs, talkMs
}

// HashedCall is a call in normal form — times in UTC at millisecond
// precision — with its ContentHash. The poller makes one per completed call
// it reads: the store records the hash and the event carries it, so both
// come from one normalisation, computed once.
type HashedCall struct {
	Call Call
	Hash uint64
}

// Hash normalises c and computes its content hash.
func Hash(c Call) HashedCall {
	for _, t := range []*time.Time{&c.LogDate, &c.WaitBegin, &c.AckBegin, &c.CallBegin, &c.CallEnd} {
		*t = normaliseTime(*t)
	}
	return HashedCall{Call: c, Hash: ContentHash(c)}
}

// CallCompleted encodes a completed call: Completed of Hash(c).
func (e *Encoder) CallCompleted(c Call, update bool) (Event, error) {
	return e.Completed(Hash(c), update)
}

// Completed encodes a completed call made by Hash. With update false the id
// is EventID of the call; with update true (a call already published, now
// with another content hash) it is UpdateEventID and data.update is true.
// The event time is callEnd.
func (e *Encoder) Completed(h HashedCall, update bool) (Event, error) {
	c, hash := h.Call, h.Hash
	if err := validateCall(c); err != nil {
		return Event{}, err
	}
	data, err := json.Marshal(e.callData(h, update))
	if err != nil {
		return Event{}, fmt.Errorf("encode call %s: %w", c.CallID, err)
	}
	id := EventID(c.CCID, c.VDN, c.Inbound, c.CallID)
	if update {
		id = UpdateEventID(c.CCID, c.VDN, c.Inbound, c.CallID, hash)
	}
	return Event{
		SpecVersion:     SpecVersion,
		ID:              id,
		Source:          e.source(c.CCID, c.VDN),
		Type:            TypeCallCompleted,
		Subject:         c.CallID,
		Time:            c.CallEnd,
		DataContentType: DataContentType,
		DataSchema:      SchemaCallCompleted,
		PartitionKey:    strconv.Itoa(c.VDN),
		Data:            data,
	}, nil
}

// callData is the data of a call event: codes with their names, phone
// numbers after the policy, times, what derive computes and the content hash.
func (e *Encoder) callData(h HashedCall, update bool) CallCompletedData {
	c := h.Call
	answered, waitMs, talkMs := derive(c)
	sub := Code{Code: c.SubMediaType}
	if c.MediaType == MediaTypeMultimedia {
		sub.Name = SubMediaTypeName(c.SubMediaType)
	}
	return CallCompletedData{
		CCID: c.CCID, VDN: c.VDN, Direction: DirectionOf(c.Inbound).Name(), CallID: c.CallID,
		CallerNo: e.applyPII(c.CallerNo), CalleeNo: e.applyPII(c.CalleeNo), NumberPolicy: e.opts.PII,
		CallType:     Code{c.CallType, CallTypeName(c.CallType)},
		LeaveReason:  Code{c.LeaveReason, LeaveReasonName(c.LeaveReason)},
		MediaType:    Code{c.MediaType, MediaTypeName(c.MediaType)},
		SubMediaType: sub,
		WaitBegin:    Timestamp{c.WaitBegin}, AckBegin: Timestamp{c.AckBegin}, CallBegin: Timestamp{c.CallBegin},
		CallEnd: Timestamp{c.CallEnd}, LogDate: Timestamp{c.LogDate},
		WaitMs: waitMs, TalkMs: talkMs, Answered: answered,
		Update: update, ContentHash: fmt.Sprintf("%016x", h.Hash),
	}
}

// DecodeCallCompleted decodes a call-completed event's value (the Kafka
// record value of a structured record) and its data: CallCompletedOf of the
// event.
func DecodeCallCompleted(value []byte) (Event, CallCompletedData, error) {
	var ev Event
	if err := json.Unmarshal(value, &ev); err != nil {
		return Event{}, CallCompletedData{}, fmt.Errorf("decode event: %w", err)
	}
	d, err := CallCompletedOf(ev)
	if err != nil {
		return Event{}, CallCompletedData{}, err
	}
	return ev, d, nil
}

// CallCompletedOf decodes the data of a call-completed event (from a record
// in either content mode, DecodeRecord). It checks the type and the shape
// the decoder relies on; Validate checks the full schema.
func CallCompletedOf(ev Event) (CallCompletedData, error) {
	if ev.Type != TypeCallCompleted {
		return CallCompletedData{}, fmt.Errorf("decode event %s: type %q is not %s", ev.ID, ev.Type, TypeCallCompleted)
	}
	var d CallCompletedData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return CallCompletedData{}, fmt.Errorf("decode event %s data: %w", ev.ID, err)
	}
	switch {
	case d.Direction != "inbound" && d.Direction != "outbound":
		return CallCompletedData{}, fmt.Errorf("decode event %s data: direction %q", ev.ID, d.Direction)
	case d.CallID == "" || d.CallEnd.IsZero():
		return CallCompletedData{}, fmt.Errorf("decode event %s data: callId or callEnd missing", ev.ID)
	}
	return d, nil
}

// Call rebuilds the call's identity and content from decoded data. Phone
// numbers are as published (after the policy), so ContentHash of the result
// equals data.ContentHash only under the plain policy.
func (d CallCompletedData) Call() Call {
	return Call{
		CCID: d.CCID, VDN: d.VDN, Inbound: d.Direction == "inbound", CallID: d.CallID,
		CallerNo: d.CallerNo, CalleeNo: d.CalleeNo,
		CallType: d.CallType.Code, LeaveReason: d.LeaveReason.Code, MediaType: d.MediaType.Code, SubMediaType: d.SubMediaType.Code,
		LogDate: d.LogDate.Time, WaitBegin: d.WaitBegin.Time, AckBegin: d.AckBegin.Time, CallBegin: d.CallBegin.Time, CallEnd: d.CallEnd.Time,
	}
}
