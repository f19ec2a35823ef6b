package schemas

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// An event id is the first 128 bits of SHA-256 over a canonical string, as 32
// lower-case hex digits. 128 bits keep collisions out of reach for any number
// of calls a CC-CMS will ever hold, while staying short in logs and keys.
// The canonical strings put every variable-length part last or after
// fixed-shape parts, so no two inputs share one.

func idOf(canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return hex.EncodeToString(sum[:16])
}

// EventID is the id of a call's first call-completed event: a pure function
// of the call's identity, "ccms-call/<ccId>/<vdn>/<in|out>/<callId>" hashed.
// Changing it breaks every consumer's dedupe (TestEventIDIsPinned).
func EventID(ccID, vdn int, inbound bool, callID string) string {
	return idOf(fmt.Sprintf("ccms-call/%d/%d/%s/%s", ccID, vdn, DirectionOf(inbound), callID))
}

// UpdateEventID is the id of an update of a call already published: the same
// identity plus the content hash of the changed record,
// "ccms-call-update/<ccId>/<vdn>/<in|out>/<hash as 16 hex>/<callId>" hashed.
// Each distinct content of a call thus has its own id.
func UpdateEventID(ccID, vdn int, inbound bool, callID string, contentHash uint64) string {
	return idOf(fmt.Sprintf("ccms-call-update/%d/%d/%s/%016x/%s", ccID, vdn, DirectionOf(inbound), contentHash, callID))
}

// UnendedEventID is the id of a call published as unended (its end was
// never reported): the call's identity under its own prefix,
// "ccms-call-unended/<ccId>/<vdn>/<in|out>/<callId>" hashed. It differs
// from EventID, so the call-completed event of a call that reports its end
// after all is not taken for a repeat of the unended one.
func UnendedEventID(ccID, vdn int, inbound bool, callID string) string {
	return idOf(fmt.Sprintf("ccms-call-unended/%d/%d/%s/%s", ccID, vdn, DirectionOf(inbound), callID))
}

// ContentHash is a stable 64-bit hash of the normalised call: every field
// except LogDate (when the row was written is bookkeeping, not content), with
// times at millisecond precision. It is computed before the phone-number
// policy, so changing the policy does not turn old calls into updates.
// dedupe stores it next to each seen key; a known key with another hash is an
// update. Changing it re-publishes every call in the store's reach as an
// update (TestContentHashIsPinned).
func ContentHash(c Call) uint64 {
	h := sha256.New()
	var buf [binary.MaxVarintLen64]byte
	num := func(v int64) {
		n := binary.PutVarint(buf[:], v)
		h.Write(buf[:n])
	}
	str := func(s string) {
		num(int64(len(s)))
		h.Write([]byte(s))
	}
	ms := func(t time.Time) {
		if t.IsZero() {
			num(0)
			return
		}
		num(t.UnixMilli())
	}
	str("call/v1")
	num(int64(c.CCID))
	num(int64(c.VDN))
	if c.Inbound {
		num(1)
	} else {
		num(0)
	}
	str(c.CallID)
	str(c.CallerNo)
	str(c.CalleeNo)
	num(int64(c.CallType))
	num(int64(c.LeaveReason))
	num(int64(c.MediaType))
	num(int64(c.SubMediaType))
	ms(c.WaitBegin)
	ms(c.AckBegin)
	ms(c.CallBegin)
	ms(c.CallEnd)
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])
}
