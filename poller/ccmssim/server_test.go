package ccmssim

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStartServerServesSignedRequests(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "over HTTP"
		if useTLS {
			name = "over HTTPS with the written certificate"
		}
		t.Run("a signed request succeeds "+name, func(t *testing.T) {
			s, _ := newSim(t, Options{})
			srv, err := StartServer(s, ServerOptions{TLS: useTLS, CertDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := srv.Close(); err != nil {
					t.Error(err)
				}
			})
			client := &http.Client{Timeout: 10 * time.Second}
			if useTLS {
				pemBytes, err := os.ReadFile(srv.CAFile)
				if err != nil {
					t.Fatal(err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pemBytes) {
					t.Fatal("certificate file holds no PEM certificate")
				}
				client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
			} else if srv.CAFile != "" {
				t.Errorf("CAFile = %q without TLS", srv.CAFile)
			}
			u, err := url.Parse(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			b := body(t, queryBody(1, true, testNow.Add(-time.Hour), testNow, 10, 0))
			signed := newRequest(t, s.Now(), reqSpec{host: u.Host, body: b})
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+QueryCallsPath, bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			req.Header = signed.Header.Clone()
			req.Header.Del("Content-Length")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !bytes.Contains(got, []byte(`"resultCode":"0100000"`)) {
				t.Errorf("status %d body %s, want success", resp.StatusCode, got)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json;charset=UTF-8" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestTheOracleIsServedOverHTTP(t *testing.T) {
	s, _ := newSim(t, Options{VDNs: 3})
	from, to := testNow.Add(-3*time.Hour), testNow
	want := s.Oracle(from, to)
	if len(want) == 0 {
		t.Fatal("no calls")
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, OraclePath+"?from="+strconv.FormatInt(from.UnixMilli(), 10)+
		"&to="+strconv.FormatInt(to.UnixMilli(), 10), nil))
	var got []struct {
		VDN       int    `json:"vdn"`
		Inbound   bool   `json:"inbound"`
		CallID    string `json:"callId"`
		CallEnd   int64  `json:"callEnd"`
		VisibleAt int64  `json:"visibleAt"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d calls over HTTP, %d from Oracle", len(got), len(want))
	}
	for i := range got {
		if got[i].CallID != want[i].CallID || got[i].VDN != want[i].VDN || got[i].Inbound != want[i].Inbound ||
			got[i].CallEnd != want[i].CallEnd.UnixMilli() || got[i].VisibleAt != want[i].VisibleAt.UnixMilli() {
			t.Errorf("call %d: %+v over HTTP, %+v from Oracle", i, got[i], want[i])
		}
	}

	for _, q := range []string{"?from=x&to=1", "?from=2&to=1", "?from=1&to=2&vdn=4", ""} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, OraclePath+q, nil))
		if w.Code != http.StatusBadRequest {
			t.Errorf("GET %s%s: status %d, want 400", OraclePath, q, w.Code)
		}
	}
}

func TestRequestLogsNeverHoldTheAuthorizationHeader(t *testing.T) {
	var logs bytes.Buffer
	s, _ := newSim(t, Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	req := reqSpec{body: body(t, queryBody(7, false, testNow.Add(-time.Hour), testNow, 10, 20))}
	r := newRequest(t, s.Now(), req)
	auth := r.Header.Get("Authorization")
	s.ServeHTTP(httptest.NewRecorder(), r)
	serve(t, s, reqSpec{body: req.body, sk: "wrong-sk"})

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2:\n%s", len(lines), logs.String())
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"method": "POST", "vdn": 7.0, "direction": "out", "offset": 20.0,
		"status": 200.0, "result_code": "0100000"} {
		if first[k] != want {
			t.Errorf("log %s = %v, want %v", k, first[k], want)
		}
	}
	for _, secret := range []string{auth, auth[strings.LastIndex(auth, "/")+1:], testSK, "wrong-sk"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
}
