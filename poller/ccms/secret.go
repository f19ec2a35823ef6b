package ccms

import (
	"fmt"
	"log/slog"
)

// Secret is a credential that cannot be printed by accident: fmt (every
// verb, %v, %+v, %#v and %d included), slog and JSON all show "[redacted]".
// Reveal returns the value and is called only by the signer.
type Secret string

const redacted = "[redacted]"

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Format prints "[redacted]" whatever the verb: without it, a verb that is
// not a string verb (%d) would print the value through reflection.
func (Secret) Format(f fmt.State, _ rune) { fmt.Fprint(f, redacted) }

// Reveal returns the secret's value. Only the signer calls it.
func (s Secret) Reveal() string { return string(s) }

// Format prints a Client as its endpoint and AK, whatever the verb. fmt
// prints unexported fields by reflection, which bypasses Secret's methods:
// without this, %+v of a Client would print the SK held by its signer.
func (c Client) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "ccms.Client{endpoint: %s, host: %s, %v}", c.endpoint, c.host, c.sign)
}

// Format prints a signer's options and AK, never its key, whatever the verb.
func (s signer) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "signer{ak: %s, sk: %s, %s}", s.ak, redacted, s.describe())
}
