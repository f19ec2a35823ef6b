package publisher

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/callpub/callpub/schemas"
)

// Config is the Kafka side. Env names are relative to CALLPUB_KAFKA_.
// Defaults live in the tags only: New validates and never substitutes, with
// one exception: a zero MaxMessageBytes (a Config built in code before the
// field existed) means its default.
type Config struct {
	// Brokers are bootstrap addresses, host:port, comma-separated in the env.
	Brokers []string `env:"BROKERS"`
	// Topic receives call-completed events. It must exist: callpub never
	// creates topics.
	Topic string `env:"TOPIC, default=cc.calls.completed"`
	// ControlTopic receives gap, day-sealed and heartbeat records; "" turns
	// them off.
	ControlTopic string `env:"CONTROL_TOPIC"`
	// DLQTopic, the dead-letter topic, receives a quarantine record for each
	// row that could not be decoded or used; "" turns them off (such rows are
	// still counted and logged).
	DLQTopic string `env:"DLQ_TOPIC"`
	// StateTopic receives the changelog of each stream's durable state
	// (schemas.StateRecord), one record per change, keyed by the stream key
	// ("1/25/in"), so that a replica that lost its disk rebuilds its store
	// from it (ReadState); "" turns the changelog off. Compaction keeps each
	// stream's latest record: create the topic with cleanup.policy=compact
	// (with delete, retention would forget streams that are merely quiet)
	// and the same replication as the event topic. It must exist: callpub
	// never creates topics.
	StateTopic string `env:"STATE_TOPIC"`
	// MaxMessageBytes is the largest record batch the topics accept: their
	// max.message.bytes (the broker's message.max.bytes unless the topic
	// overrides it). Publish refuses a larger event before sending anything,
	// and MaxMessageBytes() tells callers the largest event that fits. Zero
	// means the default.
	MaxMessageBytes int `env:"MAX_MESSAGE_BYTES, default=1000000"`
	// Compression of record batches: none, snappy, lz4 or zstd. The default,
	// lz4, is the cheapest codec in CPU on both sides while still shrinking
	// batches of similar JSON events several times; every Kafka client and
	// broker in use supports it (zstd needs brokers and consumers from 2.1 on),
	// and the broker's lz4 is pure Java, while snappy and zstd unpack native
	// libraries into java.io.tmpdir (real-kafka.md pitfall 13). Choose zstd for
	// the smallest topic when every consumer is new enough.
	Compression string `env:"COMPRESSION, default=lz4"`
	// SASLMechanism is "", PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	SASLMechanism string `env:"SASL_MECHANISM"`
	Username      string `env:"USERNAME"`
	Password      Secret `env:"PASSWORD"` // also CALLPUB_KAFKA_PASSWORD_FILE
	// TLS turns on TLS to the brokers, verified against the system roots plus
	// CAFile when set.
	TLS    bool   `env:"TLS, default=false"`
	CAFile string `env:"CA_FILE"`
	// TLSServerName overrides the name verified in broker certificates
	// (default: each broker's host).
	TLSServerName string `env:"TLS_SERVER_NAME"`
	// EventMode is the CloudEvents content mode of every record (calls,
	// control and dead-letter records): structured or binary (schemas.Mode).
	// It has no CALLPUB_KAFKA_ variable: cmd/callpub reads it from
	// CALLPUB_EVENT_MODE, which names the wire format rather than a Kafka
	// client setting. "" means structured, as for a Config built in code.
	EventMode schemas.Mode
	// BatchTimeout is how long a partition's batch waits for more messages.
	// kafka-go's zero value means 1 s, paid by every synchronous write.
	BatchTimeout time.Duration `env:"BATCH_TIMEOUT, default=5ms"`
	// WriteTimeout bounds one produce request, and metadata and dial waits.
	WriteTimeout time.Duration `env:"WRITE_TIMEOUT, default=10s"`
}

// ConfigError is one invalid Config field; New returns every one it finds,
// joined. Field is the Go field name (Compression), which callers map to
// their own variable names. The password never appears in Err.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

var compressions = map[string]kafka.Compression{
	"none":   0, // kafka-go's zero value: uncompressed
	"snappy": kafka.Snappy,
	"lz4":    kafka.Lz4,
	"zstd":   kafka.Zstd,
}

// Kafka's legal topic names.
var topicName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)

// problems collects field errors in the order found.
type problems []error

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, &ConfigError{Field: field, Err: fmt.Errorf(format, args...)})
}

// validate returns every problem at once, joined, each a *ConfigError
// naming its field. It never includes the password.
func (c Config) validate() error {
	var p problems
	c.checkTopics(&p)
	c.checkSecurity(&p)
	if c.BatchTimeout <= 0 {
		p.add("BatchTimeout", "%v: must be above 0 (a few ms; kafka-go's zero means 1s)", c.BatchTimeout)
	}
	if c.WriteTimeout <= 0 {
		p.add("WriteTimeout", "%v: must be above 0", c.WriteTimeout)
	}
	if c.EventMode != "" {
		if _, err := schemas.ParseMode(string(c.EventMode)); err != nil {
			p.add("EventMode", "%v", err)
		}
	}
	if c.MaxMessageBytes != 0 && c.MaxMessageBytes < minMessageBytes {
		p.add("MaxMessageBytes", "%d: must be at least %d (Kafka's default is %d)",
			c.MaxMessageBytes, minMessageBytes, defaultMessageBytes)
	}
	return errors.Join(p...)
}

