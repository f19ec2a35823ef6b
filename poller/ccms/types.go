package ccms

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// resultOK is the success resultCode.
const resultOK = "0100000"

// Page is one decoded success response.
type Page struct {
	Calls []Call
	// Count is the server's total for the query ("number of data records that
	// can be queried"), the base of paging. 0 when HasCount is false.
	Count    int
	HasCount bool // the response carried a count
}

// Call is one row of resultDesc.data. Coded fields keep their raw integers
// (0 when absent); times are zero when absent or 0, otherwise in the client's
// Location.
type Call struct {
	CallID, CallerNo, CalleeNo                          string
	VDN, CallType, LeaveReason, MediaType, SubMediaType int
	LogDate, WaitBegin, AckBegin, CallBegin, CallEnd    time.Time
}

// Completed reports whether the call has ended (callEnd is set).
func (c Call) Completed() bool { return !c.CallEnd.IsZero() }

// maxMillis is 9999-12-31T23:59:59.999Z: later timestamps are rejected so that
// every decoded time can be written as RFC 3339.
const maxMillis = 253402300799999

// flexInt is a JSON integer that may arrive as a number or a numeric string.
// null and "" are absent (set=false).
type flexInt struct {
	v   int64
	set bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	*f = flexInt{}
	if len(b) == 0 {
		return errors.New("empty value")
	}
	switch b[0] {
	case 'n':
		if string(b) == "null" {
			return nil
		}
	case '"':
		inner, ok := unquoteBytes(b)
		if !ok {
			var s string
			if err := json.Unmarshal(b, &s); err != nil {
				return err
			}
			inner = []byte(s)
		}
		inner = bytes.TrimSpace(inner)
		if len(inner) == 0 {
			return nil
		}
		return f.parse(inner, b)
	default:
		if b[0] == '-' || '0' <= b[0] && b[0] <= '9' {
			return f.parse(b, b)
		}
	}
	return fmt.Errorf("want a number or numeric string, got %.40s", b)
}

func (f *flexInt) parse(s, raw []byte) error {
	if v, ok := parseDigits(s); ok {
		*f = flexInt{v: v, set: true}
		return nil
	}
	if v, err := strconv.ParseInt(string(s), 10, 64); err == nil {
		*f = flexInt{v: v, set: true}
		return nil
	}
	// 1.615717765e12 or 5.0: accept integral values that fit.
	x, err := strconv.ParseFloat(string(s), 64)
	if err != nil || x != math.Trunc(x) || math.Abs(x) > 1<<53 {
		return fmt.Errorf("want an integer, got %.40s", raw)
	}
	*f = flexInt{v: int64(x), set: true}
	return nil
}

// parseDigits is the allocation-free fast path: an optional '-' and 1 to 18
// decimal digits.
func parseDigits(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// int returns the value as an int code, rejecting values beyond int32.
func (f flexInt) int(field string) (int, error) {
	if f.v < math.MinInt32 || f.v > math.MaxInt32 {
		return 0, fmt.Errorf("%s %d out of range", field, f.v)
	}
	return int(f.v), nil
}

// time converts epoch milliseconds; 0 and absent give the zero time.
func (f flexInt) time(field string, loc *time.Location) (time.Time, error) {
	switch {
	case !f.set || f.v == 0:
		return time.Time{}, nil
	case f.v < 0 || f.v > maxMillis:
		return time.Time{}, fmt.Errorf("%s %d is not a plausible epoch-millisecond time", field, f.v)
	}
	return time.UnixMilli(f.v).In(loc), nil
}

// flexString is a JSON string that may arrive as a number (kept as its
// literal text). null is "".
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	if len(b) == 0 {
		return errors.New("empty value")
	}
	switch b[0] {
	case 'n':
		if string(b) == "null" {
			*f = ""
			return nil
		}
	case '"':
		if inner, ok := unquoteBytes(b); ok {
			*f = flexString(inner)
			return nil
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	default:
		if b[0] == '-' || '0' <= b[0] && b[0] <= '9' {
			*f = flexString(b)
			return nil
		}
	}
	return fmt.Errorf("want a string, got %.40s", b)
}

// unquoteBytes returns the inside of a JSON string without escapes; ok is
// false when the string has escapes (or is not a string).
func unquoteBytes(b []byte) ([]byte, bool) {
	if len(b) < 2 || b[len(b)-1] != '"' {
		return nil, false
	}
	inner := b[1 : len(b)-1]
	if bytes.IndexByte(inner, '\\') >= 0 {
		return nil, false
	}
	return inner, true
}

// wire types of the response.
type wireResponse struct {
	ResultCode flexString      `json:"resultCode"`
	ResultDesc json.RawMessage `json:"resultDesc"`
}

type wireDesc struct {
	Data  []*wireCall `json:"data"`
	Count flexInt     `json:"count"`
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

// decodeResponse decodes an HTTP 200 body. A failure resultCode is a
// *ResultError; anything that cannot be decoded, or breaks Page's invariants,
// is a *DecodeError carrying status and an excerpt.
func decodeResponse(status int, body []byte, loc *time.Location) (Page, error) {
	fail := func(err error) (Page, error) {
		return Page{}, &DecodeError{Status: status, Excerpt: excerpt(body), Err: err}
	}
	var r wireResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return fail(err)
	}
	code := string(r.ResultCode)
	if code == "" {
		return fail(errors.New("no resultCode"))
	}
	if len(code) < 7 && isDigits(code) { // a number that lost its leading zeros
		code = fmt.Sprintf("%07s", code)
	}
	desc := bytes.TrimSpace(r.ResultDesc)
	if code != resultOK {
		return Page{}, &ResultError{Code: code, Desc: descText(desc)}
	}
	if len(desc) == 0 || string(desc) == "null" || string(desc) == `""` {
		return Page{}, nil // success with nothing in it
	}
	if desc[0] != '{' {
		return fail(fmt.Errorf("resultDesc of a success is not an object: %.40s", desc))
	}
	var d wireDesc
	if err := json.Unmarshal(desc, &d); err != nil {
		return fail(fmt.Errorf("resultDesc: %w", err))
	}
	p := Page{Calls: make([]Call, 0, len(d.Data))}
	if d.Count.set {
		if d.Count.v < 0 || d.Count.v > math.MaxInt32 {
			return fail(fmt.Errorf("count %d out of range", d.Count.v))
		}
		p.Count, p.HasCount = int(d.Count.v), true
	}
	for i, w := range d.Data {
		if w == nil {
			continue
		}
		c, err := w.call(loc)
		if err != nil {
			return fail(fmt.Errorf("data[%d]: %w", i, err))
		}
		p.Calls = append(p.Calls, c)
	}
	return p, nil
}

func (w *wireCall) call(loc *time.Location) (Call, error) {
	c := Call{CallID: string(w.CallID), CallerNo: string(w.CallerNo), CalleeNo: string(w.CalleeNo)}
	if c.CallID == "" {
		return Call{}, errors.New("no callId")
	}
	var err error
	code := func(f flexInt, name string) int {
		v, e := f.int(name)
		if err == nil {
			err = e
		}
		return v
	}
	at := func(f flexInt, name string) time.Time {
		v, e := f.time(name, loc)
		if err == nil {
			err = e
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
	if err != nil {
		return Call{}, fmt.Errorf("callId %q: %w", c.CallID, err)
	}
	return c, nil
}

// descText renders a failure's resultDesc: a string as is, anything else as a
// short excerpt of its JSON.
func descText(raw []byte) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return excerpt([]byte(s))
	}
	return excerpt(raw)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
