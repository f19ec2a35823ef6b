package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-envconfig"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/publisher"
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
		{"group mode without a state topic", map[string]string{"CALLPUB_GROUP_ID": "callpub"},
			"config: CALLPUB_GROUP_ID: group mode needs CALLPUB_KAFKA_STATE_TOPIC: a replica handed a stream rebuilds its state from it"},
		{"group mode with static shards", map[string]string{"CALLPUB_GROUP_ID": "callpub", "CALLPUB_KAFKA_STATE_TOPIC": "cc.state", "CALLPUB_SHARD": "0/2"},
			"config: CALLPUB_GROUP_ID: set together with CALLPUB_SHARD or CALLPUB_SHARDS: the group shares the streams itself, unset them"},
		{"a group session timeout the broker refuses", map[string]string{"CALLPUB_GROUP_ID": "callpub", "CALLPUB_KAFKA_STATE_TOPIC": "cc.state", "CALLPUB_GROUP_SESSION_TIMEOUT": "2s"},
			"config: CALLPUB_GROUP_SESSION_TIMEOUT: must be between 6s and 30m (the broker's defaults), got 2s"},
		{"a secret given twice", map[string]string{"CALLPUB_CCMS_SK_FILE": "/dev/null"}, "config: CALLPUB_CCMS_SK and CALLPUB_CCMS_SK_FILE are both set"},
		{"an unknown signature encoding", map[string]string{"CALLPUB_CCMS_SIGN_ENCODING": "base32"}, `config: CALLPUB_CCMS_SIGN_ENCODING: must be hex or base64, got "base32"`},
		{"a timestamp format that does not exist", map[string]string{"CALLPUB_CCMS_SIGN_TIMESTAMP": "nanos"}, `config: CALLPUB_CCMS_SIGN_TIMESTAMP: must be seconds or millis, got "nanos"`},
		{"a CA file that is not there", map[string]string{"CALLPUB_CCMS_CA_FILE": "/nonexistent/ca.pem"}, "config: CALLPUB_CCMS_CA_FILE: open /nonexistent/ca.pem: no such file or directory"},
		{"a CC-CMS URL without https", map[string]string{"CALLPUB_CCMS_URL": "ftp://cms"}, `config: CALLPUB_CCMS_URL: scheme must be https (the API is HTTPS only), got "ftp"`},
		{"an unknown event mode", map[string]string{"CALLPUB_EVENT_MODE": "json"}, `config: CALLPUB_EVENT_MODE: "json" is not structured or binary`},
		{"a negative per-stream series maximum", map[string]string{"CALLPUB_METRICS_PER_STREAM_MAX": "-1"}, "config: CALLPUB_METRICS_PER_STREAM_MAX: must not be negative, got -1"},
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

// validKafka is what the env tags' defaults give, plus brokers.
func validKafka() publisher.Config {
	return publisher.Config{
		Brokers:      []string{"127.0.0.1:9092", "kafka-1.example:9093"},
		Topic:        "cc.calls.completed",
		Compression:  "lz4",
		BatchTimeout: 5 * time.Millisecond,
		WriteTimeout: 10 * time.Second,
	}
}

