package ccms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/callpub/callpub/schemas"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testQuery is one valid page query at testNow.
var testQuery = Query{Stream: schemas.Stream{CCID: 1, VDN: 25, Dir: schemas.In}, Limit: 100,
	Begin: testNow.Add(-time.Hour), End: testNow.Add(-time.Millisecond)}

func TestQueryCallsSignsAndSendsExactlyTheBodyOverTLS(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	srv := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, body, err := readQuery(r)
		if err != nil {
			t.Error(err)
		}
		if why := verifySignature(r, body); why != "" {
			t.Errorf("signature: %s", why)
		}
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s host=%s ct=%q te=%v len=%d q=%+v",
			r.Method, r.URL.Path, r.Host, r.Header.Get("Content-Type"), r.TransferEncoding, r.ContentLength, q))
		mu.Unlock()
		w.Write(readFixture(t, "numbers-as-strings.json"))
	}))
	tests := []struct {
		name     string
		change   func(*Config)
		wantHost string
	}{
		{"the default signs content-length, content-type and host", func(*Config) {}, strings.TrimPrefix(srv.URL, "https://")},
		{"host only with a millisecond timestamp", func(c *Config) { c.SignHeaders = []string{"host"}; c.SignTimestamp = "millis" },
			strings.TrimPrefix(srv.URL, "https://")},
		{"a host header override is the host signed and sent, with the TLS server name overridden too",
			func(c *Config) { c.HostHeader = "cms.example.com:28443"; c.ServerName = "example.com" }, "cms.example.com:28443"},
		{"the no-space content type is sent as written", func(c *Config) { c.ContentType = "application/json;charset=UTF-8" },
			strings.TrimPrefix(srv.URL, "https://")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			cfg := testConfig(t, srv)
			tc.change(&cfg)
			c, rec := newTestClient(t, cfg)
			page, err := c.QueryCalls(t.Context(), testQuery)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Calls) != 1 || page.Count != 1 {
				t.Errorf("page = %+v", page)
			}
			ct := cmpOrString(cfg.ContentType, "application/json; charset=UTF-8")
			want := []string{fmt.Sprintf("POST /rest/cmsapp/v2/openapi/vdn/querycalls host=%s ct=%q te=[] len=110 q=%+v", tc.wantHost, ct,
				wireQuery{CCID: 1, VDN: 25, BeginDate: testQuery.Begin.UnixMilli(), EndDate: testQuery.End.UnixMilli(), IsCallIn: "true", Limit: 100})}
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff(want, seen); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]Class{ClassOK}, rec.classes()); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
		})
	}
}

func cmpOrString(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// statusHandler answers every request with the same status, headers and body.
func statusHandler(code int, header map[string]string, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(code)
		io.WriteString(w, strings.ReplaceAll(body, "$AUTH", r.Header.Get("Authorization")))
	})
}

