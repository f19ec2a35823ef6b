package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/callpub/callpub/dedupe"
)

func validVars() map[string]string {
	return map[string]string{
		"CALLPUB_CC_ID": "1", "CALLPUB_VDNS": "1-200,305", "CALLPUB_CCMS_URL": "https://ccms.example:28443",
		"CALLPUB_CCMS_AK": "ak-123", "CALLPUB_CCMS_SK": "sk-very-secret-value",
		"CALLPUB_KAFKA_BROKERS": "127.0.0.1:9092", "CALLPUB_KAFKA_PASSWORD": "kafka-very-secret-pw",
		"CALLPUB_KAFKA_USERNAME": "svc", "CALLPUB_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
	}
}

func TestConfigErrorsAreOneLineNamingTheVariable(t *testing.T) {
	cases := []struct {
		name string
		set  map[string]string
		want string
	}{
		{"a missing call center id", map[string]string{"CALLPUB_CC_ID": ""}, "config: CALLPUB_CC_ID: missing required value"},
		{"a malformed VDN range", map[string]string{"CALLPUB_VDNS": "1-20x"}, `config: CALLPUB_VDNS: "1-20x" is not a VDN or a range like 1-200`},
		{"a VDN beyond the API's range", map[string]string{"CALLPUB_VDNS": "1-6000"}, `config: CALLPUB_VDNS: "1-6000": VDNs are 1..5000 and a range goes low-high`},
		{"a bad duration", map[string]string{"CALLPUB_POLL_INTERVAL": "soon"}, `config: CALLPUB_POLL_INTERVAL: time: invalid duration "soon"`},
		{"an unknown direction", map[string]string{"CALLPUB_DIRECTIONS": "in,sideways"}, `config: CALLPUB_DIRECTIONS: "sideways" is not a direction: want in, out or in,out`},
		{"an unknown time zone", map[string]string{"CALLPUB_CCMS_TIMEZONE": "Mars/Olympus"}, `config: CALLPUB_CCMS_TIMEZONE: "Mars/Olympus" is not an IANA time zone`},
		{"hashing phone numbers without a key", map[string]string{"CALLPUB_PII": "hash"}, "config: CALLPUB_PII_KEY: required when CALLPUB_PII=hash"},
		{"a shard outside its count", map[string]string{"CALLPUB_SHARD": "2/2"}, `config: CALLPUB_SHARD: "2/2" is not i/n with 0 <= i < n`},
		{"a pod name without ordinal", map[string]string{"CALLPUB_SHARDS": "3", "CALLPUB_POD_NAME": "callpub"}, `config: CALLPUB_POD_NAME: "callpub" has no StatefulSet ordinal (want a name like callpub-2), needed with CALLPUB_SHARDS`},
		{"a secret given twice", map[string]string{"CALLPUB_CCMS_SK_FILE": "/dev/null"}, "config: CALLPUB_CCMS_SK and CALLPUB_CCMS_SK_FILE are both set"},
		{"an unknown signature encoding", map[string]string{"CALLPUB_CCMS_SIGN_ENCODING": "base32"}, `config: CALLPUB_CCMS_SIGN_ENCODING: must be hex or base64, got "base32"`},
		{"a timestamp format that does not exist", map[string]string{"CALLPUB_CCMS_SIGN_TIMESTAMP": "nanos"}, `config: CALLPUB_CCMS_SIGN_TIMESTAMP: must be seconds or millis, got "nanos"`},
		{"a CA file that is not there", map[string]string{"CALLPUB_CCMS_CA_FILE": "/nonexistent/ca.pem"}, "config: CALLPUB_CCMS_CA_FILE: open /nonexistent/ca.pem: no such file or directory"},
		{"a CC-CMS URL without https", map[string]string{"CALLPUB_CCMS_URL": "ftp://cms"}, `config: CALLPUB_CCMS_URL: scheme must be https (the API is HTTPS only), got "ftp"`},
		{"a sweep shorter than the lookback", map[string]string{"CALLPUB_SWEEP_LOOKBACK": "1m"}, "config: CALLPUB_SWEEP_LOOKBACK: 1m0s must be between CALLPUB_LOOKBACK (15m0s) and 48h"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vars := validVars()
			for k, v := range c.set {
				if v == "" {
					delete(vars, k)
				} else {
					vars[k] = v
				}
			}
			_, err := loadConfig(t.Context(), envconfig.MapLookuper(vars))
			if err == nil {
				t.Fatal("loadConfig accepted the configuration")
			}
			if err.Error() != c.want {
				t.Errorf("error\n got %q\nwant %q", err.Error(), c.want)
			}
			var stderr bytes.Buffer
			if code := exitCode(err, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if n := strings.Count(stderr.String(), "\n"); n != 1 {
				t.Errorf("%d lines on stderr, want one: %q", n, stderr.String())
			}
		})
	}
}

func TestSecretFilesAreRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sk")
	if err := os.WriteFile(path, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := validVars()
	delete(vars, "CALLPUB_CCMS_SK")
	vars["CALLPUB_CCMS_SK_FILE"] = path
	cfg, err := loadConfig(t.Context(), envconfig.MapLookuper(vars))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.CCMS.SK.Reveal(); got != "from-a-file" {
		t.Errorf("SK from file = %q", got)
	}
	vars["CALLPUB_CCMS_SK_FILE"] = filepath.Join(dir, "missing")
	_, err = loadConfig(t.Context(), envconfig.MapLookuper(vars))
	if err == nil || !strings.Contains(err.Error(), "CCMS_SK_FILE: open") {
		t.Errorf("missing secret file: %v", err)
	}
}

// No secret appears in any rendering of the loaded configuration.
func TestSecretsNeverAppearInOutput(t *testing.T) {
	vars := validVars()
	vars["CALLPUB_PII"], vars["CALLPUB_PII_KEY"] = "hash", "pii-very-secret-key"
	cfg, err := loadConfig(t.Context(), envconfig.MapLookuper(vars))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "%v\n%+v\n%#v\n", cfg, cfg, cfg)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("config", "cfg", cfg, "ccms", cfg.CCMS, "kafka", cfg.Kafka)
	slog.New(slog.NewTextHandler(&out, nil)).Info("config", "cfg", cfg)
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(b)
	for _, secret := range []string{"sk-very-secret-value", "kafka-very-secret-pw", "pii-very-secret-key"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("secret %q printed", secret)
		}
	}
	if !strings.Contains(out.String(), "[redacted]") {
		t.Error("no [redacted] marker: the test formatted nothing")
	}
}

// Every variable has a description in --help and a row in README.md.
func TestEveryVariableIsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	help := envHelp()
	for _, v := range envVars() {
		name := "CALLPUB_" + v.Name
		if !strings.Contains(help, name) {
			t.Errorf("%s missing from --help", name)
		}
		if ccmsHelp[v.Name] == "" && kafkaHelp[v.Name] == "" && helpText[v.Name] == "" {
			t.Errorf("%s has no description", name)
		}
		if !strings.Contains(string(readme), "`"+name+"`") {
			t.Errorf("%s missing from README.md", name)
		}
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{"no command", nil},
		{"an unknown command", []string{"serve"}},
		{"state without a command", []string{"state"}},
		{"a bad flag", []string{"tail", "-from", "yesterday"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := dispatch(t.Context(), c.args, envconfig.MapLookuper(nil), &out, &errOut)
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("err %v, want a usage error", err)
			}
		})
	}
}

func TestStateReportsARunningService(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"CALLPUB_STATE_DIR": dir, "CALLPUB_STATE_LOCK_TIMEOUT": "200ms"}
	holder := openTestStore(t, dir)
	defer holder.Close()
	var out bytes.Buffer
	err := state([]string{"show"}, envconfig.MapLookuper(vars), &out)
	if err == nil || !strings.Contains(err.Error(), "held by a running callpub (stop the service first)") {
		t.Fatalf("state show on a held store: %v", err)
	}
}

func openTestStore(t *testing.T, dir string) interface{ Close() error } {
	t.Helper()
	s, err := dedupe.Open(dedupe.Options{Path: filepath.Join(dir, storeFile), LockTimeout: time.Second, CCID: 1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