// publisher.New names a bad value's Config field (its TestNewRejectsBadConfig
// has the same cases); here the field becomes the variable, in exactly the
// message run and check show.
func TestKafkaConfigErrorsNameTheVariable(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*publisher.Config)
		want string
	}{
		{"no brokers", func(c *publisher.Config) { c.Brokers = nil }, "CALLPUB_KAFKA_BROKERS: empty: give at least one host:port"},
		{"a broker without a port", func(c *publisher.Config) { c.Brokers = []string{"kafka"} }, `CALLPUB_KAFKA_BROKERS: "kafka" is not host:port`},
		{"no topic", func(c *publisher.Config) { c.Topic = "" }, "CALLPUB_KAFKA_TOPIC: empty"},
		{"a topic with a space", func(c *publisher.Config) { c.Topic = "cc calls" }, `CALLPUB_KAFKA_TOPIC: "cc calls" is not a legal Kafka topic name`},
		{"the control topic is the call topic", func(c *publisher.Config) { c.ControlTopic = c.Topic },
			`CALLPUB_KAFKA_CONTROL_TOPIC: "cc.calls.completed" is also CALLPUB_KAFKA_TOPIC: use a separate topic`},
		{"an unknown compression", func(c *publisher.Config) { c.Compression = "gzipx" },
			`CALLPUB_KAFKA_COMPRESSION: "gzipx" is not one of none, snappy, lz4, zstd`},
		{"gzip is not offered", func(c *publisher.Config) { c.Compression = "gzip" },
			`CALLPUB_KAFKA_COMPRESSION: "gzip" is not one of none, snappy, lz4, zstd`},
		{"no compression chosen at all", func(c *publisher.Config) { c.Compression = "" },
			`CALLPUB_KAFKA_COMPRESSION: "" is not one of none, snappy, lz4, zstd`},
		{"an unknown SASL mechanism", func(c *publisher.Config) { c.SASLMechanism = "GSSAPI" },
			`CALLPUB_KAFKA_SASL_MECHANISM: "GSSAPI" is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
		{"SASL without a username", func(c *publisher.Config) { c.SASLMechanism, c.Password = "PLAIN", "x" },
			"CALLPUB_KAFKA_USERNAME: empty, but SASL PLAIN needs it"},
		{"SASL without a password", func(c *publisher.Config) { c.SASLMechanism, c.Username = "SCRAM-SHA-256", "u" },
			"CALLPUB_KAFKA_PASSWORD: empty, but SASL SCRAM-SHA-256 needs it"},
		{"a password without SASL", func(c *publisher.Config) { c.Password = "x" },
			"CALLPUB_KAFKA_SASL_MECHANISM: empty, but a username or password is set: choose PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
		{"a CA file without TLS", func(c *publisher.Config) { c.CAFile = notPEM }, "CALLPUB_KAFKA_CA_FILE: set, but CALLPUB_KAFKA_TLS is false"},
		{"a CA file that does not exist", func(c *publisher.Config) { c.TLS, c.CAFile = true, filepath.Join(dir, "missing.pem") },
			"CALLPUB_KAFKA_CA_FILE: open " + filepath.Join(dir, "missing.pem") + ": no such file or directory"},
		{"a CA file without a certificate", func(c *publisher.Config) { c.TLS, c.CAFile = true, notPEM },
			"CALLPUB_KAFKA_CA_FILE: " + notPEM + " holds no PEM certificate"},
		{"a zero batch timeout", func(c *publisher.Config) { c.BatchTimeout = 0 },
			"CALLPUB_KAFKA_BATCH_TIMEOUT: 0s: must be above 0 (a few ms; kafka-go's zero means 1s)"},
		{"a zero write timeout", func(c *publisher.Config) { c.WriteTimeout = 0 }, "CALLPUB_KAFKA_WRITE_TIMEOUT: 0s: must be above 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validKafka()
			tt.edit(&cfg)
			_, err := publisher.New(cfg, nil, prometheus.NewRegistry())
			if err == nil {
				t.Fatal("New accepted it")
			}
			named := withVarNames(err)
			if want := "kafka config: " + tt.want; named.Error() != want {
				t.Errorf("err = %q\nwant  %q", named, want)
			}
			var ce *publisher.ConfigError
			if !errors.As(named, &ce) || !strings.HasPrefix(withVarNames(ce).Error(), "CALLPUB_KAFKA_") {
				t.Errorf("err is not a *publisher.ConfigError naming a variable: %#v", named)
			}
			if got, want := configError(err).Error(), "config: kafka config: "+tt.want; got != want {
				t.Errorf("configError = %q\nwant          %q", got, want)
			}
		})
	}
}

func TestKafkaConfigErrorsReportEveryProblemAtOnce(t *testing.T) {
	_, err := publisher.New(publisher.Config{}, nil, nil)
	if err == nil {
		t.Fatal("New accepted an empty config")
	}
	msg := configError(err).Error()
	for _, v := range []string{"BROKERS", "TOPIC", "COMPRESSION", "BATCH_TIMEOUT", "WRITE_TIMEOUT"} {
		if !strings.Contains(msg, "CALLPUB_KAFKA_"+v) {
			t.Errorf("error does not mention CALLPUB_KAFKA_%s: %v", v, msg)
		}
	}
}

// tail and demo build a kafka-go Dialer, which reports bad TLS and SASL
// settings without New's "kafka config: ".
func TestKafkaDialerErrorsNameTheVariable(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := validKafka()
	cfg.TLS, cfg.CAFile = true, notPEM
	_, err := cfg.Dialer()
	if want := "config: CALLPUB_KAFKA_CA_FILE: " + notPEM + " holds no PEM certificate"; err == nil || configError(err).Error() != want {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
}

const kafkaTestPassword = "hunter2-very-secret"

// A config error must not echo the Kafka password, whatever else is wrong,
// once its fields are named by their variables either (publisher's
// TestConfigErrorsNeverShowThePassword checks New's own error).
func TestKafkaConfigErrorsNeverShowThePassword(t *testing.T) {
	cfg := publisher.Config{Brokers: []string{"nohost"}, Topic: "", Compression: "gzipx",
		SASLMechanism: "SCRAM-SHA-1", Username: "", Password: kafkaTestPassword}
	_, err := publisher.New(cfg, nil, prometheus.NewRegistry())
	if err == nil {
		t.Fatal("New accepted a broken config")
	}
	// A password SASLprep rejects (a control character) fails in the Dialer.
	scram := validKafka()
	scram.SASLMechanism, scram.Username, scram.Password = "SCRAM-SHA-512", "callpub", kafkaTestPassword+"\a"
	_, dialErr := scram.Dialer()
	if dialErr == nil {
		t.Fatal("Dialer accepted a password SASLprep rejects")
	}
	for _, err := range []error{err, dialErr} {
		for _, msg := range []string{withVarNames(err).Error(), configError(err).Error()} {
			if strings.Contains(msg, kafkaTestPassword) {
				t.Errorf("error shows the password: %v", msg)
			}
			if !strings.Contains(msg, "CALLPUB_KAFKA_") {
				t.Errorf("error names no variable, so the test checked nothing: %v", msg)
			}
		}
	}
}

// Whatever field of poller, ccms or publisher a *ConfigError names,
// withVarNames finds its variable.
func TestEveryConfigFieldHasAVariable(t *testing.T) {
	reason := errors.New("bad")
	for _, c := range []struct {
		typ reflect.Type
		err func(field string) error
	}{
		{reflect.TypeFor[poller.Config](), func(f string) error { return &poller.ConfigError{Field: f, Err: reason} }},
		{reflect.TypeFor[ccms.Config](), func(f string) error { return &ccms.ConfigError{Field: f, Err: reason} }},
		{reflect.TypeFor[publisher.Config](), func(f string) error { return &publisher.ConfigError{Field: f, Err: reason} }},
	} {
		for i := range c.typ.NumField() {
			f := c.typ.Field(i)
			if !f.IsExported() {
				continue
			}
			got := withVarNames(fmt.Errorf("wrapped: %w", errors.Join(c.err(f.Name)))).Error()
			if !strings.HasPrefix(got, "wrapped: CALLPUB_") || !strings.HasSuffix(got, ": bad") {
				t.Errorf("%s.%s: %q names no variable", c.typ, f.Name, got)
			}
		}
	}
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&poller.ConfigError{Field: "PollInterval", Err: reason}, "CALLPUB_POLL_INTERVAL: bad"},
		{&publisher.ConfigError{Field: "Brokers", Err: reason}, "CALLPUB_KAFKA_BROKERS: bad"},
		{&publisher.ConfigError{Field: "EventMode", Err: reason}, "CALLPUB_EVENT_MODE: bad"},
		{&ccms.ConfigError{Field: "SignTimestamp", Err: reason}, "CALLPUB_CCMS_SIGN_TIMESTAMP: bad"},
	} {
		if got := withVarNames(tt.err).Error(); got != tt.want {
			t.Errorf("%v is named %q, want %q", tt.err, got, tt.want)
		}
	}
}
