package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/callpub/callpub/poller/ccmssim"
)

func noEnv(string) (string, bool) { return "", false }

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestHelpDocumentsEveryFlagAndVariable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"--help"}, noEnv, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, want 0; stderr %s", code, stderr.String())
	}
	var c config
	fs := newFlagSet(&c)
	for name, env := range envNames {
		if fs.Lookup(name) == nil {
			t.Errorf("envNames has %s, which is not a flag", name)
		}
		if !strings.Contains(stdout.String(), "-"+name+"\t"+env) {
			t.Errorf("help lacks -%s and %s", name, env)
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if envNames[f.Name] == "" {
			t.Errorf("flag -%s has no environment variable", f.Name)
		}
	})
}

func TestBadInvocationsExitWithUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		code    int
		wantErr string
	}{
		{name: "an unknown flag exits 2", args: []string{"-bogus"}, code: 2, wantErr: "flag provided but not defined: -bogus"},
		{name: "a flag value of the wrong type exits 2", args: []string{"-vdns", "many"}, code: 2, wantErr: "invalid value"},
		{name: "a bad environment value exits 2 and names the variable", env: map[string]string{"CCMS_SIM_MAX_SKEW": "long"},
			code: 2, wantErr: "CCMS_SIM_MAX_SKEW"},
		{name: "stray arguments exit 2", args: []string{"serve"}, code: 2, wantErr: "unexpected arguments"},
		{name: "an unknown traffic level exits 1", args: []string{"-traffic", "rush", "-addr", "127.0.0.1:0"}, code: 1,
			wantErr: `traffic "rush"`},
		{name: "a bad fault spec exits 1", args: []string{"-faults", "5xx=7", "-addr", "127.0.0.1:0"}, code: 1, wantErr: "faults:"},
		{name: "an unknown time zone exits 1", env: map[string]string{"CCMS_SIM_TIMEZONE": "Mars/Olympus"}, code: 1,
			wantErr: "timezone"},
		{name: "an SK given twice exits 1", args: []string{"-sk", "x"}, env: map[string]string{"CCMS_SIM_SK_FILE": "/nonexistent"},
			code: 1, wantErr: "the SK is given twice"},
		{name: "too many VDNs exit 1", args: []string{"-vdns", "5001", "-addr", "127.0.0.1:0"}, code: 1, wantErr: "VDNs 5001"},
		{name: "a never-ending share above 1 exits 1", args: []string{"-never-end", "1.5", "-addr", "127.0.0.1:0"}, code: 1,
			wantErr: "never-end 1.5: want a share in 0..1"},
		{name: "an unknown poison kind exits 1", args: []string{"-faults", "poison=0.1,poison-kind=gremlin", "-addr", "127.0.0.1:0"}, code: 1,
			wantErr: `unknown poison kind "gremlin"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tt.args, envMap(tt.env), &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("exit %d stderr %q; want exit %d and %q", code, stderr.String(), tt.code, tt.wantErr)
			}
		})
	}
}

// The lies the simulator can tell are reachable from flags and variables.
func TestFlagsSwitchOnTheSimulatorsLies(t *testing.T) {
	var c config
	fs := newFlagSet(&c)
	args := []string{"-faults", "poison=0.05,poison-kind=null,count-per-page,page-cap=50"}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(fs, envMap(map[string]string{"CCMS_SIM_NEVER_END": "0.01"})); err != nil {
		t.Fatal(err)
	}
	o, err := simOptions(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := ccmssim.Faults{Poison: 0.05, PoisonKind: ccmssim.PoisonNull, CountPerPage: true, PageCap: 50}
	if o.Faults != want || o.Traffic.NeverEndShare != 0.01 {
		t.Errorf("faults %+v, never-ending share %v; want %+v and 0.01", o.Faults, o.Traffic.NeverEndShare, want)
	}
}

// lineWriter collects output and reports each completed line on a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.Reset()
			w.buf.WriteString(line)
			return len(p), nil
		}
		w.lines <- line
	}
}

func TestRunServesUntilCancelledWithFlagsOverEnv(t *testing.T) {
	dir := t.TempDir()
	skFile := filepath.Join(dir, "sk")
	if err := os.WriteFile(skFile, []byte("file-sk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := envMap(map[string]string{
		"CCMS_SIM_ADDR":     "127.0.0.1:1", // the flag below wins
		"CCMS_SIM_SK_FILE":  skFile,
		"CCMS_SIM_CERT_DIR": dir,
		"CCMS_SIM_VDNS":     "20",
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout := &lineWriter{lines: make(chan string, 10)}
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, env, stdout, &stderr) }()

	var url, cert string
	for url == "" || cert == "" {
		select {
		case line := <-stdout.lines:
			if m := regexp.MustCompile(`serving (https://\S+)`).FindStringSubmatch(line); m != nil {
				url = m[1]
				if !strings.Contains(line, "VDNs 1..20") {
					t.Errorf("CCMS_SIM_VDNS ignored: %s", line)
				}
			}
			if m := regexp.MustCompile(`certificate (\S+)`).FindStringSubmatch(line); m != nil {
				cert = m[1]
			}
		case code := <-done:
			t.Fatalf("run exited %d before serving; stderr %s", code, stderr.String())
		}
	}
	if filepath.Dir(cert) != dir {
		t.Errorf("certificate %s not in CCMS_SIM_CERT_DIR %s", cert, dir)
	}
	pemBytes, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/sim/oracle?from=0&to=1", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "[]" {
		t.Errorf("oracle: %d %s", resp.StatusCode, b)
	}

	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d after cancel, want 0; stderr %s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "file-sk") {
		t.Error("the SK appears in the logs")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
