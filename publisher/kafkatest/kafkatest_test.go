package kafkatest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestMain(m *testing.M) { Main(m) }

// The readiness probe must work against kfake and Apache Kafka alike.
func TestProbe(t *testing.T) {
	b, err := startFake()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	if err := apiVersionsProbe(b.Addrs[0], time.Second); err != nil {
		t.Fatal(err)
	}
}

// An address in the environment is used as given: no fallback when it is down.
func TestEnvAddressIsAuthoritative(t *testing.T) {
	t.Setenv(EnvMode, "")
	t.Setenv(EnvBrokers, "127.0.0.1:1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if b, err := choose(ctx); err == nil {
		t.Fatalf("got %s broker, want an error", b.Kind)
	}
}

// No java and no Docker engine: kfake, unless a real broker is required.
func TestFallbackToKfake(t *testing.T) {
	if dockerHealthy(context.Background()) == nil {
		t.Skip("a Docker engine is running")
	}
	t.Setenv("PATH", t.TempDir())
	t.Setenv("JAVA_HOME", "")
	t.Setenv(EnvBrokers, "")
	t.Setenv(EnvMode, "")
	b, err := choose(context.Background())
	if err != nil || b.Kind != Fake {
		t.Fatalf("auto: %v %v", b, err)
	}
	b.Stop()

	t.Setenv(EnvMode, "real")
	if _, err := choose(context.Background()); err == nil || !strings.Contains(err.Error(), "java not found") {
		t.Fatalf("real: want a failure naming java, got %v", err)
	}
}

// Topic and ReadAll against whichever broker the order of preference picks.
func TestTopicAndReadAll(t *testing.T) {
	brokers := Brokers(t)
	topic := Topic(t, brokers, 2)
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	var in []kafka.Message
	for i := range 10 {
		in = append(in, kafka.Message{Key: fmt.Appendf(nil, "%d", i), Value: []byte("v")})
	}
	if err := w.WriteMessages(context.Background(), in...); err != nil {
		t.Fatal(err)
	}
	if got := ReadAll(t, brokers, topic, 2, len(in)); len(got) != len(in) {
		t.Fatalf("read %d messages, want %d", len(got), len(in))
	}
}

// Broker ports come from below the ephemeral range, where no outgoing
// connection (not even the broker's own, dialling its controller) can take
// them between the pick and the broker's bind.
func TestFreePortIsOutsideTheEphemeralRangeAndBindable(t *testing.T) {
	first, last := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		fmt.Sscan(string(b), &first, &last)
	}
	for range 50 {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if p >= first && p <= last {
			t.Fatalf("freePort() = %d, inside the ephemeral range %d-%d", p, first, last)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("freePort() = %d, but it cannot be bound: %v", p, err)
		}
		l.Close()
	}
}
