package ccms

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MaxCallIDBytes is the longest callId a row may carry. The store keys calls
// by callId, and bbolt keys are bounded; a longer callId is a bad row.
const MaxCallIDBytes = 1024

// BadRow is one row of a page that could not become a Call.
type BadRow struct {
	// Raw is the row's JSON as received. It may hold phone numbers: treat it
	// with the phone-number policy before it leaves the process.
	Raw json.RawMessage
	// Reason says why the row is unusable. It names the field at fault, never
	// its value, and the callId only when it is short and printable, so it
	// can be logged.
	Reason string
}

type wireCall struct {
	LogDate      flexInt    `json:"logDate"`
	CallerNo     flexString `json:"callerNo"`
	CalleeNo     flexString `json:"calleeNo"`
	CallID       flexString `json:"callId"`
	CallType     flexInt    `json:"callType"`
	WaitBegin    flexInt    `json:"waitBegin"`
	AckBegin     flexInt    `json:"ackBegin"`
	CallBegin    flexInt    `json:"callBegin"`
	CallEnd      flexInt    `json:"callEnd"`
	VDN          flexInt    `json:"vdn"`
	LeaveReason  flexInt    `json:"leaveReason"`
	MediaType    flexInt    `json:"mediaType"`
	SubMediaType flexInt    `json:"subMediaType"`
}

// decodeRows decodes resultDesc.data row by row: a row that cannot become a
// Call is a BadRow, and the rows around it are kept.
func decodeRows(data []json.RawMessage, loc *time.Location) (calls []Call, bad []BadRow) {
	calls = make([]Call, 0, len(data))
	for _, raw := range data {
		c, reason := decodeRow(raw, loc)
		if reason != "" {
			bad = append(bad, BadRow{Raw: raw, Reason: reason})
			continue
		}
		calls = append(calls, c)
	}
	return calls, bad
}

// decodeRow decodes one row; a non-empty reason says why it is unusable.
func decodeRow(raw json.RawMessage, loc *time.Location) (Call, string) {
	if len(raw) == 0 || raw[0] != '{' {
		return Call{}, "row is " + jsonKind(raw) + ", not an object"
	}
	var w wireCall
	if err := json.Unmarshal(raw, &w); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			want := "an integer"
			if te.Type == stringType {
				want = "a string"
			}
			return Call{}, fmt.Sprintf("%s is %s, want %s", te.Field, te.Value, want)
		}
		return Call{}, "row does not decode" // never err: it may quote the row
	}
	return w.call(loc)
}

// call checks a decoded row and converts it; a non-empty reason says why the
// row is unusable.
func (w *wireCall) call(loc *time.Location) (Call, string) {
	c := Call{CallID: string(w.CallID), CallerNo: string(w.CallerNo), CalleeNo: string(w.CalleeNo)}
	switch {
	case c.CallID == "":
		return Call{}, "no callId"
	case len(c.CallID) > MaxCallIDBytes:
		return Call{}, fmt.Sprintf("callId is longer than %d bytes (the store keys calls by callId, and bbolt keys are bounded)", MaxCallIDBytes)
	}
	var problem string
	code := func(f flexInt, name string) int {
		v, ok := f.int()
		if !ok && problem == "" {
			problem = name + " does not fit 32 bits"
		}
		return v
	}
	at := func(f flexInt, name string) time.Time {
		v, p := f.time(loc)
		if p != "" && problem == "" {
			problem = name + " " + p
		}
		return v
	}
	c.VDN = code(w.VDN, "vdn")
	c.CallType = code(w.CallType, "callType")
	c.LeaveReason = code(w.LeaveReason, "leaveReason")
	c.MediaType = code(w.MediaType, "mediaType")
	c.SubMediaType = code(w.SubMediaType, "subMediaType")
	c.LogDate = at(w.LogDate, "logDate")
	c.WaitBegin = at(w.WaitBegin, "waitBegin")
	c.AckBegin = at(w.AckBegin, "ackBegin")
	c.CallBegin = at(w.CallBegin, "callBegin")
	c.CallEnd = at(w.CallEnd, "callEnd")
	if problem != "" {
		if name := nameCallID(c.CallID, c.CallerNo, c.CalleeNo); name != "" {
			return Call{}, "callId " + name + ": " + problem
		}
		return Call{}, problem
	}
	return c, ""
}

// nameCallID quotes a callId for a reason or an error when it is short and
// printable and holds neither phone number; otherwise it returns "".
func nameCallID(id string, phones ...string) string {
	if id == "" || len(id) > 40 {
		return ""
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || strings.IndexByte("-_.:", c) >= 0) {
			return ""
		}
	}
	for _, p := range phones {
		if p != "" && strings.Contains(id, p) {
			return ""
		}
	}
	return `"` + id + `"`
}
