package ccms

import "log/slog"

// Secret is a credential that cannot be printed by accident: fmt (%v, %+v,
// %#v, %s), slog and JSON all show "[redacted]". Reveal returns the value and
// is called only by the signer.
type Secret string

const redacted = "[redacted]"

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Reveal returns the secret's value. Only the signer calls it.
func (s Secret) Reveal() string { return string(s) }
