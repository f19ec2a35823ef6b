package poller

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/callpub/callpub/schemas"
)

// Direction is a stream's call direction (schemas.Direction).
type Direction = schemas.Direction

const (
	In  = schemas.In  // isCallIn "true": inbound calls
	Out = schemas.Out // isCallIn "false": outbound calls
)

// Stream is one unit of polling (schemas.Stream): one VDN of one call
// center in one direction. Each stream has its own cursor, pending calls and
// schedule.
type Stream = schemas.Stream

// VDNSet is a sorted list of VDN ids, configured as ranges: "1-200,305".
type VDNSet []int

// UnmarshalText parses "1-200,305" (ranges inclusive, VDNs 1..5000, no duplicates).
func (v *VDNSet) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return errors.New("empty VDN list")
	}
	seen := map[int]bool{}
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		if err != nil {
			return fmt.Errorf("%q is not a VDN or a range like 1-200", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
				return fmt.Errorf("%q is not a VDN or a range like 1-200", part)
			}
		}
		if a < 1 || b > 5000 || a > b {
			return fmt.Errorf("%q: VDNs are 1..5000 and a range goes low-high", part)
		}
		for n := a; n <= b; n++ {
			if seen[n] {
				return fmt.Errorf("VDN %d is listed twice", n)
			}
			seen[n] = true
			out = append(out, n)
		}
	}
	slices.Sort(out)
	*v = out
	return nil
}

// String renders the set compactly as ranges.
func (v VDNSet) String() string {
	var b strings.Builder
	for i := 0; i < len(v); {
		j := i
		for j+1 < len(v) && v[j+1] == v[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j == i {
			fmt.Fprintf(&b, "%d", v[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", v[i], v[j])
		}
		i = j + 1
	}
	return b.String()
}

// Directions is the configured set of directions: "in,out", "in" or "out".
type Directions []Direction

// UnmarshalText parses a comma-separated list of in/out.
func (d *Directions) UnmarshalText(b []byte) error {
	var out Directions
	for part := range strings.SplitSeq(string(b), ",") {
		switch p := Direction(strings.TrimSpace(strings.ToLower(part))); p {
		case In, Out:
			if slices.Contains(out, p) {
				return fmt.Errorf("direction %q is listed twice", p)
			}
			out = append(out, p)
		default:
			return fmt.Errorf("%q is not a direction: want in, out or in,out", strings.TrimSpace(part))
		}
	}
	*d = out
	return nil
}

// Streams lists every stream of the configuration, VDN-major.
func Streams(ccID int, vdns VDNSet, dirs Directions) []Stream {
	out := make([]Stream, 0, len(vdns)*len(dirs))
	for _, v := range vdns {
		for _, d := range dirs {
			out = append(out, Stream{CCID: ccID, VDN: v, Dir: d})
		}
	}
	return out
}
