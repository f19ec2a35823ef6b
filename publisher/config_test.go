package publisher

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// validConfig is what the env tags' defaults give, plus brokers.
func validConfig() Config {
	return Config{
		Brokers:      []string{"127.0.0.1:9092", "kafka-1.example:9093"},
		Topic:        "cc.calls.completed",
		Compression:  "lz4",
		BatchTimeout: 5 * time.Millisecond,
		WriteTimeout: 10 * time.Second,
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no brokers", func(c *Config) { c.Brokers = nil }, "CALLPUB_KAFKA_BROKERS: empty: give at least one host:port"},
		{"a broker without a port", func(c *Config) { c.Brokers = []string{"kafka"} }, `CALLPUB_KAFKA_BROKERS: "kafka" is not host:port`},
		{"no topic", func(c *Config) { c.Topic = "" }, "CALLPUB_KAFKA_TOPIC: empty"},
		{"a topic with a space", func(c *Config) { c.Topic = "cc calls" }, `CALLPUB_KAFKA_TOPIC: "cc calls" is not a legal Kafka topic name`},
		{"the control topic is the call topic", func(c *Config) { c.ControlTopic = c.Topic },
			`CALLPUB_KAFKA_CONTROL_TOPIC: "cc.calls.completed" is also CALLPUB_KAFKA_TOPIC: use a separate topic`},
		{"an unknown compression", func(c *Config) { c.Compression = "gzipx" },
			`CALLPUB_KAFKA_COMPRESSION: "gzipx" is not one of none, snappy, lz4, zstd`},
		{"gzip is not offered", func(c *Config) { c.Compression = "gzip" },
			`CALLPUB_KAFKA_COMPRESSION: "gzip" is not one of none, snappy, lz4, zstd`},
		{"no compression chosen at all", func(c *Config) { c.Compression = "" },
			`CALLPUB_KAFKA_COMPRESSION: "" is not one of none, snappy, lz4, zstd`},
		{"an unknown SASL mechanism", func(c *Config) { c.SASLMechanism = "GSSAPI" },
			`CALLPUB_KAFKA_SASL_MECHANISM: "GSSAPI" is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
		{"SASL without a username", func(c *Config) { c.SASLMechanism, c.Password = "PLAIN", "x" },
			"CALLPUB_KAFKA_USERNAME: empty, but SASL PLAIN needs it"},
		{"SASL without a password", func(c *Config) { c.SASLMechanism, c.Username = "SCRAM-SHA-256", "u" },
			"CALLPUB_KAFKA_PASSWORD: empty, but SASL SCRAM-SHA-256 needs it"},
		{"a password without SASL", func(c *Config) { c.Password = "x" },
			"CALLPUB_KAFKA_SASL_MECHANISM: empty, but a username or password is set: choose PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
		{"a CA file without TLS", func(c *Config) { c.CAFile = notPEM }, "CALLPUB_KAFKA_CA_FILE: set, but CALLPUB_KAFKA_TLS is false"},
		{"a CA file that does not exist", func(c *Config) { c.TLS, c.CAFile = true, filepath.Join(dir, "missing.pem") },
			"CALLPUB_KAFKA_CA_FILE: open " + filepath.Join(dir, "missing.pem") + ": no such file or directory"},
		{"a CA file without a certificate", func(c *Config) { c.TLS, c.CAFile = true, notPEM },
			"CALLPUB_KAFKA_CA_FILE: " + notPEM + " holds no PEM certificate"},
		{"a zero batch timeout", func(c *Config) { c.BatchTimeout = 0 },
			"CALLPUB_KAFKA_BATCH_TIMEOUT: 0s: must be above 0 (a few ms; kafka-go's zero means 1s)"},
		{"a zero write timeout", func(c *Config) { c.WriteTimeout = 0 }, "CALLPUB_KAFKA_WRITE_TIMEOUT: 0s: must be above 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.edit(&cfg)
			_, err := New(cfg, nil, prometheus.NewRegistry())
			if err == nil {
				t.Fatal("New accepted it")
			}
			if want := "kafka config: " + tt.want; err.Error() != want {
				t.Errorf("err = %q\nwant  %q", err, want)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Var, "CALLPUB_KAFKA_") {
				t.Errorf("err is not a *ConfigError naming a variable: %#v", err)
			}
		})
	}
}

func TestNewReportsEveryProblemAtOnce(t *testing.T) {
	_, err := New(Config{}, nil, nil)
	if err == nil {
		t.Fatal("New accepted an empty config")
	}
	for _, v := range []string{"BROKERS", "TOPIC", "COMPRESSION", "BATCH_TIMEOUT", "WRITE_TIMEOUT"} {
		if !strings.Contains(err.Error(), "CALLPUB_KAFKA_"+v) {
			t.Errorf("error does not mention CALLPUB_KAFKA_%s: %v", v, err)
		}
	}
}

func TestNewAcceptsEverySupportedSetting(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"the defaults", func(*Config) {}},
		{"no compression", func(c *Config) { c.Compression = "none" }},
		{"snappy", func(c *Config) { c.Compression = "snappy" }},
		{"zstd", func(c *Config) { c.Compression = "zstd" }},
		{"SASL PLAIN over TLS", func(c *Config) { c.TLS, c.SASLMechanism, c.Username, c.Password = true, "PLAIN", "u", "p" }},
		{"SCRAM-SHA-256", func(c *Config) { c.SASLMechanism, c.Username, c.Password = "SCRAM-SHA-256", "u", "p" }},
		{"SCRAM-SHA-512 with a control topic", func(c *Config) {
			c.SASLMechanism, c.Username, c.Password, c.ControlTopic = "SCRAM-SHA-512", "u", "p", "cc.calls.control"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.edit(&cfg)
			p, err := New(cfg, nil, prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestNewSpellsOutTheWriterSettings(t *testing.T) {
	cfg := validConfig()
	cfg.ControlTopic = "cc.calls.control"
	p, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w := p.w
	switch {
	case w.RequiredAcks != -1:
		t.Errorf("RequiredAcks = %v, want all (-1)", w.RequiredAcks)
	case w.BatchTimeout != 5*time.Millisecond:
		t.Errorf("BatchTimeout = %v", w.BatchTimeout)
	case w.AllowAutoTopicCreation:
		t.Error("topic auto-creation is on")
	case w.Async:
		t.Error("the writer is asynchronous")
	case w.Topic != "":
		t.Errorf("the writer has a fixed topic %q", w.Topic)
	case w.Compression.String() != "lz4":
		t.Errorf("Compression = %v", w.Compression)
	case w.Transport == nil || w.ErrorLogger == nil || w.Logger != nil:
		t.Error("transport, error logger or logger not as intended")
	}
	if got := w.Balancer.Balance(kafkaMessage("25"), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11); got != javaPartition("25", 12) {
		t.Errorf("balancer sends key 25 to partition %d, Java to %d", got, javaPartition("25", 12))
	}
}

func TestDuplicateMetricRegistrationIsAnError(t *testing.T) {
	reg := prometheus.NewRegistry()
	p, err := New(validConfig(), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := New(validConfig(), nil, reg); err == nil {
		t.Error("a second publisher on one registry registered its metrics again")
	}
}
