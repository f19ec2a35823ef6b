package publisher

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callpub/callpub/schemas"
)

// validConfig is what the env tags' defaults give, plus brokers.
func validConfig() Config {
	return Config{
		Brokers:         []string{"127.0.0.1:9092", "kafka-1.example:9093"},
		Topic:           "cc.calls.completed",
		Compression:     "lz4",
		BatchTimeout:    5 * time.Millisecond,
		WriteTimeout:    10 * time.Second,
		MaxMessageBytes: 1_000_000,
	}
}

// Each bad config is one *ConfigError naming the Go field and giving the
// reason. cmd/callpub's TestKafkaConfigErrorsNameTheVariable feeds the same
// configs through its naming of variables and checks the full messages.
func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		edit          func(*Config)
		field, reason string
	}{
		{"no brokers", func(c *Config) { c.Brokers = nil }, "Brokers", "empty: give at least one host:port"},
		{"a broker without a port", func(c *Config) { c.Brokers = []string{"kafka"} }, "Brokers", `"kafka" is not host:port`},
		{"no topic", func(c *Config) { c.Topic = "" }, "Topic", "empty"},
		{"a topic with a space", func(c *Config) { c.Topic = "cc calls" }, "Topic", `"cc calls" is not a legal Kafka topic name`},
		{"the control topic is the call topic", func(c *Config) { c.ControlTopic = c.Topic },
			"ControlTopic", `"cc.calls.completed" is also CALLPUB_KAFKA_TOPIC: use a separate topic`},
		{"a dead-letter topic with a slash", func(c *Config) { c.DLQTopic = "cc/dlq" },
			"DLQTopic", `"cc/dlq" is not a legal Kafka topic name`},
		{"a dead-letter topic name longer than Kafka allows", func(c *Config) { c.DLQTopic = strings.Repeat("d", 250) },
			"DLQTopic", `"` + strings.Repeat("d", 250) + `" is not a legal Kafka topic name`},
		{"the dead-letter topic is the call topic", func(c *Config) { c.DLQTopic = c.Topic },
			"DLQTopic", `"cc.calls.completed" is also CALLPUB_KAFKA_TOPIC: use a separate topic`},
		{"the dead-letter topic is the control topic", func(c *Config) { c.ControlTopic, c.DLQTopic = "cc.calls.control", "cc.calls.control" },
			"DLQTopic", `"cc.calls.control" is also CALLPUB_KAFKA_CONTROL_TOPIC: use a separate topic`},
		{"a state topic with a space", func(c *Config) { c.StateTopic = "cc calls state" },
			"StateTopic", `"cc calls state" is not a legal Kafka topic name`},
		{"a state topic name longer than Kafka allows", func(c *Config) { c.StateTopic = strings.Repeat("s", 250) },
			"StateTopic", `"` + strings.Repeat("s", 250) + `" is not a legal Kafka topic name`},
		{"the state topic is the call topic", func(c *Config) { c.StateTopic = c.Topic },
			"StateTopic", `"cc.calls.completed" is also CALLPUB_KAFKA_TOPIC: use a separate topic`},
		{"the state topic is the control topic", func(c *Config) { c.ControlTopic, c.StateTopic = "cc.calls.control", "cc.calls.control" },
			"StateTopic", `"cc.calls.control" is also CALLPUB_KAFKA_CONTROL_TOPIC: use a separate topic`},
		{"the state topic is the dead-letter topic", func(c *Config) { c.DLQTopic, c.StateTopic = "cc.calls.dlq", "cc.calls.dlq" },
			"StateTopic", `"cc.calls.dlq" is also CALLPUB_KAFKA_DLQ_TOPIC: use a separate topic`},
		{"an unknown compression", func(c *Config) { c.Compression = "gzipx" },
			"Compression", `"gzipx" is not one of none, snappy, lz4, zstd`},
		{"gzip is not offered", func(c *Config) { c.Compression = "gzip" },
			"Compression", `"gzip" is not one of none, snappy, lz4, zstd`},
		{"no compression chosen at all", func(c *Config) { c.Compression = "" },
			"Compression", `"" is not one of none, snappy, lz4, zstd`},
		{"an unknown SASL mechanism", func(c *Config) { c.SASLMechanism = "GSSAPI" },
			"SASLMechanism", `"GSSAPI" is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
		{"SASL without a username", func(c *Config) { c.SASLMechanism, c.Password = "PLAIN", "x" },
			"Username", "empty, but SASL PLAIN needs it"},
		{"SASL without a password", func(c *Config) { c.SASLMechanism, c.Username = "SCRAM-SHA-256", "u" },
			"Password", "empty, but SASL SCRAM-SHA-256 needs it"},
		{"a password without SASL", func(c *Config) { c.Password = "x" },
			"SASLMechanism", "empty, but a username or password is set: choose PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
		{"a CA file without TLS", func(c *Config) { c.CAFile = notPEM }, "CAFile", "set, but CALLPUB_KAFKA_TLS is false"},
		{"a CA file that does not exist", func(c *Config) { c.TLS, c.CAFile = true, filepath.Join(dir, "missing.pem") },
			"CAFile", "open " + filepath.Join(dir, "missing.pem") + ": no such file or directory"},
		{"a CA file without a certificate", func(c *Config) { c.TLS, c.CAFile = true, notPEM },
			"CAFile", notPEM + " holds no PEM certificate"},
		{"a zero batch timeout", func(c *Config) { c.BatchTimeout = 0 },
			"BatchTimeout", "0s: must be above 0 (a few ms; kafka-go's zero means 1s)"},
		{"a zero write timeout", func(c *Config) { c.WriteTimeout = 0 }, "WriteTimeout", "0s: must be above 0"},
		{"a message limit below 4 KiB", func(c *Config) { c.MaxMessageBytes = 4095 },
			"MaxMessageBytes", "4095: must be at least 4096 (Kafka's default is 1000000)"},
		{"a negative message limit", func(c *Config) { c.MaxMessageBytes = -1 },
			"MaxMessageBytes", "-1: must be at least 4096 (Kafka's default is 1000000)"},
		{"an unknown event mode", func(c *Config) { c.EventMode = "json" },
			"EventMode", `"json" is not structured or binary`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.edit(&cfg)
			_, err := New(cfg, nil, prometheus.NewRegistry())
			if err == nil {
				t.Fatal("New accepted it")
			}
			if want := "kafka config: " + tt.field + ": " + tt.reason; err.Error() != want {
				t.Errorf("err = %q\nwant  %q", err, want)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field || ce.Err.Error() != tt.reason {
				t.Errorf("err is not a *ConfigError naming the field %s: %#v", tt.field, err)
			}
		})
	}
}

func TestNewReportsEveryProblemAtOnce(t *testing.T) {
	_, err := New(Config{}, nil, nil)
	if err == nil {
		t.Fatal("New accepted an empty config")
	}
	fields := configErrorFields(err)
	for _, f := range []string{"Brokers", "Topic", "Compression", "BatchTimeout", "WriteTimeout"} {
		if !slices.Contains(fields, f) {
			t.Errorf("error has no *ConfigError for %s: %v", f, err)
		}
	}
}

// configErrorFields lists the Field of every *ConfigError in err, however
// joined or wrapped.
func configErrorFields(err error) []string {
	if ce, ok := err.(*ConfigError); ok {
		return []string{ce.Field}
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		var fields []string
		for _, e := range u.Unwrap() {
			fields = append(fields, configErrorFields(e)...)
		}
		return fields
	case interface{ Unwrap() error }:
		return configErrorFields(u.Unwrap())
	}
	return nil
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
		{"a dead-letter topic", func(c *Config) { c.DLQTopic = "cc.calls.dlq" }},
		{"control and dead-letter topics", func(c *Config) { c.ControlTopic, c.DLQTopic = "cc.calls.control", "cc.calls.dlq" }},
		{"a state topic", func(c *Config) { c.StateTopic = "cc.calls.state" }},
		{"control, dead-letter and state topics", func(c *Config) {
			c.ControlTopic, c.DLQTopic, c.StateTopic = "cc.calls.control", "cc.calls.dlq", "cc.calls.state"
		}},
		{"the smallest message limit", func(c *Config) { c.MaxMessageBytes = 4096 }},
		{"binary mode", func(c *Config) { c.EventMode = schemas.Binary }},
		{"structured mode spelled out", func(c *Config) { c.EventMode = schemas.Structured }},
		{"no message limit set in code: the default", func(c *Config) { c.MaxMessageBytes = 0 }},
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
