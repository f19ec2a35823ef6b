package ccmssim

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A small auth-v2 signer for tests, written from ccms-api.md §2.4 without
// using the package's verifier code.

func testNormalize(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func testHMACHex(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// testAuthorization signs like §2.4; stamp is the timestamp text.
func testAuthorization(ak, sk, stamp, method, path string, headers map[string]string, body []byte) string {
	var names, lines []string
	for k, v := range headers {
		k = strings.ToLower(k)
		names = append(names, k)
		lines = append(lines, testNormalize(k)+":"+testNormalize(v))
	}
	sort.Strings(names)
	sort.Strings(lines)
	signed := strings.Join(names, ";")
	prefix := "auth-v2/" + ak + "/" + stamp + "/" + signed
	canonical := method + "\n" + path + "\n" + signed + "\n" + strings.Join(lines, "\n") + "\n" + testNormalize(string(body))
	return prefix + "/" + testHMACHex(testHMACHex(sk, prefix), canonical)
}

// reqSpec describes one test request; newRequest fills in defaults.
type reqSpec struct {
	method      string    // default POST
	ak, sk      string    // default testAK, testSK
	at          time.Time // signature time; default the sim clock's now
	millis      bool      // timestamp with milliseconds
	host        string    // Host header sent; default testHost
	signedHost  string    // host signed; default host
	contentType string    // default "application/json; charset=UTF-8"
	signed      []string  // signed header names; default content-length, content-type, host
	body        []byte
	noAuth      bool
}

const (
	testAK   = "test-ak"
	testSK   = "test-sk-0123456789"
	testHost = "ccms.example:28443"
)

func newRequest(t testing.TB, now time.Time, s reqSpec) *http.Request {
	t.Helper()
	if s.method == "" {
		s.method = http.MethodPost
	}
	if s.ak == "" {
		s.ak = testAK
	}
	if s.sk == "" {
		s.sk = testSK
	}
	if s.at.IsZero() {
		s.at = now
	}
	if s.host == "" {
		s.host = testHost
	}
	if s.signedHost == "" {
		s.signedHost = s.host
	}
	if s.contentType == "" {
		s.contentType = "application/json; charset=UTF-8"
	}
	if s.signed == nil {
		s.signed = []string{"content-length", "content-type", "host"}
	}
	r := httptest.NewRequest(s.method, "http://"+s.host+QueryCallsPath, bytes.NewReader(s.body))
	r.Host = s.host
	r.Header.Set("Content-Type", s.contentType)
	r.Header.Set("Content-Length", strconv.Itoa(len(s.body)))
	if s.noAuth {
		return r
	}
	headers := map[string]string{}
	for _, n := range s.signed {
		switch n {
		case "host":
			headers[n] = s.signedHost
		case "content-length":
			headers[n] = strconv.Itoa(len(s.body))
		default:
			headers[n] = r.Header.Get(n)
		}
	}
	stamp := s.at.UTC().Format("2006-01-02T15:04:05Z")
	if s.millis {
		stamp = s.at.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	r.Header.Set("Authorization", testAuthorization(s.ak, s.sk, stamp, s.method, QueryCallsPath, headers, s.body))
	return r
}

// body marshals a request body; fields set to nil are left out.
func body(t testing.TB, fields map[string]any) []byte {
	t.Helper()
	m := map[string]any{}
	for k, v := range fields {
		if v != nil {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
