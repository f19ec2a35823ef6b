package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
)

// EncoderOptions configures an Encoder.
type EncoderOptions struct {
	// PII is the phone-number policy. Required: there is no silent default
	// for personal data.
	PII PIIMode
	// PIIKey is the HMAC key for PIIHash (required then, ignored otherwise).
	// Keep it stable: a new key changes every hashed number.
	PIIKey []byte
	// Source names this CC-CMS in every event's source attribute,
	// "/<Source>/<ccId>/vdn/<vdn>"; "" means "ccms". One path segment:
	// letters, digits, '.', '_', '~', '-'.
	Source string
}

const redacted = "[redacted]"

// String hides PIIKey.
func (o EncoderOptions) String() string {
	return fmt.Sprintf("{PII:%s PIIKey:%s Source:%s}", o.PII, redacted, o.Source)
}

// GoString hides PIIKey.
func (o EncoderOptions) GoString() string {
	return fmt.Sprintf("schemas.EncoderOptions{PII:%q, PIIKey:%s, Source:%q}", o.PII, redacted, o.Source)
}

// LogValue hides PIIKey.
func (o EncoderOptions) LogValue() slog.Value {
	return slog.GroupValue(slog.String("pii", string(o.PII)), slog.String("pii_key", redacted), slog.String("source", o.Source))
}

// MarshalJSON hides PIIKey.
func (o EncoderOptions) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"PII": string(o.PII), "PIIKey": redacted, "Source": o.Source})
}

// Encoder turns calls and stream facts into events. It holds no mutable state
// and is safe for concurrent use.
type Encoder struct {
	opts   EncoderOptions
	prefix string // "/ccms"
}

var sourceSegment = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)

// NewEncoder validates o. PIIHash without a key is an error.
func NewEncoder(o EncoderOptions) (*Encoder, error) {
	if _, err := ParsePIIMode(string(o.PII)); err != nil {
		return nil, err
	}
	if o.PII == PIIHash && len(o.PIIKey) == 0 {
		return nil, errors.New("pii mode hash needs a key")
	}
	src := o.Source
	if src == "" {
		src = "ccms"
	}
	if !sourceSegment.MatchString(src) {
		return nil, fmt.Errorf("source %q: want one URI path segment (letters, digits, . _ ~ -)", o.Source)
	}
	o.PIIKey = append([]byte(nil), o.PIIKey...) // the caller's slice may change later
	return &Encoder{opts: o, prefix: "/" + src}, nil
}

// source is "/ccms/1/vdn/25": a URI-reference naming the CC-CMS, ccId and VDN.
func (e *Encoder) source(ccID, vdn int) string {
	return fmt.Sprintf("%s/%d/vdn/%d", e.prefix, ccID, vdn)
}
