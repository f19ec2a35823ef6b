package ccmssim

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The vectors of ccms-api.md §2.5.
const (
	vectorBody           = `{"ccId":1,"vdn":25,"beginDate":1735689600000,"endDate":1735775999000,"isCallIn":"true","limit":100,"offset":0}`
	vectorBodyNormalized = `%7B%22ccId%22%3A1%2C%22vdn%22%3A25%2C%22beginDate%22%3A1735689600000%2C%22endDate%22%3A1735775999000%2C%22isCallIn%22%3A%22true%22%2C%22limit%22%3A100%2C%22offset%22%3A0%7D`
)

func TestVerifierReproducesTheTestVectors(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name          string
		signed        string
		contentType   string
		wantCanonical string
		wantKey       string
		authorization string
	}{
		{
			name:   "vector A signs host only",
			signed: "host",
			wantCanonical: "POST\n/rest/cmsapp/v2/openapi/vdn/querycalls\nhost\nhost:10.22.26.181%3A28080\n" +
				vectorBodyNormalized,
			wantKey:       "a16efb5628d4a4a2599eb4d3355234cd99c06d11639421dc30d744a92bc64cb9",
			authorization: "auth-v2/example-ak/2025-01-02T03:04:05Z/host/ab4eb7fa7143e5e2af56db23beddd396c339ebdf82deb7839632774a81e29746",
		},
		{
			name:        "vector B signs content-length, content-type and host",
			signed:      "content-length;content-type;host",
			contentType: "application/json;charset=UTF-8",
			wantCanonical: "POST\n/rest/cmsapp/v2/openapi/vdn/querycalls\ncontent-length;content-type;host\ncontent-length:110\n" +
				"content-type:application%2Fjson%3Bcharset%3DUTF-8\nhost:10.22.26.181%3A28080\n" + vectorBodyNormalized,
			wantKey:       "daccadadeff43d7fb224d1ff63ae0aabeb777130445be3627054fd6f9a0738bb",
			authorization: "auth-v2/example-ak/2025-01-02T03:04:05Z/content-length;content-type;host/3a8b3f12bb491eeed88e9ecb123c73ed3cb09e303ff2735c50ea985e269af034",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := map[string]string{"host": "10.22.26.181:28080"}
			if tt.contentType != "" {
				headers["content-type"] = tt.contentType
				headers["content-length"] = "110"
			}
			canonical := canonicalRequest("POST", QueryCallsPath, "", tt.signed, headers, []byte(vectorBody), SignVariant{})
			if canonical != tt.wantCanonical {
				t.Errorf("canonical request =\n%s\nwant\n%s", canonical, tt.wantCanonical)
			}
			prefix := "auth-v2/example-ak/2025-01-02T03:04:05Z/" + tt.signed
			if got := signingKey("example-sk", prefix); got != tt.wantKey {
				t.Errorf("signing key = %s, want %s", got, tt.wantKey)
			}

			r := httptest.NewRequest("POST", "https://10.22.26.181:28080"+QueryCallsPath, strings.NewReader(vectorBody))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
				r.Header.Set("Content-Length", "110")
			}
			r.Header.Set("authorization", tt.authorization)
			if err := verify(r, []byte(vectorBody), "example-ak", "example-sk", at, 15*time.Minute, SignVariant{}); err != nil {
				t.Errorf("verify: %v", err)
			}
			// The test signer agrees with the vector too, so tests sign like the vectors.
			stamp := "2025-01-02T03:04:05Z"
			if got := testAuthorization("example-ak", "example-sk", stamp, "POST", QueryCallsPath, headers, []byte(vectorBody)); got != tt.authorization {
				t.Errorf("test signer = %s, want %s", got, tt.authorization)
			}
			if err := verify(r, []byte(vectorBody), "example-ak", "other-sk", at, 15*time.Minute, SignVariant{}); err == nil {
				t.Error("verify accepted the vector with another SK")
			}
		})
	}
}

