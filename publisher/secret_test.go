package publisher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

const testPassword = "hunter2-very-secret"

func TestSecretNeverAppearsInOutput(t *testing.T) {
	cfg := Config{Brokers: []string{"127.0.0.1:9092"}, Topic: "t", Compression: "lz4",
		SASLMechanism: "SCRAM-SHA-512", Username: "callpub", Password: testPassword,
		BatchTimeout: 5e6, WriteTimeout: 1e10}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "kafka", cfg, "password", cfg.Password)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "kafka", cfg, "password", cfg.Password)
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":  fmt.Sprintf("%v", cfg),
		"%+v": fmt.Sprintf("%+v", cfg),
		"%#v": fmt.Sprintf("%#v", cfg),
		//lint:ignore S1025 the test checks what fmt prints, not the String method
		"%s":        fmt.Sprintf("%s", cfg.Password),
		"%q":        fmt.Sprintf("%q", cfg.Password),
		"Sprint":    fmt.Sprint(cfg.Password),
		"slog":      logs.String(),
		"json":      string(js),
		"json only": mustJSON(t, cfg.Password),
	}
	for name, out := range outputs {
		if strings.Contains(out, testPassword) {
			t.Errorf("%s shows the password: %s", name, out)
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("%s has no [redacted] marker: %s", name, out)
		}
	}
	if cfg.Password.Reveal() != testPassword {
		t.Error("Reveal does not return the secret")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A config error must not echo the password, whatever else is wrong.
func TestConfigErrorsNeverShowThePassword(t *testing.T) {
	cfg := Config{Brokers: []string{"nohost"}, Topic: "", Compression: "gzipx",
		SASLMechanism: "SCRAM-SHA-1", Username: "", Password: testPassword}
	_, err := New(cfg, nil, prometheus.NewRegistry())
	if err == nil {
		t.Fatal("New accepted a broken config")
	}
	if strings.Contains(err.Error(), testPassword) {
		t.Errorf("error shows the password: %v", err)
	}
}
