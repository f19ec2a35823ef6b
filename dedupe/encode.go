package dedupe

import (
	"encoding/binary"
	"strings"
	"time"
)

// Bucket names. Day buckets are seenPrefix + "YYYYMMDD".
var (
	bucketMeta    = []byte("meta")
	bucketCursors = []byte("cursors")
	bucketPending = []byte("pending")
	bucketGaps    = []byte("gaps")
)

const (
	seenPrefix = "seen/"
	dayLayout  = "20060102"
	// pendingSep separates stream and call id in pending keys; streams and
	// call ids never contain it.
	pendingSep = "\x00"
)

// dayName is the day (YYYYMMDD) of t in loc.
func dayName(t time.Time, loc *time.Location) string { return t.In(loc).Format(dayLayout) }

func dayBucket(day string) []byte { return []byte(seenPrefix + day) }

// isDayBucket reports whether name is a seen/YYYYMMDD bucket and returns the day.
func isDayBucket(name []byte) (string, bool) {
	s := string(name)
	if !strings.HasPrefix(s, seenPrefix) || len(s) != len(seenPrefix)+len(dayLayout) {
		return "", false
	}
	return s[len(seenPrefix):], true
}

func seenKey(stream, callID string) []byte {
	k := make([]byte, 0, len(stream)+1+len(callID))
	k = append(k, stream...)
	k = append(k, '/')
	return append(k, callID...)
}

func pendingKey(stream, callID string) []byte {
	k := make([]byte, 0, len(stream)+1+len(callID))
	k = append(k, stream...)
	k = append(k, pendingSep...)
	return append(k, callID...)
}

// unixNano encodes t; the zero time is 0.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNano(n int64, loc *time.Location) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).In(loc)
}

func putInt(b []byte, n int64) { binary.BigEndian.PutUint64(b, uint64(n)) }
func getInt(b []byte) int64    { return int64(binary.BigEndian.Uint64(b)) }

// seenValue is callEnd in epoch ms and the content hash.
func seenValue(callEnd time.Time, hash uint64) []byte {
	v := make([]byte, 16)
	putInt(v[:8], callEnd.UnixMilli())
	binary.BigEndian.PutUint64(v[8:], hash)
	return v
}

func seenHash(v []byte) (uint64, bool) {
	if len(v) != 16 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v[8:]), true
}

// cursorRecord is the value in bucket cursors: cursor and last sweep (8
// bytes each), then the sealed day, then — when set — "|" and the day of the
// last last-chance read. A record without the separator is a sealed day
// alone (files written before last-chance reads existed).
type cursorRecord struct {
	cursor, lastSweep int64
	sealedDay         string
	lastChanceDay     string
}

const lastChanceSep = "|"

func (r cursorRecord) encode() []byte {
	v := make([]byte, 16, 16+len(r.sealedDay)+1+len(r.lastChanceDay))
	putInt(v[:8], r.cursor)
	putInt(v[8:16], r.lastSweep)
	v = append(v, r.sealedDay...)
	if r.lastChanceDay != "" {
		v = append(append(v, lastChanceSep...), r.lastChanceDay...)
	}
	return v
}

func decodeCursor(v []byte) (cursorRecord, bool) {
	if len(v) < 16 {
		return cursorRecord{}, false
	}
	sealed, lastChance, _ := strings.Cut(string(v[16:]), lastChanceSep)
	return cursorRecord{cursor: getInt(v[:8]), lastSweep: getInt(v[8:16]), sealedDay: sealed, lastChanceDay: lastChance}, true
}

// pendingValue is the filter time and first-seen time.
func pendingValue(filter, firstSeen int64) []byte {
	v := make([]byte, 16)
	putInt(v[:8], filter)
	putInt(v[8:], firstSeen)
	return v
}

func decodePending(v []byte) (filter, firstSeen int64, ok bool) {
	if len(v) != 16 {
		return 0, 0, false
	}
	return getInt(v[:8]), getInt(v[8:]), true
}

// gapKey orders gaps by start, then end, then stream; writing the same gap
// twice is one entry, which keeps Commit idempotent.
func gapKey(g Gap) []byte {
	k := make([]byte, 16, 16+len(g.Stream))
	putInt(k[:8], unixNano(g.Start))
	putInt(k[8:16], unixNano(g.End))
	return append(k, g.Stream...)
}