const (
	// defaultMessageBytes is MaxMessageBytes when zero: the tag's default,
	// Kafka's default max.message.bytes rounded down.
	defaultMessageBytes = 1_000_000
	// minMessageBytes leaves room for an event beside a record's framing
	// and, in structured mode, its ce_ headers (schemas.StructuredHeaderRoom).
	minMessageBytes = 4096
)

// mode is EventMode, structured when "".
func (c Config) mode() schemas.Mode {
	if c.EventMode == "" {
		return schemas.Structured
	}
	return c.EventMode
}

// messageBytes is MaxMessageBytes, or its default when zero.
func (c Config) messageBytes() int {
	if c.MaxMessageBytes == 0 {
		return defaultMessageBytes
	}
	return c.MaxMessageBytes
}

// checkTopics checks the brokers, the topics and the compression.
func (c Config) checkTopics(p *problems) {
	if len(c.Brokers) == 0 {
		p.add("Brokers", "empty: give at least one host:port")
	}
	for _, b := range c.Brokers {
		if host, port, err := net.SplitHostPort(b); err != nil || host == "" || port == "" {
			p.add("Brokers", "%q is not host:port", b)
		}
	}
	switch {
	case c.Topic == "":
		p.add("Topic", "empty")
	case !topicName.MatchString(c.Topic):
		p.add("Topic", "%q is not a legal Kafka topic name", c.Topic)
	}
	checkOptionalTopic(p, "ControlTopic", c.ControlTopic, namedTopic{"CALLPUB_KAFKA_TOPIC", c.Topic})
	checkOptionalTopic(p, "DLQTopic", c.DLQTopic, namedTopic{"CALLPUB_KAFKA_TOPIC", c.Topic},
		namedTopic{"CALLPUB_KAFKA_CONTROL_TOPIC", c.ControlTopic})
	checkOptionalTopic(p, "StateTopic", c.StateTopic, namedTopic{"CALLPUB_KAFKA_TOPIC", c.Topic},
		namedTopic{"CALLPUB_KAFKA_CONTROL_TOPIC", c.ControlTopic}, namedTopic{"CALLPUB_KAFKA_DLQ_TOPIC", c.DLQTopic})
	if _, ok := compressions[c.Compression]; !ok {
		p.add("Compression", "%q is not one of none, snappy, lz4, zstd", c.Compression)
	}
}

// namedTopic is a topic setting and its value.
type namedTopic struct{ variable, topic string }

// checkOptionalTopic checks an optional topic: when set, a legal name and
// none of the topics configured before it.
func checkOptionalTopic(p *problems, field, topic string, others ...namedTopic) {
	if topic == "" {
		return
	}
	if !topicName.MatchString(topic) {
		p.add(field, "%q is not a legal Kafka topic name", topic)
	}
	for _, o := range others {
		if topic == o.topic {
			p.add(field, "%q is also %s: use a separate topic", topic, o.variable)
		}
	}
}

// checkSecurity checks the SASL and TLS settings.
func (c Config) checkSecurity(p *problems) {
	switch c.SASLMechanism {
	case "":
		if c.Username != "" || c.Password != "" {
			p.add("SASLMechanism", "empty, but a username or password is set: choose PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		}
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.Username == "" {
			p.add("Username", "empty, but SASL %s needs it", c.SASLMechanism)
		}
		if c.Password == "" {
			p.add("Password", "empty, but SASL %s needs it", c.SASLMechanism)
		}
	default:
		p.add("SASLMechanism", "%q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", c.SASLMechanism)
	}
	if c.CAFile != "" {
		if !c.TLS {
			p.add("CAFile", "set, but CALLPUB_KAFKA_TLS is false")
		}
		if _, err := os.ReadFile(c.CAFile); err != nil {
			p.add("CAFile", "%v", unwrapPathError(err))
		}
	}
	if c.TLSServerName != "" && !c.TLS {
		p.add("TLSServerName", "set, but CALLPUB_KAFKA_TLS is false")
	}
}

// unwrapPathError keeps "open /x: no such file or directory" short and
// free of anything but the path and the reason.
func unwrapPathError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s %s: %v", pe.Op, pe.Path, pe.Err)
	}
	return err.Error()
}

// topics are the configured topics: the call topic, then the control,
// dead-letter and state topics when set. CheckTopic checks that each exists.
func (c Config) topics() []string {
	topics := []string{c.Topic}
	for _, t := range []string{c.ControlTopic, c.DLQTopic, c.StateTopic} {
		if t != "" {
			topics = append(topics, t)
		}
	}
	return topics
}

// brokerList is the brokers for messages: "a:9092,b:9092".
func (c Config) brokerList() string { return strings.Join(c.Brokers, ",") }
