package ccms

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/callpub/callpub/schemas"
)

// Query is one page of one stream's window.
type Query struct {
	schemas.Stream
	// Begin and End are both INCLUSIVE and sent with millisecond precision
	// (anything finer is truncated).
	Begin, End    time.Time
	Limit, Offset int
}

func (q Query) String() string {
	return fmt.Sprintf("%s [%s, %s] offset %d limit %d", q.Key(),
		q.Begin.UTC().Format(time.RFC3339Nano), q.End.UTC().Format(time.RFC3339Nano), q.Offset, q.Limit)
}

// AllowedRange is the span the API accepts at now: from 00:00:00 of the
// previous day to 23:59:59.999 of the current day, both in loc and both
// inclusive. Days are built with time.Date, so 23- and 25-hour days are right.
func AllowedRange(now time.Time, loc *time.Location) (earliest, latest time.Time) {
	n := now.In(loc)
	y, m, d := n.Date()
	earliest = time.Date(y, m, d-1, 0, 0, 0, 0, loc)
	latest = time.Date(y, m, d+1, 0, 0, 0, 0, loc).Add(-time.Millisecond)
	return earliest, latest
}

// DayBoundary says whose midnights bound the API's allowed range
// (ccms-api.md A10: the documentation is ambiguous between UTC and the
// tenant's zone).
type DayBoundary string

const (
	// BoundaryBoth takes, at every instant, the later of the two earliest
	// bounds and the earlier of the two latest: valid under either reading.
	// The default.
	BoundaryBoth DayBoundary = "both"
	// BoundaryTenant uses the days of the configured zone only.
	BoundaryTenant DayBoundary = "tenant"
	// BoundaryUTC uses UTC days only.
	BoundaryUTC DayBoundary = "utc"
	// BoundaryAuto asks the server which midnight bounds its range
	// (Client.ProbeBoundary, run at start and daily by the service) and uses
	// the answer; until there is one it is BoundaryBoth.
	BoundaryAuto DayBoundary = "auto"
)

// Reach is the rule for the API's allowed range: the days of Loc, of UTC, or
// both at once. The zero value is both in UTC, which is plain UTC.
type Reach struct {
	Loc      *time.Location // the tenant's zone; nil means UTC
	Boundary DayBoundary    // as configured; "" means BoundaryBoth
	// detected holds the DayBoundary a probe found, for Boundary auto. It
	// is shared by every copy of a client's Reach, so the poller, the
	// retention loop and the client itself switch together.
	detected *atomic.Value
}

// Mode is the rule in force: Boundary, or for auto the boundary detected
// (BoundaryBoth until one is).
func (r Reach) Mode() DayBoundary {
	if r.Boundary != BoundaryAuto {
		return cmp.Or(r.Boundary, BoundaryBoth)
	}
	if r.detected != nil {
		if b, _ := r.detected.Load().(DayBoundary); b != "" {
			return b
		}
	}
	return BoundaryBoth
}

// Widest is the earliest instant the API may still hold at now under any
// reading of A10: the earlier of the tenant's and UTC's 00:00 of yesterday.
func (r Reach) Widest(now time.Time) time.Time {
	e1, _ := AllowedRange(now, r.loc())
	e2, _ := AllowedRange(now, time.UTC)
	if e2.Before(e1) {
		return e2
	}
	return e1
}

func (r Reach) loc() *time.Location {
	if r.Loc == nil {
		return time.UTC
	}
	return r.Loc
}

// Range is the span the API accepts at now under r, both ends inclusive.
func (r Reach) Range(now time.Time) (earliest, latest time.Time) {
	switch r.Mode() {
	case BoundaryTenant:
		return AllowedRange(now, r.loc())
	case BoundaryUTC:
		return AllowedRange(now, time.UTC)
	}
	e1, l1 := AllowedRange(now, r.loc())
	e2, l2 := AllowedRange(now, time.UTC)
	if e2.After(e1) {
		e1 = e2
	}
	if l2.Before(l1) {
		l1 = l2
	}
	return e1, l1
}