func TestVerifyRefusesBadSignatures(t *testing.T) {
	now := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	b := []byte(`{"ccId":1}`)
	tests := []struct {
		name   string
		spec   reqSpec
		mutate func(r *httpRequest)
	}{
		{name: "a wrong SK is refused", spec: reqSpec{sk: "wrong"}},
		{name: "an unknown AK is refused", spec: reqSpec{ak: "someone-else"}},
		{name: "a timestamp 16 minutes old is refused", spec: reqSpec{at: now.Add(-16 * time.Minute)}},
		{name: "a timestamp 16 minutes ahead is refused", spec: reqSpec{at: now.Add(16 * time.Minute)}},
		{name: "a signature without host is refused", spec: reqSpec{signed: []string{"content-type"}}},
		{name: "a signed host other than the Host received is refused", spec: reqSpec{signedHost: "10.0.0.1:28443"}},
		{name: "a body changed after signing is refused", mutate: func(r *httpRequest) { r.body = []byte(`{"ccId":2}`) }},
		{name: "a missing Authorization header is refused", spec: reqSpec{noAuth: true}},
		{name: "a header that is not auth-v2 is refused", mutate: func(r *httpRequest) {
			r.r.Header.Set("Authorization", "SDK-HMAC-SHA256 Access=test-ak")
		}},
		{name: "an upper-case signed header name is refused", mutate: func(r *httpRequest) {
			r.r.Header.Set("Authorization", strings.Replace(r.r.Header.Get("Authorization"), "/content-length;content-type;host/", "/content-length;Content-Type;host/", 1))
		}},
		{name: "a content type changed after signing is refused", mutate: func(r *httpRequest) {
			r.r.Header.Set("Content-Type", "application/json;charset=UTF-8")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.body = b
			hr := &httpRequest{r: newRequest(t, now, tt.spec), body: b}
			if tt.mutate != nil {
				tt.mutate(hr)
			}
			err := verify(hr.r, hr.body, testAK, testSK, now, 15*time.Minute, SignVariant{})
			var ae *authError
			if !errors.As(err, &ae) {
				t.Fatalf("verify = %v, want an *authError", err)
			}
			if strings.Contains(err.Error(), testSK) {
				t.Errorf("error %q contains the SK", err)
			}
		})
	}
}

type httpRequest struct {
	r    *http.Request
	body []byte
}

func TestVerifyAcceptsTheDocumentedVariants(t *testing.T) {
	now := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	b := []byte(`{"ccId":1}`)
	tests := []struct {
		name string
		spec reqSpec
	}{
		{name: "a timestamp without milliseconds is accepted", spec: reqSpec{}},
		{name: "a timestamp with milliseconds is accepted", spec: reqSpec{millis: true, at: now.Add(123 * time.Millisecond)}},
		{name: "a timestamp 14 minutes old is accepted", spec: reqSpec{at: now.Add(-14 * time.Minute)}},
		{name: "a timestamp 14 minutes ahead is accepted", spec: reqSpec{at: now.Add(14 * time.Minute)}},
		{name: "host alone is accepted", spec: reqSpec{signed: []string{"host"}}},
		{name: "host and content-type are accepted", spec: reqSpec{signed: []string{"host", "content-type"}}},
		{name: "a host without a port is accepted when sent as signed", spec: reqSpec{host: "ccms.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.body = b
			r := newRequest(t, now, tt.spec)
			if err := verify(r, b, testAK, testSK, now, 15*time.Minute, SignVariant{}); err != nil {
				t.Errorf("verify: %v", err)
			}
		})
	}
}

func TestNormalizeKeepsOnlyUnreservedBytes(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unreserved characters stay", "AZaz09-._~", "AZaz09-._~"},
		{"a space becomes %20, never +", "a b", "a%20b"},
		{"reserved characters use upper-case hex", "a/b:c;d=e", "a%2Fb%3Ac%3Bd%3De"},
		{"each UTF-8 byte is encoded", "é", "%C3%A9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := normalize(tt.in); got != tt.want {
				t.Errorf("normalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := testNormalize(tt.in); got != tt.want {
				t.Errorf("testNormalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// A Base64 signature (A4) contains "/" about half the time; the header must
// still split into its five fields.
func TestVerifyAcceptsABase64SignatureThatContainsASlash(t *testing.T) {
	headers := map[string]string{"host": "10.22.26.181:28080"}
	v := SignVariant{Base64: true}
	canonical := canonicalRequest("POST", QueryCallsPath, "", "host", headers, []byte(vectorBody), v)
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 1000 {
		stamp := at.Add(time.Duration(i) * time.Second)
		prefix := "auth-v2/example-ak/" + stamp.Format(timestampLayout) + "/host"
		sig := signature("example-sk", prefix, canonical, true)
		if !strings.Contains(sig, "/") {
			continue
		}
		r := httptest.NewRequest("POST", "https://10.22.26.181:28080"+QueryCallsPath, strings.NewReader(vectorBody))
		r.Header.Set("Authorization", prefix+"/"+sig)
		if err := verify(r, []byte(vectorBody), "example-ak", "example-sk", stamp, time.Minute, v); err != nil {
			t.Fatalf("signature %s: %v", sig, err)
		}
		if err := verify(r, []byte(vectorBody), "example-ak", "example-sk", stamp, time.Minute, SignVariant{}); err == nil {
			t.Fatal("a server on hex accepted a Base64 signature")
		}
		return
	}
	t.Fatal("no signature with a slash in 1000 timestamps")
}
