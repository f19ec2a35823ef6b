package schemas

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// PIIMode says how phone numbers (callerNo, calleeNo) appear on the wire.
type PIIMode string

// Phone-number policies.
const (
	PIIPlain PIIMode = "plain" // as CC-CMS returned them
	PIIMask  PIIMode = "mask"  // last 4 characters kept, the rest '*'; 4 or fewer: all '*'
	PIIHash  PIIMode = "hash"  // hex HMAC-SHA256 with a secret key: joinable, not reversible
)

// ParsePIIMode parses "plain", "mask" or "hash".
func ParsePIIMode(s string) (PIIMode, error) {
	switch m := PIIMode(s); m {
	case PIIPlain, PIIMask, PIIHash:
		return m, nil
	}
	return "", fmt.Errorf("pii mode %q is not one of plain, mask, hash", s)
}

// UnmarshalText lets go-envconfig and encoding/json parse a PIIMode.
func (m *PIIMode) UnmarshalText(b []byte) error {
	v, err := ParsePIIMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// mask keeps the last 4 characters. A number of 4 characters or fewer is
// masked entirely, since keeping 4 would show all of it. Empty stays empty.
func mask(s string) string {
	r := []rune(s)
	keep := 4
	if len(r) <= keep {
		keep = 0
	}
	return strings.Repeat("*", len(r)-keep) + string(r[len(r)-keep:])
}

// apply applies the policy to one number. Empty stays empty in every mode, so
// "no number" is never confused with a number.
func (e *Encoder) applyPII(s string) string {
	if s == "" {
		return ""
	}
	switch e.opts.PII {
	case PIIMask:
		return mask(s)
	case PIIHash:
		m := hmac.New(sha256.New, e.opts.PIIKey)
		m.Write([]byte(s))
		return hex.EncodeToString(m.Sum(nil))
	}
	return s
}
