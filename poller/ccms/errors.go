package ccms

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrInconsistent reports a window whose pages still disagreed with each
// other (repeated page, rows versus count, count changing) after it was split
// down to Config.MinSpan. ReadWindow no longer returns it: it reads such a
// span as far as the server gives it and reports it in Read.Suspect, so one
// lying server cannot stall a stream until its window falls off the API's
// reach. ClassOf still classes it (transient-limited) for callers that wrap it.
var ErrInconsistent = errors.New("window pages are inconsistent")

// ErrBodyTooLarge is wrapped in a *DecodeError when a response body exceeds
// Config.MaxBodyBytes. ReadWindow answers it by splitting the window.
var ErrBodyTooLarge = errors.New("response body too large")

// StatusError is an HTTP-level failure: any status other than 200.
type StatusError struct {
	Code       int           // HTTP status code
	RetryAfter time.Duration // parsed Retry-After (seconds or HTTP date), capped at Config.RetryMaxDelay; 0 when absent
	Excerpt    string        // start of the response body, sanitised
	Host       string        // the host that was signed and sent (for 401 diagnosis)
	Date       string        // the server's Date header, if any (for 401 clock diagnosis)
	SignedAt   time.Time     // the local (offset-corrected) time the request was signed at
	Signing    string        // the signing options used, e.g. "headers content-length;content-type;host, timestamp seconds"
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "http %d %s", e.Code, strings.ToLower(http.StatusText(e.Code)))
	switch {
	case e.Code == http.StatusUnauthorized:
		b.WriteString(": authentication refused; check the AK/SK pair, the local clock")
		if !e.SignedAt.IsZero() {
			fmt.Fprintf(&b, " (signed at %s)", e.SignedAt.UTC().Format(time.RFC3339))
		}
		if e.Date != "" {
			fmt.Fprintf(&b, " against the server's Date %q", e.Date)
		}
		fmt.Fprintf(&b, ", that the signed host %q is the Host header the server receives, and the signing options", e.Host)
		if e.Signing != "" {
			fmt.Fprintf(&b, " (%s)", e.Signing)
		}
	case e.Code == http.StatusForbidden:
		b.WriteString(": refused by the gateway; check that this egress IP is allow-listed by the tenant operator and that the TLS server name (SNI) is the one the operator gave")
	case e.Code == http.StatusTeapot:
		b.WriteString(": refused by the gateway (WAF), usually for a bare IP or a wrong hostname; connect with the hostname the operator gave or set the TLS server name (SNI)")
	case e.Code == http.StatusTooManyRequests:
		b.WriteString(": rate limited")
	case e.Code >= 500:
		b.WriteString(": server or gateway unavailable")
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %v)", e.RetryAfter)
	}
	if e.Excerpt != "" {
		fmt.Fprintf(&b, "; body: %q", e.Excerpt)
	}
	return b.String()
}

// ResultError is HTTP 200 with a resultCode other than "0100000".
type ResultError struct {
	Code string // resultCode, e.g. "0100002"
	Desc string // resultDesc as a string (or a short excerpt of it)
}

func (e *ResultError) Error() string {
	hint := ""
	switch {
	case e.Code == "0100001":
		hint = " (call failed, transient)"
	case e.Code == "0100999":
		hint = " (unknown error, transient)"
	case e.Code == "0100002":
		hint = " (invalid parameter: check the window against the API's range and the number encoding)"
	case e.Code == "0100003":
		hint = " (the interface needs CTI V300R008: a deployment problem)"
	case e.Code == "0101002":
		hint = " (the queried number does not exist: check the callerNo/calleeNo filter)"
	case e.Code == "0101003":
		hint = " (insufficient permission: check the AK's rights and the tenant configuration)"
	case strings.HasPrefix(e.Code, "0101"):
		hint = " (not retried)"
	}
	if e.Desc == "" {
		return fmt.Sprintf("result code %s%s", e.Code, hint)
	}
	return fmt.Sprintf("result code %s%s: %q", e.Code, hint, e.Desc)
}

// DecodeError is a response that could not be decoded: malformed or truncated
// JSON, a success whose resultDesc is not an object of rows and a count, or a
// body over the size limit. A bad row is not one: it is a BadRow of its page.
//
// An HTTP 200 body may hold phone numbers, so for one the error says what is
// wrong and where (Offset, Length), never what the body holds; only a non-200
// body (a gateway's page) keeps an Excerpt.
type DecodeError struct {
	Status  int    // HTTP status of the response
	Length  int    // length of the body in bytes (as read, up to the size limit and one byte)
	Offset  int64  // byte offset in the body where decoding failed; 0 when unknown
	Excerpt string // start of a non-200 body, sanitised; always "" for HTTP 200
	Err     error  // what is wrong, without the body's content
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "decode response (http %d, %d bytes", e.Status, e.Length)
	if e.Offset > 0 {
		fmt.Fprintf(&b, ", at byte %d", e.Offset)
	}
	fmt.Fprintf(&b, "): %v", e.Err)
	if e.Excerpt != "" {
		fmt.Fprintf(&b, "; body: %q", e.Excerpt)
	}
	return b.String()
}

func (e *DecodeError) Unwrap() error { return e.Err }

// bodyError is the *DecodeError of a body that did not decode; at is where
// the part being decoded starts in body (0 for the whole body). The JSON
// errors it wraps name a character or a type, never a value.
func bodyError(status int, body []byte, at int64, err error) *DecodeError {
	e := &DecodeError{Status: status, Length: len(body), Err: err}
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		e.Offset = at + syn.Offset
	case errors.As(err, &typ):
		e.Offset = at + typ.Offset
	case at > 0:
		e.Offset = at
	}
	if status != http.StatusOK {
		e.Excerpt = excerpt(body)
	}
	return e
}