func TestQueryCallsErrors(t *testing.T) {
	retryDate := testNow.Add(90 * time.Second).Format(http.TimeFormat) // the client's clock ticks a few seconds past testNow
	tests := []struct {
		name         string
		handler      http.Handler
		wantClass    Class
		wantAttempts int
		wantStatus   int
		wantRetry    time.Duration // RetryAfter(err)
		retryAtLeast time.Duration // RetryAfter(err) lower bound, for HTTP dates
		wantText     []string
		wantAs       any
		config       func(*Config) // nil: testConfig as is
	}{
		{
			name:      "401 is an auth error that says what to check and never echoes the signature",
			handler:   statusHandler(401, map[string]string{"Date": "Thu, 02 Jan 2025 12:00:00 GMT"}, `{"error":"bad signature $AUTH"}`),
			wantClass: ClassAuth, wantAttempts: 1, wantStatus: 401, wantAs: new(*StatusError),
			wantText: []string{"http 401 unauthorized", "check the AK/SK pair", "clock", `server's Date "Thu, 02 Jan 2025 12:00:00 GMT"`, "signed host",
				"(signed at 2025-01-02T12:00:", "(signed headers content-length;content-type;host, timestamp seconds)", "auth-v2/[redacted]"},
		},
		{
			name:      "403 is blocked and not retried",
			handler:   statusHandler(403, nil, "Forbidden"),
			wantClass: ClassBlocked, wantAttempts: 1, wantStatus: 403, wantAs: new(*StatusError),
			wantText: []string{"http 403 forbidden", "allow-listed", "SNI"},
		},
		{
			name:      "418 from a WAF is misconfigured and not retried",
			handler:   statusHandler(418, nil, "CloudWAF"),
			wantClass: ClassMisconfigured, wantAttempts: 1, wantStatus: 418, wantAs: new(*StatusError),
			wantText: []string{"http 418", "server name (SNI)", "CloudWAF"},
		},
		{
			name:      "429 with Retry-After in seconds is retried and carries the delay",
			handler:   statusHandler(429, map[string]string{"Retry-After": "7"}, ""),
			config:    func(c *Config) { c.MaxAttempts, c.RetryMaxDelay = 1, time.Minute },
			wantClass: ClassTransient, wantAttempts: 1, wantStatus: 429, wantRetry: 7 * time.Second, wantAs: new(*StatusError),
			wantText: []string{"http 429 too many requests", "retry after 7s"},
		},
		{
			name:      "429 with a Retry-After over RetryMaxDelay is retried after the capped delay, which it carries",
			handler:   statusHandler(429, map[string]string{"Retry-After": "7"}, ""),
			wantClass: ClassTransient, wantAttempts: 3, wantStatus: 429, wantRetry: 20 * time.Millisecond, wantAs: new(*StatusError),
			wantText: []string{"attempt 3 of 3", "http 429 too many requests", "retry after 20ms"},
		},
		{
			name:      "429 with Retry-After as an HTTP date is parsed against the client's clock",
			handler:   statusHandler(429, map[string]string{"Retry-After": retryDate}, ""),
			config:    func(c *Config) { c.MaxAttempts, c.RetryMaxDelay = 1, 5*time.Minute },
			wantClass: ClassTransient, wantAttempts: 1, wantStatus: 429, retryAtLeast: time.Minute, wantAs: new(*StatusError),
			wantText: []string{"http 429"},
		},
		{
			name:      "500 is transient",
			handler:   statusHandler(500, nil, "boom"),
			wantClass: ClassTransient, wantAttempts: 3, wantStatus: 500, wantAs: new(*StatusError),
			wantText: []string{"http 500 internal server error"},
		},
		{
			name:      "502 is transient",
			handler:   statusHandler(502, nil, "<html>bad gateway</html>"),
			wantClass: ClassTransient, wantAttempts: 3, wantStatus: 502, wantAs: new(*StatusError),
			wantText: []string{"http 502 bad gateway", "<html>bad gateway</html>"},
		},
		{
			name:      "503 is transient",
			handler:   statusHandler(503, nil, ""),
			wantClass: ClassTransient, wantAttempts: 3, wantStatus: 503, wantAs: new(*StatusError),
		},
		{
			name:      "504 is transient",
			handler:   statusHandler(504, nil, ""),
			wantClass: ClassTransient, wantAttempts: 3, wantStatus: 504, wantAs: new(*StatusError),
		},
		{
			name:      "404 is permanent",
			handler:   statusHandler(404, nil, "not found"),
			wantClass: ClassPermanent, wantAttempts: 1, wantStatus: 404, wantAs: new(*StatusError),
		},
		{
			name:      "truncated JSON is a decode error with the status, the length and where it broke, retried",
			handler:   statusHandler(200, nil, string(readFixture(t, "truncated.json"))),
			wantClass: ClassTransient, wantAttempts: 3, wantStatus: 200, wantAs: new(*DecodeError),
			wantText: []string{"decode response (http 200, 113 bytes, at byte 113): invalid character"},
		},
		{
			name: "a body cut off before its Content-Length is a transient transport error",
			handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "1000")
				io.WriteString(w, `{"resultCode":"0100000","resultDesc":{"data":[{"callId":"1`)
			}),
			wantClass: ClassTransient, wantAttempts: 3, wantStatus: 200, wantAs: new(*TransportError),
			wantText: []string{"read body (http 200)", "unexpected EOF"},
		},
		{
			name:      "malformed JSON is a decode error that says where, not what",
			handler:   statusHandler(200, nil, "<html>maintenance</html>"),
			wantClass: ClassTransient, wantAttempts: 3, wantStatus: 200, wantAs: new(*DecodeError),
			wantText: []string{"(http 200, 24 bytes, at byte 1): invalid character '<' looking for beginning of value"},
		},
		{
			name:      "an invalid-parameter resultCode with a string resultDesc is permanent",
			handler:   statusHandler(200, nil, `{"resultCode":"0100002","resultDesc":"Invalid parameter"}`),
			wantClass: ClassPermanent, wantAttempts: 1, wantStatus: 200, wantAs: new(*ResultError),
			wantText: []string{"result code 0100002", "Invalid parameter"},
		},
		{
			name:      "a deployment resultCode is permanent",
			handler:   statusHandler(200, nil, `{"resultCode":"0100003","resultDesc":"CTI V300R006"}`),
			wantClass: ClassPermanent, wantAttempts: 1, wantStatus: 200, wantAs: new(*ResultError),
		},
		{
			name:      "a 0101xxx resultCode is permanent",
			handler:   statusHandler(200, nil, `{"resultCode":"0101002","resultDesc":"number does not exist"}`),
			wantClass: ClassPermanent, wantAttempts: 1, wantStatus: 200, wantAs: new(*ResultError),
		},
		{
			name:      "the generic failure resultCode is retried a few times",
			handler:   statusHandler(200, nil, `{"resultCode":"0100001","resultDesc":"Call failed"}`),
			wantClass: ClassTransientLimited, wantAttempts: 3, wantStatus: 200, wantAs: new(*ResultError),
			wantText: []string{"attempt 3 of 3", "result code 0100001"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startTLS(t, tc.handler)
			cfg := testConfig(t, srv)
			if tc.config != nil {
				tc.config(&cfg)
			}
			c, rec := newTestClient(t, cfg)
			_, err := c.QueryCalls(t.Context(), testQuery)
			if err == nil {
				t.Fatal("want an error")
			}
			if got := ClassOf(err); got != tc.wantClass {
				t.Errorf("class = %v, want %v (%v)", got, tc.wantClass, err)
			}
			if !errors.As(err, tc.wantAs) {
				t.Errorf("error is not %T: %v", tc.wantAs, err)
			}
			if tc.wantRetry != 0 && RetryAfter(err) != tc.wantRetry {
				t.Errorf("RetryAfter = %v, want %v", RetryAfter(err), tc.wantRetry)
			}
			if RetryAfter(err) < tc.retryAtLeast {
				t.Errorf("RetryAfter = %v, want at least %v", RetryAfter(err), tc.retryAtLeast)
			}
			for _, s := range tc.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			noSecrets(t, err.Error())
			if !strings.Contains(err.Error(), "1/25/in") {
				t.Errorf("error %q does not identify the query", err)
			}
			var want []Outcome
			for range tc.wantAttempts {
				want = append(want, Outcome{Class: tc.wantClass, Status: tc.wantStatus, RetryAfter: RetryAfter(err)})
			}
			if diff := cmp.Diff(want, rec.outcomes, cmp.Comparer(func(a, b time.Duration) bool { return true })); diff != "" {
				t.Errorf("outcomes (-want +got, durations ignored):\n%s", diff)
			}
			if rec.waits != tc.wantAttempts {
				t.Errorf("limiter waited %d times, want one per attempt (%d)", rec.waits, tc.wantAttempts)
			}
		})
	}
}

// noSecrets fails when s contains the SK or anything signature-like.
func noSecrets(t *testing.T, s string) {
	t.Helper()
	if strings.Contains(s, testSK) {
		t.Errorf("%q contains the SK", s)
	}
	if authPattern.MatchString(strings.ReplaceAll(s, "auth-v2/"+redacted, "")) {
		t.Errorf("%q contains an Authorization value", s)
	}
}

func TestQueryCallsRetriesTransientFailuresAndReSignsEachAttempt(t *testing.T) {
	var (
		mu    sync.Mutex
		auths []string
	)
	answers := []http.Handler{
		statusHandler(503, nil, "busy"),
		statusHandler(429, map[string]string{"Retry-After": "1"}, ""),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(readFixture(t, "numbers.json")) }),
	}
	srv := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if why := verifySignature(r, body); why != "" {
			t.Errorf("attempt signature: %s", why)
		}
		mu.Lock()
		n := len(auths)
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		answers[n].ServeHTTP(w, r)
	}))
	c, rec := newTestClient(t, testConfig(t, srv))
	page, err := c.QueryCalls(t.Context(), testQuery)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Calls) != 2 {
		t.Errorf("got %d calls, want 2", len(page.Calls))
	}
	if len(auths) != 3 || auths[0] == auths[1] || auths[1] == auths[2] || auths[0] == auths[2] {
		t.Errorf("want three distinct signatures, got %q", auths)
	}
	// Retry-After: 1 is capped at testConfig's 20ms RetryMaxDelay.
	want := []Outcome{{Class: ClassTransient, Status: 503}, {Class: ClassTransient, Status: 429, RetryAfter: 20 * time.Millisecond}, {Class: ClassOK, Status: 200}}
	if diff := cmp.Diff(want, rec.outcomes, cmp.Comparer(func(a, b time.Duration) bool { return true })); diff != "" {
		t.Errorf("outcomes (-want +got, durations ignored):\n%s", diff)
	}
}

