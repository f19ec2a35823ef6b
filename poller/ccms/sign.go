package ccms

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// Timestamp layouts for the auth-v2 prefix (ccms-api.md A1).
const (
	timestampSeconds = "2006-01-02T15:04:05Z"
	timestampMillis  = "2006-01-02T15:04:05.000Z"
)

// signer computes auth-v2 Authorization values (ccms-api.md §2.2). It holds
// the only call of Secret.Reveal.
type signer struct {
	ak      string
	sk      Secret
	headers []string // lower-case, sorted, contains "host"
	millis  bool     // timestamp with milliseconds (A1)
	variant variant
}

// variant holds the diagnostic switches for the points where third-party
// ports of the C2 demo differ from Huawei's code (A2, A4). The zero value is
// Huawei's algorithm.
type variant struct {
	emptyQueryLine bool // an empty line where the query line would be (A2)
	blankLine      bool // a blank line between the header lines and the body (A4)
	base64         bool // the signature in standard Base64 instead of hex (A4)
}

// authorization signs one request. values maps each signed header name
// (lower-case) to the exact value sent on the wire. body is the exact body.
func (s signer) authorization(t time.Time, method, path string, values map[string]string, body []byte) string {
	layout := timestampSeconds
	if s.millis {
		layout = timestampMillis
	}
	signed := strings.Join(s.headers, ";")
	prefix := "auth-v2/" + s.ak + "/" + t.UTC().Format(layout) + "/" + signed
	key := hmacHex(s.sk.Reveal(), prefix)
	canonical := canonicalRequest(method, path, s.headers, values, body, s.variant)
	if s.variant.base64 {
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte(canonical))
		return prefix + "/" + base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	return prefix + "/" + hmacHex(key, canonical)
}

// describe names the signing options (never the key), for 401 diagnosis.
func (s signer) describe() string {
	ts := "seconds"
	if s.millis {
		ts = "millis"
	}
	d := "signed headers " + strings.Join(s.headers, ";") + ", timestamp " + ts
	if s.variant.emptyQueryLine {
		d += ", empty query line"
	}
	if s.variant.blankLine {
		d += ", blank line before the body"
	}
	if s.variant.base64 {
		d += ", Base64 signature"
	}
	return d
}

// canonicalRequest is method, path, signed header names, the sorted canonical
// header lines and the normalised body, joined by single newlines. There is
// no query line (this API has no query string, A2) and no newline after the
// body, unless v asks for the ports' variants.
func canonicalRequest(method, path string, headers []string, values map[string]string, body []byte, v variant) string {
	lines := make([]string, 0, len(headers))
	for _, h := range headers {
		lines = append(lines, normalize(h)+":"+normalize(values[h]))
	}
	slices.Sort(lines)
	var b strings.Builder
	b.Grow(len(method) + len(path) + 64*len(lines) + 3*len(body))
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(path)
	b.WriteByte('\n')
	if v.emptyQueryLine {
		b.WriteByte('\n')
	}
	b.WriteString(strings.Join(headers, ";"))
	b.WriteByte('\n')
	b.WriteString(strings.Join(lines, "\n"))
	b.WriteByte('\n')
	if v.blankLine {
		b.WriteByte('\n')
	}
	if len(body) > 0 {
		normalizeTo(&b, string(body))
	}
	return b.String()
}

// normalize percent-encodes every byte of s except the RFC 3986 unreserved
// characters A-Z a-z 0-9 - . _ ~, with upper-case hex digits. A space is %20.
func normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	normalizeTo(&b, s)
	return b.String()
}

func normalizeTo(b *strings.Builder, s string) {
	const upperHex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&0x0f])
	}
}

// hmacHex is lower-case hex(HMAC-SHA256(key, msg)).
func hmacHex(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}
