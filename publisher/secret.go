package publisher

import "log/slog"

// Secret is a credential that cannot be printed by accident: fmt (%v, %+v,
// %#v, %s), slog and encoding/json all show "[redacted]". Reveal is called in
// one place, where the SASL mechanism is built.
type Secret string

const redacted = "[redacted]"

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }
