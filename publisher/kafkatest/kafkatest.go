// Package kafkatest gives callpub's tests and benchmarks a Kafka broker.
//
// The first of these that works is used, once per test binary:
//
//  1. CALLPUB_TEST_KAFKA_BROKERS, comma-separated addresses of a running broker
//     (make test starts one broker and sets this for every package);
//  2. a broker started from jars, when java is installed and the jars are cached
//     or mvn can fetch them (pom.xml in this folder);
//  3. a confluent-local container, when a Docker engine answers;
//  4. kfake, an in-process fake broker.
//
// CALLPUB_TEST_KAFKA=real turns step 4 into a test failure (use it in CI).
// CALLPUB_TEST_KAFKA=fake skips steps 1 to 3.
//
// A package that uses it needs
//
//	func TestMain(m *testing.M) { kafkatest.Main(m) }
//
// and its tests call kafkatest.Brokers(t). Nothing starts until the first call.
// Topic auto-creation is off everywhere: tests create topics with Topic.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// Environment variables read by this package (and by scripts/kafka/*.sh).
const (
	EnvBrokers = "CALLPUB_TEST_KAFKA_BROKERS"  // bootstrap addresses of a running broker
	EnvMode    = "CALLPUB_TEST_KAFKA"          // "", "auto", "real" or "fake"
	EnvLibs    = "CALLPUB_TEST_KAFKA_LIBS"     // folder of broker jars; skips mvn
	EnvCache   = "CALLPUB_TEST_KAFKA_CACHE"    // root of the jar cache
	EnvJVMOpts = "CALLPUB_TEST_KAFKA_JVM_OPTS" // heap and other JVM flags for the jar broker
	EnvImage   = "CALLPUB_TEST_KAFKA_IMAGE"    // container image for the Docker path
)

// Kind says where a Broker came from.
type Kind string

const (
	External  Kind = "external"  // CALLPUB_TEST_KAFKA_BROKERS
	Jar       Kind = "jar"       // java -cp 'libs/*' kafka.Kafka
	Container Kind = "container" // testcontainers-go, confluent-local image
	Fake      Kind = "kfake"     // in-process github.com/twmb/franz-go/pkg/kfake
)

// Broker is a Kafka broker for tests.
type Broker struct {
	Addrs []string // bootstrap addresses, host:port
	Kind  Kind
	Dir   string // jar broker only: its folder (server.properties, broker.log, data/)
	// Listeners are the addresses of JarOptions.ExtraListeners, by name.
	Listeners map[string]string

	stopOnce sync.Once
	stop     func()
}

// Real reports whether b is an Apache Kafka broker rather than kfake.
func (b *Broker) Real() bool { return b.Kind != Fake }

// Stop shuts the broker down if this package started it. It is safe to call twice.
func (b *Broker) Stop() {
	b.stopOnce.Do(func() {
		if b.stop != nil {
			b.stop()
		}
	})
}

var (
	mainCalled bool
	once       sync.Once
	shared     *Broker
	sharedErr  error
)

// Main runs the package's tests and then stops the broker if one was started.
// Call it from TestMain; when TestMain returns, the test binary exits with m.Run's code.
func Main(m *testing.M) {
	mainCalled = true
	m.Run()
	if shared != nil {
		shared.Stop()
	}
}

// get returns the package's broker, starting it on first use.
func get(tb testing.TB) *Broker {
	tb.Helper()
	if !mainCalled {
		tb.Fatal("kafkatest: add `func TestMain(m *testing.M) { kafkatest.Main(m) }` to this package")
	}
	once.Do(func() {
		shared, sharedErr = choose(context.Background())
		if sharedErr == nil {
			fmt.Fprintf(os.Stderr, "kafkatest: %s broker at %s\n", shared.Kind, strings.Join(shared.Addrs, ","))
		}
	})
	if sharedErr != nil {
		tb.Fatalf("kafkatest: %v", sharedErr)
	}
	return shared
}

// Brokers returns the bootstrap addresses of the package's broker, starting it
// on first use. If no broker can be had, or CALLPUB_TEST_KAFKA=real and only
// kfake is left, the test fails.
func Brokers(tb testing.TB) []string {
	tb.Helper()
	return get(tb).Addrs
}

// RequireReal is Brokers for tests whose result means nothing on kfake
// (acks and durability, protocol versions, broker configs). On kfake the test is skipped.
func RequireReal(tb testing.TB) []string {
	tb.Helper()
	b := get(tb)
	if !b.Real() {
		tb.Skipf("needs a real Kafka broker, have %s (run `make test`, or set %s)", b.Kind, EnvBrokers)
	}
	return b.Addrs
}

func mode() (string, error) {
	m := strings.ToLower(strings.TrimSpace(os.Getenv(EnvMode)))
	switch m {
	case "", "auto":
		return "auto", nil
	case "real", "fake":
		return m, nil
	}
	return "", fmt.Errorf("%s=%q: want auto, real or fake", EnvMode, m)
}

// choose walks the order of preference described in the package comment.
func choose(ctx context.Context) (*Broker, error) {
	m, err := mode()
	if err != nil {
		return nil, err
	}
	if m == "fake" {
		return startFake()
	}

	// 1. An address given in the environment is authoritative: no fallback.
	if v := os.Getenv(EnvBrokers); strings.TrimSpace(v) != "" {
		var addrs []string
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, a)
			}
		}
		if err := waitReady(ctx, addrs, 30*time.Second, nil); err != nil {
			return nil, fmt.Errorf("%s=%s: %w", EnvBrokers, v, err)
		}
		return &Broker{Addrs: addrs, Kind: External}, nil
	}

	var skipped []string

	// 2. A broker started from jars.
	if libs, why := jarLibs(); why != "" {
		skipped = append(skipped, "jar broker: "+why)
	} else if b, err := StartJar(JarOptions{Libs: libs}); err != nil {
		skipped = append(skipped, "jar broker: "+err.Error())
	} else {
		return b, nil
	}

	// 3. A container, when a Docker engine answers.
	if err := dockerHealthy(ctx); err != nil {
		skipped = append(skipped, "container: "+err.Error())
	} else if b, err := startContainer(ctx); err != nil {
		skipped = append(skipped, "container: "+err.Error())
	} else {
		return b, nil
	}

	// 4. kfake.
	if m == "real" {
		return nil, fmt.Errorf("%s=real and no real broker could be started:\n\t%s",
			EnvMode, strings.Join(skipped, "\n\t"))
	}
	fmt.Fprintf(os.Stderr, "kafkatest: no real broker, so kfake:\n\t%s\n", strings.Join(skipped, "\n\t"))
	return startFake()
}

// waitReady polls until one of addrs answers an ApiVersions request,
// or exited is closed, or the timeout passes.
func waitReady(ctx context.Context, addrs []string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		for _, a := range addrs {
			if last = apiVersionsProbe(a, 2*time.Second); last == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no ApiVersions answer after %v: %w", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return errors.New("process exited during startup")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// Name returns a topic or consumer-group name unique to this test and this run.
// Every package shares one broker, so never hard-code one.
func Name(tb testing.TB) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	n := unsafeName.ReplaceAllString(tb.Name(), "_")
	if len(n) > 180 {
		n = n[:180]
	}
	return "t-" + n + "-" + hex.EncodeToString(r[:])
}

// Topic creates a fresh topic with the given number of partitions (replication
// factor 1) and topic configs, waits until every partition has a leader, and
// returns its name.
func Topic(tb testing.TB, brokers []string, partitions int, configs ...kafka.ConfigEntry) string {
	tb.Helper()
	topic := Name(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: configs,
	}}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		tb.Fatalf("kafkatest: create topic %s: %v", topic, err)
	}
	for {
		md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil &&
			len(md.Topics[0].Partitions) == partitions && allLeaders(md.Topics[0].Partitions) {
			return topic
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("kafkatest: topic %s has no leaders yet: %v", topic, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func allLeaders(ps []kafka.Partition) bool {
	for _, p := range ps {
		if p.Leader.Host == "" {
			return false
		}
	}
	return true
}

// ReadAll waits until topic holds at least n messages, then returns every
// message in it, partition by partition in offset order. It fails the test
// after 30 s. Asking for n and getting more means duplicates were written.
func ReadAll(tb testing.TB, brokers []string, topic string, partitions, n int) []kafka.Message {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	var reqs []kafka.OffsetRequest
	for p := 0; p < partitions; p++ {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	first, last := map[int]int64{}, map[int]int64{}
	for {
		res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
		total := int64(0)
		if err == nil {
			for _, po := range res.Topics[topic] {
				if po.Error != nil {
					err = po.Error
					break
				}
				first[po.Partition], last[po.Partition] = po.FirstOffset, po.LastOffset
				total += po.LastOffset - po.FirstOffset
			}
		}
		if err == nil && len(first) == partitions && total >= int64(n) {
			break
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("kafkatest: %s holds %d messages after 30s, want %d (last error: %v)", topic, total, n, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	var msgs []kafka.Message
	for p := 0; p < partitions; p++ {
		if last[p] <= first[p] {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond,
		})
		if err := r.SetOffset(first[p]); err != nil {
			r.Close()
			tb.Fatalf("kafkatest: %s[%d]: %v", topic, p, err)
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				tb.Fatalf("kafkatest: read %s[%d]: %v", topic, p, err)
			}
			msgs = append(msgs, m)
			if m.Offset >= last[p]-1 {
				break
			}
		}
		r.Close()
	}
	return msgs
}