// ValidationError is a query rejected before anything was sent.
type ValidationError struct {
	Field  string // the request field, as named on the wire (ccId, vdn, beginDate, ...)
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid query: %s: %s", e.Field, e.Reason)
}

// TransportError is a request that got no HTTP response: a timeout, a refused
// or reset connection, a TLS failure.
type TransportError struct {
	Timeout bool // the per-attempt timeout (Config.Timeout) or a network timeout
	Err     error
}

func (e *TransportError) Error() string {
	if e.Timeout {
		return fmt.Sprintf("transport timeout: %v", e.Err)
	}
	return fmt.Sprintf("transport: %v", e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// Class is a retry class. ClassOf maps every error of this package to one.
type Class int

const (
	// ClassOK is no error.
	ClassOK Class = iota
	// ClassTransient: network errors, timeouts, HTTP 429 and 5xx, undecodable
	// bodies. Retry with jittered backoff, honouring RetryAfter.
	ClassTransient
	// ClassTransientLimited: resultCode 0100001/0100999 and inconsistent
	// windows. Retry a few times, then fail the window.
	ClassTransientLimited
	// ClassAuth: HTTP 401. Never retried blindly: check AK/SK, clock, host.
	ClassAuth
	// ClassBlocked: HTTP 403. The gateway refused: allow-list, WAF, SNI.
	ClassBlocked
	// ClassMisconfigured: HTTP 418 (wrong SNI/hostname) and TLS certificate
	// verification failures. Fix the configuration.
	ClassMisconfigured
	// ClassPermanent: other 4xx, resultCodes other than 0100001/0100999, invalid
	// queries, bodies over the size limit. Fix the request.
	ClassPermanent
	// ClassCanceled: the caller's context ended. Not a failure of the upstream.
	ClassCanceled
)

func (c Class) String() string {
	switch c {
	case ClassOK:
		return "ok"
	case ClassTransient:
		return "transient"
	case ClassTransientLimited:
		return "transient_limited"
	case ClassAuth:
		return "auth"
	case ClassBlocked:
		return "blocked"
	case ClassMisconfigured:
		return "misconfigured"
	case ClassPermanent:
		return "permanent"
	case ClassCanceled:
		return "canceled"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Retryable reports whether QueryCalls retries errors of this class.
func (c Class) Retryable() bool { return c == ClassTransient || c == ClassTransientLimited }

// ClassOf is the one retry classifier. nil is ClassOK; an error this package
// does not know (and that is not a context error) is ClassTransient.
func ClassOf(err error) Class {
	if err == nil {
		return ClassOK
	}
	var (
		se *StatusError
		re *ResultError
		de *DecodeError
		ve *ValidationError
		te *TransportError
	)
	switch {
	case errors.As(err, &se):
		switch {
		case se.Code == http.StatusUnauthorized:
			return ClassAuth
		case se.Code == http.StatusForbidden:
			return ClassBlocked
		case se.Code == http.StatusTeapot:
			return ClassMisconfigured
		case se.Code == http.StatusTooManyRequests, se.Code == http.StatusRequestTimeout, se.Code >= 500:
			return ClassTransient
		}
		return ClassPermanent
	case errors.As(err, &re):
		switch re.Code {
		case "0100001", "0100999":
			return ClassTransientLimited
		}
		return ClassPermanent
	case errors.As(err, &ve):
		return ClassPermanent
	case errors.As(err, &de):
		if errors.Is(de.Err, ErrBodyTooLarge) {
			return ClassPermanent
		}
		return ClassTransient
	case errors.As(err, &te):
		if isTLSConfigError(te.Err) {
			return ClassMisconfigured
		}
		return ClassTransient
	case errors.Is(err, ErrInconsistent):
		return ClassTransientLimited
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ClassCanceled
	}
	return ClassTransient
}

// RetryAfter is the server's Retry-After carried by err, or 0.
func RetryAfter(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

// isTLSConfigError reports certificate verification failures: retrying cannot
// fix them, the CA file or server name must change.
func isTLSConfigError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	return errors.As(err, &unknown) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verify)
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date.
// Unparseable, negative or past values give 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(24*time.Hour/time.Second) { // nonsense; keep it bounded
			n = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, 24*time.Hour)
		}
	}
	return 0
}

const excerptLen = 200

var authPattern = regexp.MustCompile(`(?i)auth-v2/[^\s"',;]*`)

// excerpt is the start of a body, made safe for an error message: valid
// UTF-8, control characters replaced, anything that looks like an auth-v2
// Authorization value redacted (in case a server echoes the request).
func excerpt(body []byte) string {
	if len(body) > 4*excerptLen {
		body = body[:4*excerptLen]
	}
	s := authPattern.ReplaceAllString(string(body), "auth-v2/"+redacted)
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n >= excerptLen {
			b.WriteString("…")
			break
		}
		switch {
		case r == utf8.RuneError:
			r = '?'
		case r < 0x20 || r == 0x7f:
			r = ' '
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

// digitRun is a run of seven or more digits, possibly with separators: the
// shape of a phone number.
var digitRun = regexp.MustCompile(`\+?[0-9](?:[0-9 ().-]{5,}[0-9])`)

// maskDigits replaces every run that could be a phone number in text that
// came from an HTTP 200 body.
func maskDigits(s string) string {
	return digitRun.ReplaceAllStringFunc(s, func(m string) string {
		n := 0
		for i := 0; i < len(m); i++ {
			if '0' <= m[i] && m[i] <= '9' {
				n++
			}
		}
		if n < 7 {
			return m
		}
		return "[number]"
	})
}
