package schemas

import (
	"fmt"
	"strconv"
	"strings"
)

// Direction is the call direction a stream queries: CC-CMS's isCallIn.
type Direction string

const (
	In  Direction = "in"  // isCallIn "true": inbound calls
	Out Direction = "out" // isCallIn "false": outbound calls
)

// DirectionOf is In for inbound calls and Out for outbound ones.
func DirectionOf(inbound bool) Direction {
	if inbound {
		return In
	}
	return Out
}

// Inbound reports whether d is In.
func (d Direction) Inbound() bool { return d == In }

// Name is the direction as events write it: "inbound" or "outbound".
func (d Direction) Name() string {
	if d.Inbound() {
		return "inbound"
	}
	return "outbound"
}

// Stream is one unit of polling: one VDN of one call center in one
// direction. It is the identity every package shares: the poller schedules
// it, the CC-CMS client queries it, the store keys its state by Key, and
// control records name it.
type Stream struct {
	CCID int
	VDN  int
	Dir  Direction
}

// Key is the stream's identity in the store, in logs and in control records:
// "ccId/vdn/dir", e.g. "1/25/in".
func (s Stream) Key() string { return fmt.Sprintf("%d/%d/%s", s.CCID, s.VDN, s.Dir) }

func (s Stream) String() string { return s.Key() }

// Inbound reports whether the stream queries inbound calls.
func (s Stream) Inbound() bool { return s.Dir.Inbound() }

// ParseStream is the inverse of Stream.Key. It accepts only the canonical
// form: no leading zeros or signs, ccId and vdn positive, dir in or out.
func ParseStream(key string) (Stream, error) {
	parts := strings.Split(key, "/")
	if len(parts) != 3 {
		return Stream{}, fmt.Errorf("stream %q: want ccId/vdn/in|out", key)
	}
	ccID, err := strconv.Atoi(parts[0])
	if err != nil || ccID <= 0 {
		return Stream{}, fmt.Errorf("stream %q: bad ccId", key)
	}
	vdn, err := strconv.Atoi(parts[1])
	if err != nil || vdn <= 0 {
		return Stream{}, fmt.Errorf("stream %q: bad vdn", key)
	}
	s := Stream{CCID: ccID, VDN: vdn, Dir: Direction(parts[2])}
	if s.Dir != In && s.Dir != Out {
		return Stream{}, fmt.Errorf("stream %q: direction must be in or out", key)
	}
	if s.Key() != key { // "01/25/in", "+1/25/in"
		return Stream{}, fmt.Errorf("stream %q: not in canonical form", key)
	}
	return s, nil
}