func TestQueryCallsTimesOutEachAttempt(t *testing.T) {
	release := make(chan struct{})
	srv := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	cfg := testConfig(t, srv)
	cfg.Timeout = 100 * time.Millisecond
	cfg.MaxAttempts = 2
	c, rec := newTestClient(t, cfg)
	_, err := c.QueryCalls(t.Context(), testQuery)
	var te *TransportError
	if !errors.As(err, &te) || !te.Timeout {
		t.Fatalf("want a timeout TransportError, got %v", err)
	}
	if ClassOf(err) != ClassTransient {
		t.Errorf("class = %v, want transient", ClassOf(err))
	}
	if diff := cmp.Diff([]Class{ClassTransient, ClassTransient}, rec.classes()); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if !strings.Contains(err.Error(), "no complete response within 100ms") {
		t.Errorf("error %q does not say what timed out", err)
	}
}

func TestQueryCallsStopsWhenTheContextEnds(t *testing.T) {
	srv := startTLS(t, statusHandler(503, map[string]string{"Retry-After": "3600"}, ""))
	cfg := testConfig(t, srv)
	cfg.RetryMaxDelay = time.Hour // the client would wait an hour before its second attempt
	c, rec := newTestClient(t, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	c.observe = func(o Outcome) { rec.observe(o); cancel() } // cancel while the client backs off
	_, err := c.QueryCalls(ctx, testQuery)
	if !errors.Is(err, context.Canceled) || ClassOf(err) != ClassCanceled {
		t.Fatalf("want context.Canceled, got %v (class %v)", err, ClassOf(err))
	}
	if n := len(rec.outcomes); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

type refusingLimiter struct{}

func (refusingLimiter) Wait(context.Context) error { return errors.New("budget closed") }

func TestQueryCallsSendsNothingWhenTheLimiterRefuses(t *testing.T) {
	f := &fakeCCMS{t: t}
	srv := startTLS(t, f)
	c, err := NewClient(testConfig(t, srv), Deps{Limiter: refusingLimiter{}, Now: tickingClock()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.QueryCalls(t.Context(), testQuery); err == nil || !strings.Contains(err.Error(), "wait for request budget: budget closed") {
		t.Errorf("got %v", err)
	}
	if n := f.requestCount(); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestQueryCallsRejectsAnInvalidQueryBeforeSending(t *testing.T) {
	f := &fakeCCMS{t: t}
	srv := startTLS(t, f)
	c, rec := newTestClient(t, testConfig(t, srv))
	q := testQuery
	q.Begin = testNow.AddDate(0, 0, -3)
	_, err := c.QueryCalls(t.Context(), q)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != "beginDate" {
		t.Fatalf("want a beginDate ValidationError, got %v", err)
	}
	if f.requestCount() != 0 || rec.waits != 0 {
		t.Errorf("sent %d requests, waited %d times; want none", f.requestCount(), rec.waits)
	}
}

func TestQueryCallsLimitsTheResponseBody(t *testing.T) {
	srv := startTLS(t, statusHandler(200, nil, `{"resultCode":"0100000","resultDesc":{"data":[`+strings.Repeat(`{"callId":"x"},`, 1000)+`{}]}}`))
	cfg := testConfig(t, srv)
	cfg.MaxBodyBytes = 2048
	c, rec := newTestClient(t, cfg)
	_, err := c.QueryCalls(t.Context(), testQuery)
	if !errors.Is(err, ErrBodyTooLarge) || ClassOf(err) != ClassPermanent {
		t.Fatalf("want ErrBodyTooLarge (permanent), got %v", err)
	}
	if len(rec.outcomes) != 1 {
		t.Errorf("%d attempts, want 1", len(rec.outcomes))
	}
}

func TestTLSVerification(t *testing.T) {
	srv := startTLS(t, statusHandler(200, nil, string(readFixture(t, "empty-success.json"))))
	t.Run("an untrusted certificate is misconfigured and not retried", func(t *testing.T) {
		cfg := testConfig(t, srv)
		cfg.CAFile = ""
		c, rec := newTestClient(t, cfg)
		_, err := c.QueryCalls(t.Context(), testQuery)
		if ClassOf(err) != ClassMisconfigured {
			t.Errorf("class = %v, want misconfigured (%v)", ClassOf(err), err)
		}
		if len(rec.outcomes) != 1 {
			t.Errorf("%d attempts, want 1", len(rec.outcomes))
		}
	})
	t.Run("a server name the certificate does not cover is misconfigured", func(t *testing.T) {
		cfg := testConfig(t, srv)
		cfg.ServerName = "cms.invalid"
		c, _ := newTestClient(t, cfg)
		if _, err := c.QueryCalls(t.Context(), testQuery); ClassOf(err) != ClassMisconfigured {
			t.Errorf("class = %v, want misconfigured (%v)", ClassOf(err), err)
		}
	})
	t.Run("insecure skip verify works and warns at NewClient", func(t *testing.T) {
		cfg := testConfig(t, srv)
		cfg.CAFile = ""
		cfg.InsecureSkipVerify = true
		var logs bytes.Buffer
		c, err := NewClient(cfg, Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: tickingClock()})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "verification is OFF") {
			t.Errorf("no warning logged: %q", logs.String())
		}
		if _, err := c.QueryCalls(t.Context(), testQuery); err != nil {
			t.Error(err)
		}
	})
	t.Run("verification is on by default and nothing is logged", func(t *testing.T) {
		var logs bytes.Buffer
		_, err := NewClient(testConfig(t, srv), Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if logs.Len() != 0 {
			t.Errorf("unexpected log: %q", logs.String())
		}
	})
}

func TestNewClientValidatesConfig(t *testing.T) {
	good := Config{URL: "https://10.22.26.181:28080", AK: "ak", SK: "sk"}
	tests := []struct {
		name   string
		change func(*Config)
		want   string // substring of the error; "" means valid
	}{
		{"a minimal config is valid", func(*Config) {}, ""},
		{"a URL with a path prefix is valid", func(c *Config) { c.URL = "https://cms.example.com/prefix/" }, ""},
		{"a missing URL is rejected", func(c *Config) { c.URL = "" }, "URL: missing"},
		{"an ftp URL is rejected", func(c *Config) { c.URL = "ftp://x" }, "URL: scheme must be https"},
		{"a URL with a query is rejected", func(c *Config) { c.URL = "https://x/?a=b" }, "URL: must not have a query"},
		{"a missing AK is rejected", func(c *Config) { c.AK = "" }, "AK: missing"},
		{"an AK with a slash is rejected", func(c *Config) { c.AK = "a/b" }, "AK: must not contain '/'"},
		{"a missing SK is rejected", func(c *Config) { c.SK = "" }, "SK: missing"},
		{"signed headers without host are rejected", func(c *Config) { c.SignHeaders = []string{"content-type"} }, "SignHeaders: must contain host"},
		{"an unknown signed header is rejected", func(c *Config) { c.SignHeaders = []string{"host", "x-date"} }, `SignHeaders: "x-date" cannot be signed`},
		{"signed headers are case-insensitive", func(c *Config) { c.SignHeaders = []string{"Host", " Content-Type"} }, ""},
		{"an unknown timestamp format is rejected", func(c *Config) { c.SignTimestamp = "nanos" }, "SignTimestamp: must be seconds or millis"},
		{"an unknown signature encoding is rejected", func(c *Config) { c.SignEncoding = "base32" }, "SignEncoding: must be hex or base64"},
		{"an unknown time zone is rejected", func(c *Config) { c.Timezone = "Mars/Olympus" }, `Timezone: unknown IANA zone "Mars/Olympus"`},
		{"Local is not a time zone name", func(c *Config) { c.Timezone = "Local" }, "Timezone: must be an IANA name"},
		{"an unknown day boundary mode is rejected", func(c *Config) { c.DayBoundaryMode = "local" }, "DayBoundaryMode: must be auto, both, tenant or utc"},
		{"too many attempts are rejected", func(c *Config) { c.MaxAttempts = 11 }, "MaxAttempts: must be 1..10"},
		{"a missing CA file is rejected", func(c *Config) { c.CAFile = "/nonexistent/ca.pem" }, "CAFile: open /nonexistent/ca.pem"},
		{"a host header with a space is rejected", func(c *Config) { c.HostHeader = "a b" }, "HostHeader: must be host"},
		{"a content type with trailing space is rejected", func(c *Config) { c.ContentType = "application/json " }, "ContentType"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.change(&cfg)
			c, err := NewClient(cfg, Deps{})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Location() != time.UTC || !strings.HasSuffix(c.endpoint, Path) {
					t.Errorf("location %v, endpoint %s", c.Location(), c.endpoint)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "sk") && strings.Contains(err.Error(), string(good.SK)+"\"") {
				t.Errorf("error shows the SK: %v", err)
			}
		})
	}
}

func TestNewClientUsesTheURLHostAsWrittenAndThePathPrefix(t *testing.T) {
	c, err := NewClient(Config{URL: "https://cms.example.com:28443/gw/", AK: "ak", SK: "sk", Timezone: "Asia/Shanghai"}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.Host(), c.path, c.endpoint, c.Location().String()}
	want := []string{"cms.example.com:28443", "/gw" + Path, "https://cms.example.com:28443/gw" + Path, "Asia/Shanghai"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, in string
		want     time.Duration
	}{
		{"seconds are parsed", "120", 2 * time.Minute},
		{"an HTTP date in the future is the time until it", "Thu, 02 Jan 2025 12:00:30 GMT", 30 * time.Second},
		{"an HTTP date in the past is zero", "Thu, 02 Jan 2025 11:00:00 GMT", 0},
		{"an empty header is zero", "", 0},
		{"garbage is zero", "soon", 0},
		{"a negative number is zero", "-5", 0},
		{"a huge number is capped at a day", "99999999", 24 * time.Hour},
		{"surrounding spaces are ignored", " 3 ", 3 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseRetryAfter(tc.in, now); got != tc.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestClassOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil is ok", nil, ClassOK},
		{"a wrapped 401 is auth", fmt.Errorf("step: %w", &StatusError{Code: 401}), ClassAuth},
		{"408 is transient", &StatusError{Code: 408}, ClassTransient},
		{"501 is transient as a precaution", &StatusError{Code: 501}, ClassTransient},
		{"400 is permanent", &StatusError{Code: 400}, ClassPermanent},
		{"0100999 is transient-limited", &ResultError{Code: "0100999"}, ClassTransientLimited},
		{"an unknown resultCode is permanent", &ResultError{Code: "0999999"}, ClassPermanent},
		{"an inconsistent window is transient-limited", fmt.Errorf("read window x: %w", ErrInconsistent), ClassTransientLimited},
		{"a canceled context is canceled", fmt.Errorf("x: %w", context.Canceled), ClassCanceled},
		{"a network error is transient", &TransportError{Err: io.ErrUnexpectedEOF}, ClassTransient},
		{"an unknown error is transient", errors.New("?"), ClassTransient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ClassOf(tc.err); got != tc.want {
				t.Errorf("ClassOf(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestBackoffStaysWithinItsBounds(t *testing.T) {
	c := &Client{baseDelay: 100 * time.Millisecond, maxDelay: time.Second}
	for attempt := 1; attempt <= 6; attempt++ {
		full := min(100*time.Millisecond<<(attempt-1), time.Second)
		for range 50 {
			if d := c.backoff(attempt, 0); d < full/2 || d > full {
				t.Fatalf("attempt %d: backoff %v outside [%v, %v]", attempt, d, full/2, full)
			}
		}
	}
	if d := c.backoff(1, 700*time.Millisecond); d != 700*time.Millisecond {
		t.Errorf("Retry-After 700ms gave %v", d)
	}
	if d := c.backoff(1, time.Hour); d != time.Second {
		t.Errorf("Retry-After 1h gave %v, want the 1s cap", d)
	}
}
