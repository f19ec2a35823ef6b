package ccmssim

import (
	"fmt"
	"slices"
	"strings"
)

// PoisonKind is one kind of unusable row the simulator can slip into a page
// (Faults.Poison). Each is a row a client must quarantine on its own while it
// keeps the good rows around it.
type PoisonKind string

// Poison kinds. Every poison row but a null one carries the phone numbers of
// the good row it follows, so a client's log lines can be checked for them.
const (
	PoisonNull          PoisonKind = "null"            // the row is JSON null
	PoisonNotObject     PoisonKind = "not-object"      // the row is a JSON string: the caller's number
	PoisonNoCallID      PoisonKind = "no-call-id"      // no callId field
	PoisonEmptyCallID   PoisonKind = "empty-call-id"   // callId ""
	PoisonLongCallID    PoisonKind = "long-call-id"    // a callId of 1100 bytes (a store keys calls by callId)
	PoisonTimeNotNumber PoisonKind = "time-not-number" // callEnd "unknown"
	PoisonNegativeTime  PoisonKind = "negative-time"   // callEnd -1
	PoisonLateTime      PoisonKind = "late-time"       // logDate after the year 9999
	PoisonBigCode       PoisonKind = "big-code"        // mediaType 4294967296, beyond 32 bits
)

// PoisonKinds lists every kind.
var PoisonKinds = []PoisonKind{PoisonNull, PoisonNotObject, PoisonNoCallID, PoisonEmptyCallID, PoisonLongCallID,
	PoisonTimeNotNumber, PoisonNegativeTime, PoisonLateTime, PoisonBigCode}

// poisonIDSuffix ends the callId of a poison row that has one: poison rows
// never share an id with a call.
const poisonIDSuffix = "-poison"

func checkPoison(f Faults) error {
	if f.PoisonKind != "" && !slices.Contains(PoisonKinds, f.PoisonKind) {
		return fmt.Errorf("ccmssim: unknown poison kind %q (want one of %v)", f.PoisonKind, PoisonKinds)
	}
	if f.Poison < 0 || f.Poison > 1 {
		return fmt.Errorf("ccmssim: poison share %v outside 0..1", f.Poison)
	}
	return nil
}

// entry is one row of a listing: a good row, or (poison set) the poison row
// that follows that good row.
type entry struct {
	row
	poison PoisonKind
}

// listing is the rows of a query with the poison rows of f slipped in. Which
// rows are followed by one, and of which kind, is a pure function of (Seed,
// callId), so the listing is stable from page to page.
func (s *settings) listing(rows []row, f Faults) []entry {
	out := make([]entry, 0, len(rows))
	for _, r := range rows {
		out = append(out, entry{row: r})
		if f.Poison <= 0 {
			continue
		}
		h := mix(s.seed ^ hashString(r.c.id) ^ 0x9015)
		if unit(h) >= f.Poison {
			continue
		}
		kind := f.PoisonKind
		if !slices.Contains(PoisonKinds, kind) { // "", or unknown through SetFaults: every kind in turn
			kind = PoisonKinds[mix(h)%uint64(len(PoisonKinds))]
		}
		out = append(out, entry{row: r, poison: kind})
	}
	return out
}

// hashString is FNV-1a.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// appendEntry writes a good row, or the poison row that follows it: the good
// row's JSON with its id made a poison id and one field broken.
func appendEntry(b []byte, e entry, vdn int, asStrings bool) []byte {
	switch e.poison {
	case "":
		return appendRow(b, e.row, vdn, asStrings)
	case PoisonNull:
		return append(b, "null"...)
	case PoisonNotObject:
		return appendString(b, e.c.callerNo)
	}
	good := string(appendRow(nil, e.row, vdn, asStrings))
	id := string(appendString(nil, e.c.id))
	poisonID := string(appendString(nil, e.c.id+poisonIDSuffix))
	row := strings.Replace(good, `"callId":`+id, `"callId":`+poisonID, 1)
	switch e.poison {
	case PoisonNoCallID:
		row = strings.Replace(row, `,"callId":`+poisonID, "", 1)
	case PoisonEmptyCallID:
		row = strings.Replace(row, `"callId":`+poisonID, `"callId":""`, 1)
	case PoisonLongCallID:
		long := string(appendString(nil, e.c.id+"-"+strings.Repeat("x", 1100)+poisonIDSuffix))
		row = strings.Replace(row, `"callId":`+poisonID, `"callId":`+long, 1)
	case PoisonTimeNotNumber:
		row = replaceField(row, "callEnd", `"unknown"`)
	case PoisonNegativeTime:
		row = replaceField(row, "callEnd", "-1")
	case PoisonLateTime:
		row = replaceField(row, "logDate", "253402300800000")
	case PoisonBigCode:
		row = replaceField(row, "mediaType", "4294967296")
	}
	return append(b, row...)
}

// replaceField sets the value of a number field of a row written by
// appendRow (a number or a numeric string, followed by ',' or '}').
func replaceField(row, name, value string) string {
	key := `"` + name + `":`
	i := strings.Index(row, key)
	if i < 0 {
		return row
	}
	start := i + len(key)
	end := start + strings.IndexAny(row[start:], ",}")
	return row[:start] + value + row[end:]
}
