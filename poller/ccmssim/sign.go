package ccmssim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The simulator's own auth-v2 verifier (ccms-api.md §2.2), written apart
// from poller/ccms on purpose.

// authError is why a request was refused with 401. Its text names the rule,
// never the header, a signature or the SK.
type authError struct{ reason string }

func (e *authError) Error() string { return "auth-v2: " + e.reason }

// timestampLayout parses both "…:05Z" and "…:05.123Z": Go accepts a
// fractional second after the seconds field when parsing.
const timestampLayout = "2006-01-02T15:04:05Z"

// SignVariant is the auth-v2 variant the simulator demands where third-party
// ports of the C2 demo differ from Huawei's code (ccms-api.md A2, A4). The
// zero value is Huawei's algorithm. Like a real server, the simulator accepts
// exactly one variant, so a client's diagnostic switches can be tried on it.
type SignVariant struct {
	EmptyQueryLine      bool // an empty line stands for the missing query (A2)
	BlankLineBeforeBody bool // a blank line between the header lines and the body (A4)
	Base64              bool // the signature is standard Base64, not hex (A4)
}

// verify checks r's Authorization header against ak/sk, the clock and body,
// the exact bytes received.
func verify(r *http.Request, body []byte, ak, sk string, now time.Time, maxSkew time.Duration, v SignVariant) error {
	values := r.Header.Values("Authorization")
	switch {
	case len(values) == 0:
		return &authError{"no Authorization header"}
	case len(values) > 1:
		return &authError{"more than one Authorization header"}
	}
	// SplitN: a Base64 signature (A4) may itself contain "/"; the AK, the
	// timestamp and the header list never do.
	parts := strings.SplitN(values[0], "/", 5)
	if len(parts) != 5 || parts[0] != "auth-v2" {
		return &authError{"header is not auth-v2/{AK}/{timestamp}/{signedHeaders}/{signature}"}
	}
	gotAK, stamp, signed, sig := parts[1], parts[2], parts[3], parts[4]
	if gotAK != ak {
		return &authError{"unknown access key"}
	}
	t, err := time.Parse(timestampLayout, stamp)
	if err != nil {
		return &authError{"timestamp is not yyyy-MM-ddTHH:mm:ss[.SSS]Z"}
	}
	if d := now.Sub(t); d > maxSkew || d < -maxSkew {
		return &authError{"timestamp " + stamp + " is more than " + maxSkew.String() + " from the server clock " +
			now.UTC().Format(time.RFC3339)}
	}
	names := strings.Split(signed, ";")
	if !slices.Contains(names, "host") {
		return &authError{"host is not among the signed headers"}
	}
	headers := make(map[string]string, len(names))
	for _, n := range names {
		if n == "" || n != strings.ToLower(n) {
			return &authError{"signed header names must be non-empty and lower-case"}
		}
		if _, dup := headers[n]; dup {
			return &authError{"signed header " + n + " listed twice"}
		}
		v, ok := headerValue(r, n)
		if !ok {
			return &authError{"signed header " + n + " was not sent (exactly once)"}
		}
		headers[n] = v
	}
	prefix := "auth-v2/" + gotAK + "/" + stamp + "/" + signed
	want := signature(sk, prefix, canonicalRequest(r.Method, r.URL.EscapedPath(), r.URL.RawQuery, signed, headers, body, v), v.Base64)
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return &authError{"signature does not match (check the signed host against the Host header, the body bytes and the clock)"}
	}
	return nil
}

// headerValue is the value of one signed header as received.
func headerValue(r *http.Request, name string) (string, bool) {
	switch name {
	case "host":
		return r.Host, r.Host != ""
	case "content-length":
		if v := r.Header.Values("Content-Length"); len(v) == 1 {
			return v[0], true
		}
		if r.ContentLength >= 0 {
			return strconv.FormatInt(r.ContentLength, 10), true
		}
		return "", false
	}
	v := r.Header.Values(name)
	if len(v) != 1 {
		return "", false
	}
	return v[0], true
}

// canonicalRequest builds the text that is signed (§2.2 step 6).
func canonicalRequest(method, path, rawQuery, signed string, headers map[string]string, body []byte, v SignVariant) string {
	var b strings.Builder
	b.WriteString(method + "\n" + path + "\n")
	if rawQuery == "" && v.EmptyQueryLine {
		b.WriteString("\n")
	}
	if rawQuery != "" {
		if q, err := url.ParseQuery(rawQuery); err == nil && len(q) > 0 {
			var pairs []string
			for k, vs := range q {
				for _, v := range vs {
					pairs = append(pairs, normalize(k)+"="+normalize(v))
				}
			}
			slices.Sort(pairs)
			b.WriteString(strings.Join(pairs, "&") + "\n")
		}
	}
	b.WriteString(signed + "\n")
	lines := make([]string, 0, len(headers))
	for k, v := range headers {
		lines = append(lines, normalize(k)+":"+normalize(v))
	}
	slices.Sort(lines)
	b.WriteString(strings.Join(lines, "\n") + "\n")
	if v.BlankLineBeforeBody {
		b.WriteString("\n")
	}
	if len(body) > 0 {
		b.WriteString(normalize(string(body)))
	}
	return b.String()
}

// signingKey is hex(HMAC-SHA256(SK, authStringPrefix)).
func signingKey(sk, prefix string) string { return hmacHex(sk, prefix) }

// signature is hex(HMAC-SHA256(hex signing key as text, canonical request)),
// or the same MAC in standard Base64.
func signature(sk, prefix, canonical string, b64 bool) string {
	if b64 {
		m := hmac.New(sha256.New, []byte(signingKey(sk, prefix)))
		m.Write([]byte(canonical))
		return base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	return hmacHex(signingKey(sk, prefix), canonical)
}

func hmacHex(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// normalize percent-encodes every byte except RFC 3986 unreserved ones, with
// upper-case hex digits.
func normalize(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) * 2)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}
