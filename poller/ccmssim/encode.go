package ccmssim

import (
	"bytes"
	"strconv"
)

// The simulator writes its JSON by hand, in the field order of the API
// page, so that it owes nothing to the client's types.

const (
	resultSuccess      = "0100000"
	resultFailed       = "0100001"
	resultInvalidParam = "0100002"
	contentTypeJSON    = "application/json;charset=UTF-8"
)

// row is one visible row of a call: completed, or still in progress.
type row struct {
	c    *call
	done bool
	ft   int64 // filter time
}

func (r row) logDate() int64 {
	if r.done {
		return r.c.logDate
	}
	return r.c.progressAt
}

func appendSuccess(b []byte, entries []entry, vdn, count int, asStrings bool) []byte {
	b = append(b, `{"resultCode":"`+resultSuccess+`","resultDesc":{"data":[`...)
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEntry(b, e, vdn, asStrings)
	}
	b = append(b, `],"count":`...)
	b = appendInt(b, int64(count), asStrings)
	return append(b, "}}"...)
}

func appendRow(b []byte, r row, vdn int, asStrings bool) []byte {
	c := r.c
	callEnd, leave := c.callEnd, c.leaveReason
	if !r.done {
		callEnd, leave = 0, 0
	}
	b = append(b, `{"logDate":`...)
	b = appendInt(b, r.logDate(), asStrings)
	b = append(b, `,"callerNo":`...)
	b = appendString(b, c.callerNo)
	b = append(b, `,"calleeNo":`...)
	b = appendString(b, c.calleeNo)
	b = append(b, `,"callId":`...)
	b = appendString(b, c.id)
	b = append(b, `,"callType":`...)
	b = appendInt(b, int64(c.callType), asStrings)
	b = append(b, `,"waitBegin":`...)
	b = appendInt(b, c.waitBegin, asStrings)
	b = append(b, `,"ackBegin":`...)
	b = appendInt(b, c.ackBegin, asStrings)
	b = append(b, `,"callBegin":`...)
	b = appendInt(b, c.callBegin, asStrings)
	b = append(b, `,"callEnd":`...)
	b = appendInt(b, callEnd, asStrings)
	b = append(b, `,"vdn":`...)
	b = appendInt(b, int64(vdn), asStrings)
	b = append(b, `,"leaveReason":`...)
	b = appendInt(b, int64(leave), asStrings)
	b = append(b, `,"mediaType":`...)
	b = appendInt(b, int64(c.mediaType), asStrings)
	b = append(b, `,"subMediaType":`...)
	b = appendInt(b, int64(c.subMediaType), asStrings)
	return append(b, '}')
}

func appendInt(b []byte, n int64, quoted bool) []byte {
	if quoted {
		b = append(b, '"')
	}
	b = strconv.AppendInt(b, n, 10)
	if quoted {
		b = append(b, '"')
	}
	return b
}

// appendString writes s as a JSON string, escaping what JSON requires.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// appendFailure is a failure answer: a resultCode with a string resultDesc.
func appendFailure(b []byte, code, desc string) []byte {
	b = append(b, `{"resultCode":`...)
	b = appendString(b, code)
	b = append(b, `,"resultDesc":`...)
	b = appendString(b, desc)
	return append(b, '}')
}

// malform breaks a success body the way the API page's own example is
// broken: the count key loses its quotes.
func malform(body []byte) []byte {
	if i := bytes.LastIndex(body, []byte(`"count":`)); i >= 0 {
		return append(append(body[:i:i], "count:"...), body[i+len(`"count":`):]...)
	}
	return append(body[:len(body)-1:len(body)-1], ",}"...)
}
