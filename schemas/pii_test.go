package schemas

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestPhoneNumberPolicy(t *testing.T) {
	tests := []struct {
		name string
		opts EncoderOptions
		in   string
		want string
	}{
		{"plain keeps the number", EncoderOptions{PII: PIIPlain}, "+8613800001234", "+8613800001234"},
		{"mask keeps the last 4 characters", EncoderOptions{PII: PIIMask}, "+8613800001234", "**********1234"},
		{"mask hides a number of 5 characters but 4", EncoderOptions{PII: PIIMask}, "12345", "*2345"},
		{"mask hides a short number entirely", EncoderOptions{PII: PIIMask}, "1212", "****"},
		{"mask keeps an empty number empty", EncoderOptions{PII: PIIMask}, "", ""},
		{"hash is HMAC-SHA256 in hex", EncoderOptions{PII: PIIHash, PIIKey: []byte("key")}, "1234",
			"280ed91eee6eb96a2b1cf598843c1308e84623d14e4208d96c20f7e2de81315e"},
		{"hash keeps an empty number empty", EncoderOptions{PII: PIIHash, PIIKey: []byte("key")}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := newEncoder(t, tt.opts)
			if got := enc.applyPII(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHashDependsOnTheKey(t *testing.T) {
	a := newEncoder(t, EncoderOptions{PII: PIIHash, PIIKey: []byte("a")})
	b := newEncoder(t, EncoderOptions{PII: PIIHash, PIIKey: []byte("b")})
	if a.applyPII("+8613800001234") == b.applyPII("+8613800001234") {
		t.Error("two keys give the same hash")
	}
}

func TestNewEncoderRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts EncoderOptions
		want string
	}{
		{"hash without a key", EncoderOptions{PII: PIIHash}, "pii mode hash needs a key"},
		{"no policy chosen", EncoderOptions{}, `pii mode "" is not one of plain, mask, hash`},
		{"an unknown policy", EncoderOptions{PII: "crypt"}, `pii mode "crypt" is not one of plain, mask, hash`},
		{"a source with a slash", EncoderOptions{PII: PIIPlain, Source: "a/b"}, `source "a/b": want one URI path segment (letters, digits, . _ ~ -)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewEncoder(tt.opts)
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestEncoderCopiesTheKey(t *testing.T) {
	key := []byte("key")
	enc := newEncoder(t, EncoderOptions{PII: PIIHash, PIIKey: key})
	before := enc.applyPII("1234")
	key[0] = 'X'
	if enc.applyPII("1234") != before {
		t.Error("changing the caller's key slice changed the encoder")
	}
}

func TestEncoderOptionsNeverShowTheKey(t *testing.T) {
	o := EncoderOptions{PII: PIIHash, PIIKey: []byte("s3cret-hmac-key"), Source: "ccms"}
	var sb strings.Builder
	slog.New(slog.NewJSONHandler(&sb, nil)).Info("opts", "o", o)
	js, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprintf("%v", o), fmt.Sprintf("%+v", o), fmt.Sprintf("%#v", o), fmt.Sprint(&o), sb.String(), string(js)} {
		// the key as text, as Go prints bytes ("[115 51 ..."), and as base64
		if strings.Contains(out, "s3cret") || strings.Contains(out, "115 51 99") || strings.Contains(out, "czNjcmV0") {
			t.Errorf("key leaked: %s", out)
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("no [redacted] marker in %s", out)
		}
	}
}

func TestParsePIIMode(t *testing.T) {
	for _, s := range []string{"plain", "mask", "hash"} {
		if m, err := ParsePIIMode(s); err != nil || string(m) != s {
			t.Errorf("ParsePIIMode(%q) = %q, %v", s, m, err)
		}
	}
	var m PIIMode
	if err := m.UnmarshalText([]byte("Mask")); err == nil {
		t.Error("modes are case-sensitive, Mask was accepted")
	}
}
