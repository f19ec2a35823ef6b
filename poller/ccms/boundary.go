package ccms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/callpub/callpub/schemas"
)

// ErrBoundaryUnknown says a probe could not tell whose midnight bounds the
// server's range; the error wrapping it says why.
var ErrBoundaryUnknown = errors.New("day boundary not detected")

// Probe is what ProbeBoundary found.
type Probe struct {
	// Mode is the boundary that reads all the server holds: the zone whose
	// 00:00 of yesterday is the earlier, when the server answers for it, the
	// other one when it refuses that instant with 0100002.
	Mode DayBoundary
	// Asked is the instant asked for: the earlier of the two readings of
	// 00:00 of yesterday. Accepted tells whether the server answered for it.
	Asked    time.Time
	Accepted bool
	// Apart is how far apart the two readings are at the time of the probe.
	Apart time.Duration
}

// ProbeBoundary answers ccms-api.md A10 for this tenant at now: is "00:00 of
// yesterday" the tenant's midnight or UTC's? It asks stream s for the first
// minute after the earlier of the two (one request, limit 1, through the
// shared budget). Answered: the zone that gives that midnight bounds the
// server's range, or the server does not check; either way that mode reads
// all it holds. Refused with 0100002: the other zone does. Any other
// outcome wraps ErrBoundaryUnknown. With a zone whose midnights are UTC's
// the modes agree and nothing is asked.
func (c *Client) ProbeBoundary(ctx context.Context, s schemas.Stream, now time.Time) (Probe, error) {
	tenant, _ := AllowedRange(now, c.reach.loc())
	utc, _ := AllowedRange(now, time.UTC)
	if tenant.Equal(utc) {
		return Probe{Mode: BoundaryTenant, Asked: tenant, Accepted: true}, nil
	}
	p := Probe{Mode: BoundaryTenant, Asked: tenant, Apart: utc.Sub(tenant).Abs()}
	other := BoundaryUTC
	if utc.Before(tenant) {
		p.Mode, p.Asked, other = BoundaryUTC, utc, BoundaryTenant
	}
	probe := *c // the same client, allowed to ask for the earlier midnight
	probe.reach = Reach{Loc: c.reach.Loc, Boundary: p.Mode}
	q := Query{Stream: s, Begin: p.Asked, End: p.Asked.Add(time.Minute - time.Millisecond), Limit: 1}
	_, err := probe.QueryCalls(ctx, q)
	var re *ResultError
	switch {
	case err == nil:
		p.Accepted = true
		return p, nil
	case errors.As(err, &re) && re.Code == "0100002":
		p.Mode = other
		return p, nil
	}
	return Probe{}, fmt.Errorf("%w: %w", ErrBoundaryUnknown, err)
}

// UseBoundary sets the boundary a probe found, for a client configured with
// BoundaryAuto: the client and every copy of its Reach use it from now on.
// It does nothing for a client configured with another mode.
func (c *Client) UseBoundary(b DayBoundary) {
	if c.reach.Boundary == BoundaryAuto && (b == BoundaryTenant || b == BoundaryUTC || b == BoundaryBoth) {
		c.reach.detected.Store(b)
	}
}
