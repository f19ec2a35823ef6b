package ccmssim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// query is one validated querycalls request.
type query struct {
	ccID, vdn          int
	inbound            bool
	begin, end         int64 // epoch ms, both inclusive
	limit              int   // 0: no limit sent, all rows from offset
	offset             int
	callerNo, calleeNo string
}

// paramError is a broken request rule: HTTP 200, resultCode 0100002.
type paramError struct{ desc string }

func (e *paramError) Error() string { return e.desc }

func invalid(format string, args ...any) *paramError {
	return &paramError{"Invalid parameter: " + fmt.Sprintf(format, args...)}
}

// checkRequest enforces the documented rules on method, headers and body.
// now and loc place "yesterday" and "today".
func (s *settings) checkRequest(r *http.Request, body []byte, now time.Time) (query, *paramError) {
	if r.Method != http.MethodPost {
		return query{}, invalid("method %s not supported, use POST", r.Method)
	}
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return query{}, err
	}
	q, perr := decodeQuery(body)
	if perr != nil {
		return q, perr
	}
	switch {
	case q.ccID != s.ccID:
		return q, invalid("ccId %d is not this call center", q.ccID)
	case q.vdn > s.vdns:
		return q, invalid("vdn %d does not exist (VDNs 1..%d)", q.vdn, s.vdns)
	}
	earliest, latest := allowedRange(now, s.loc)
	switch {
	case q.begin < earliest.UnixMilli():
		return q, invalid("beginDate %d is before 00:00:00 of the previous day (%d)", q.begin, earliest.UnixMilli())
	case q.end > latest.UnixMilli():
		return q, invalid("endDate %d is after 23:59:59 of the current day (%d)", q.end, latest.UnixMilli())
	}
	return q, nil
}

// allowedRange is 00:00:00.000 of yesterday to 23:59:59.999 of today in loc.
// time.Date normalises, so 23- and 25-hour days come out right.
func allowedRange(now time.Time, loc *time.Location) (earliest, latest time.Time) {
	y, m, d := now.In(loc).Date()
	earliest = time.Date(y, m, d-1, 0, 0, 0, 0, loc)
	latest = time.Date(y, m, d+1, 0, 0, 0, 0, loc).Add(-time.Millisecond)
	return earliest, latest
}

func checkContentType(v string) *paramError {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || mt != "application/json" {
		return invalid("Content-Type %q is not application/json; charset=UTF-8", v)
	}
	if cs, ok := params["charset"]; !ok || !strings.EqualFold(cs, "utf-8") {
		return invalid("Content-Type %q lacks charset=UTF-8", v)
	}
	return nil
}

// decodeQuery decodes and checks the body on its own. Integers must be JSON
// integers; the dates may also be numeric strings (the real server is
// lenient there); isCallIn must be the JSON string "true" or "false".
func decodeQuery(body []byte) (query, *paramError) {
	var q query
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return q, invalid("body is not a JSON object")
	}
	var perr *paramError
	integer := func(name string, required bool, lo, hi int64) (int64, bool) {
		raw, ok := present(fields, name)
		if !ok {
			if required && perr == nil {
				perr = invalid("%s is required", name)
			}
			return 0, false
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil && perr == nil {
			perr = invalid("%s must be an integer", name)
		}
		if err == nil && (n < lo || n > hi) && perr == nil {
			perr = invalid("%s %d outside %d..%d", name, n, lo, hi)
		}
		return n, true
	}
	date := func(name string) int64 {
		raw, ok := present(fields, name)
		if !ok {
			if perr == nil {
				perr = invalid("%s is required", name)
			}
			return 0
		}
		text := string(raw)
		if len(raw) > 0 && raw[0] == '"' {
			if err := json.Unmarshal(raw, &text); err != nil {
				text = "?"
			}
		}
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil && perr == nil {
			perr = invalid("%s must be epoch milliseconds", name)
		}
		return n
	}
	number := func(name string) string {
		raw, ok := present(fields, name)
		if !ok {
			return ""
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			if perr == nil {
				perr = invalid("%s must be a string", name)
			}
			return ""
		}
		if len(v) > 32 || strings.Trim(v, "0123456789") != "" {
			if perr == nil {
				perr = invalid("%s must be digits only", name)
			}
		}
		return v
	}

	ccID, _ := integer("ccId", true, 1, 65535)
	vdn, _ := integer("vdn", true, 1, 5000)
	q.ccID, q.vdn = int(ccID), int(vdn)
	q.callerNo = number("callerNo")
	q.calleeNo = number("calleeNo")
	q.begin = date("beginDate")
	q.end = date("endDate")
	switch raw, ok := present(fields, "isCallIn"); {
	case !ok:
		if perr == nil {
			perr = invalid("isCallIn is required")
		}
	case bytes.Equal(raw, []byte(`"true"`)):
		q.inbound = true
	case bytes.Equal(raw, []byte(`"false"`)):
	default:
		if perr == nil {
			perr = invalid(`isCallIn must be the string "true" or "false"`)
		}
	}
	limit, _ := integer("limit", false, 1, 100)
	offset, _ := integer("offset", false, 0, 1<<31-1)
	q.limit, q.offset = int(limit), int(offset)
	if perr == nil && q.begin > q.end {
		perr = invalid("beginDate %d is after endDate %d", q.begin, q.end)
	}
	return q, perr
}

// present returns a field's raw value; a missing field and null are absent.
func present(fields map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	raw, ok := fields[name]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return nil, false
	}
	return bytes.TrimSpace(raw), true
}