// LostAt is the first instant at which the earliest bound has passed w: from
// then on the API no longer returns w.
func (r Reach) LostAt(w time.Time) time.Time {
	lost := func(loc *time.Location) time.Time {
		t := w.In(loc)
		return time.Date(t.Year(), t.Month(), t.Day()+2, 0, 0, 0, 0, loc)
	}
	switch r.Mode() {
	case BoundaryTenant:
		return lost(r.loc())
	case BoundaryUTC:
		return lost(time.UTC)
	}
	a, b := lost(r.loc()), lost(time.UTC)
	if b.Before(a) {
		return b
	}
	return a
}

// describe names the rule for error messages.
func (r Reach) describe() string {
	switch r.Mode() {
	case BoundaryTenant:
		return "days in " + r.loc().String()
	case BoundaryUTC:
		return "days in UTC"
	}
	if r.loc() == time.UTC || r.loc().String() == "UTC" {
		return "days in UTC"
	}
	return "days in both " + r.loc().String() + " and UTC"
}

// validate checks q against the documented request rules at now.
func (q Query) validate(now time.Time, reach Reach) error {
	begin, end := q.Begin.Truncate(time.Millisecond), q.End.Truncate(time.Millisecond)
	loc := reach.loc()
	earliest, latest := reach.Range(now)
	const layout = "2006-01-02 15:04:05.000 MST"
	switch {
	case q.CCID < 1 || q.CCID > 65535:
		return &ValidationError{Field: "ccId", Reason: fmt.Sprintf("must be 1..65535, got %d", q.CCID)}
	case q.VDN < 1 || q.VDN > 5000:
		return &ValidationError{Field: "vdn", Reason: fmt.Sprintf("must be 1..5000, got %d", q.VDN)}
	case q.Limit < 1 || q.Limit > 100:
		return &ValidationError{Field: "limit", Reason: fmt.Sprintf("must be 1..100, got %d", q.Limit)}
	case q.Offset < 0:
		return &ValidationError{Field: "offset", Reason: fmt.Sprintf("must be >= 0, got %d", q.Offset)}
	case q.Begin.IsZero():
		return &ValidationError{Field: "beginDate", Reason: "missing"}
	case q.End.IsZero():
		return &ValidationError{Field: "endDate", Reason: "missing"}
	case end.Before(begin):
		return &ValidationError{Field: "endDate", Reason: fmt.Sprintf("%s is before beginDate %s",
			end.In(loc).Format(layout), begin.In(loc).Format(layout))}
	case begin.Before(earliest):
		return &ValidationError{Field: "beginDate", Reason: fmt.Sprintf(
			"%s is before the API's earliest %s (00:00:00 of yesterday, %s); that data is out of reach",
			begin.In(loc).Format(layout), earliest.In(loc).Format(layout), reach.describe())}
	case end.After(latest):
		return &ValidationError{Field: "endDate", Reason: fmt.Sprintf(
			"%s is after the API's latest %s (23:59:59 of today, %s)",
			end.In(loc).Format(layout), latest.In(loc).Format(layout), reach.describe())}
	}
	return nil
}

// requestBody is the wire form of a query. Field order is the documented
// example's order; dates are epoch milliseconds, isCallIn is a string.
type requestBody struct {
	CCID      int             `json:"ccId"`
	VDN       int             `json:"vdn"`
	BeginDate json.RawMessage `json:"beginDate"`
	EndDate   json.RawMessage `json:"endDate"`
	IsCallIn  string          `json:"isCallIn"`
	Limit     int             `json:"limit"`
	Offset    int             `json:"offset"`
}

// body marshals q once; these bytes are signed and sent.
func (q Query) body(datesAsStrings bool) ([]byte, error) {
	date := func(t time.Time) json.RawMessage {
		s := strconv.FormatInt(t.UnixMilli(), 10)
		if datesAsStrings {
			s = `"` + s + `"`
		}
		return json.RawMessage(s)
	}
	return json.Marshal(requestBody{
		CCID:      q.CCID,
		VDN:       q.VDN,
		BeginDate: date(q.Begin),
		EndDate:   date(q.End),
		IsCallIn:  strconv.FormatBool(q.Inbound()),
		Limit:     q.Limit,
		Offset:    q.Offset,
	})
}
