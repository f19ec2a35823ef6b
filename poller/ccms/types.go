package ccms

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
)

// resultOK is the success resultCode.
const resultOK = "0100000"

// Page is one decoded success response.
type Page struct {
	// Calls are the rows that decoded into usable calls, in the order received.
	Calls []Call
	// Bad are the rows that could not become a Call, in the order received:
	// each was decoded on its own, so one bad row never costs its page.
	Bad []BadRow
	// Count is the server's total for the query ("number of data records that
	// can be queried"), the base of paging. 0 when HasCount is false.
	Count    int
	HasCount bool // the response carried a count
}

// rows is the number of rows the page carried, bad ones included: each
// occupied a slot of the page.
func (p Page) rows() int { return len(p.Calls) + len(p.Bad) }

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

// Same reports whether c and d are the same row: every field equal, times
// compared as instants. ReadWindow keeps a row whose callId it already holds
// only when the row is not the Same as one before it.
func (c Call) Same(d Call) bool {
	return c.CallID == d.CallID && c.CallerNo == d.CallerNo && c.CalleeNo == d.CalleeNo &&
		c.VDN == d.VDN && c.CallType == d.CallType && c.LeaveReason == d.LeaveReason &&
		c.MediaType == d.MediaType && c.SubMediaType == d.SubMediaType &&
		c.LogDate.Equal(d.LogDate) && c.WaitBegin.Equal(d.WaitBegin) && c.AckBegin.Equal(d.AckBegin) &&
		c.CallBegin.Equal(d.CallBegin) && c.CallEnd.Equal(d.CallEnd)
}

// maxMillis is 9999-12-31T23:59:59.999Z: later timestamps are rejected so that
// every decoded time can be written as RFC 3339.
const maxMillis = 253402300799999

var (
	int64Type  = reflect.TypeFor[int64]()
	stringType = reflect.TypeFor[string]()
)

// typeError is the error of a flex type: it describes the JSON value's kind,
// never the value (a row's value may be a phone number). encoding/json fills
// in the field it was decoding.
func typeError(kind string, t reflect.Type) error {
	return &json.UnmarshalTypeError{Value: kind, Type: t}
}

// flexInt is a JSON integer that may arrive as a number or a numeric string.
// null and "" are absent (set=false).
type flexInt struct {
	v   int64
	set bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	*f = flexInt{}
	if len(b) == 0 {
		return typeError("an empty value", int64Type)
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
				return typeError("a malformed string", int64Type)
			}
			inner = []byte(s)
		}
		inner = bytes.TrimSpace(inner)
		if len(inner) == 0 {
			return nil
		}
		return f.parse(inner)
	default:
		if b[0] == '-' || '0' <= b[0] && b[0] <= '9' {
			return f.parse(b)
		}
	}
	return typeError(jsonKind(b), int64Type)
}

func (f *flexInt) parse(s []byte) error {
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
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange):
		return typeError("a non-numeric string", int64Type)
	case err != nil || math.Abs(x) > 1<<53:
		return typeError("a number too large", int64Type)
	case x != math.Trunc(x):
		return typeError("a fractional number", int64Type)
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

// int returns the value as an int code; ok is false beyond int32.
func (f flexInt) int() (v int, ok bool) {
	if f.v < math.MinInt32 || f.v > math.MaxInt32 {
		return 0, false
	}
	return int(f.v), true
}

// time converts epoch milliseconds; 0 and absent give the zero time. A
// non-empty problem says what is wrong, without the value.
func (f flexInt) time(loc *time.Location) (t time.Time, problem string) {
	switch {
	case !f.set || f.v == 0:
		return time.Time{}, ""
	case f.v < 0:
		return time.Time{}, "is negative"
	case f.v > maxMillis:
		return time.Time{}, "is after the year 9999"
	}
	return time.UnixMilli(f.v).In(loc), ""
}

// flexString is a JSON string that may arrive as a number (kept as its
// literal text). null is "".
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	if len(b) == 0 {
		return typeError("an empty value", stringType)
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
			return typeError("a malformed string", stringType)
		}
		*f = flexString(s)
		return nil
	default:
		if b[0] == '-' || '0' <= b[0] && b[0] <= '9' {
			*f = flexString(b)
			return nil
		}
	}
	return typeError(jsonKind(b), stringType)
}

// jsonKind names the kind of a JSON value, for errors that must not show it.
func jsonKind(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
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
	Data  []json.RawMessage `json:"data"` // decoded row by row
	Count flexInt           `json:"count"`
}

// decodeResponse decodes an HTTP 200 body. A failure resultCode is a
// *ResultError. A body that is not JSON, or whose success resultDesc is not
// an object of rows and a count, is a *DecodeError saying what is wrong and
// where, never what the body holds. Each row is decoded on its own: a row
// that cannot become a Call is one of Page.Bad, and the rest are kept.
func decodeResponse(status int, body []byte, loc *time.Location) (Page, error) {
	var r wireResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return Page{}, bodyError(status, body, 0, err)
	}
	code := string(r.ResultCode)
	if code == "" {
		return Page{}, bodyError(status, body, 0, errors.New("no resultCode"))
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
	at := max(int64(bytes.Index(body, desc)), 0) // where resultDesc starts, for offsets in errors
	if desc[0] != '{' {
		return Page{}, bodyError(status, body, at, fmt.Errorf("resultDesc of a success is %s, not an object", jsonKind(desc)))
	}
	var d wireDesc
	if err := json.Unmarshal(desc, &d); err != nil {
		return Page{}, bodyError(status, body, at, fmt.Errorf("resultDesc: %w", err))
	}
	var p Page
	if d.Count.set {
		if d.Count.v < 0 || d.Count.v > math.MaxInt32 {
			return Page{}, bodyError(status, body, at, errors.New("count is negative or beyond 32 bits"))
		}
		p.Count, p.HasCount = int(d.Count.v), true
	}
	p.Calls, p.Bad = decodeRows(d.Data, loc)
	return p, nil
}

// descText renders a failure's resultDesc: a string as is, anything else as a
// short excerpt of its JSON; either way with every long run of digits masked,
// as it comes from an HTTP 200 body that might echo a phone number.
func descText(raw []byte) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return maskDigits(excerpt([]byte(s)))
	}
	return maskDigits(excerpt(raw))
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
