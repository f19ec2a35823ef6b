package kafkatest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestJavaMurmur2KnownValues(t *testing.T) {
	// Values produced by the Java client (Utils.murmur2), as pinned in Kafka's own UtilsTest.
	cases := []struct {
		key  string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	}
	for _, c := range cases {
		if got := JavaMurmur2([]byte(c.key)); got != c.want {
			t.Errorf("murmur2(%q) = %d, want %d", c.key, got, c.want)
		}
	}
}

// A round trip through kafka-go as the publisher configures it: every VDN key
// lands where a Java producer would put it, and per-key order survives.
func TestMurmur2RoundTripKeepsJavaPartitionsAndPerKeyOrder(t *testing.T) {
	const partitions, total, vdns = 12, 5000, 500
	brokers := Brokers(t)
	topic := Topic(t, brokers, partitions)
	w := &kafka.Writer{
		Addr:                   kafka.TCP(brokers...),
		Topic:                  topic,
		Balancer:               &kafka.Murmur2Balancer{}, // the Java client's partitioner
		RequiredAcks:           kafka.RequireAll,         // the zero value is fire-and-forget
		BatchTimeout:           2 * time.Millisecond,     // the zero value waits 1 s per write
		AllowAutoTopicCreation: false,
	}
	defer w.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	msgs := make([]kafka.Message, 0, total)
	for i := range total {
		vdn := 1 + i%vdns
		msgs = append(msgs, kafka.Message{
			Key:   []byte(strconv.Itoa(vdn)),
			Value: []byte(strconv.Itoa(i)),
		})
	}
	// Several synchronous writes, in order, as the publisher issues them.
	for off := 0; off < total; off += 500 {
		if err := w.WriteMessages(ctx, msgs[off:off+500]...); err != nil {
			t.Fatalf("write messages %d..%d: %v", off, off+499, err)
		}
	}

	got := ReadAll(t, brokers, topic, partitions, total)
	if len(got) != total {
		t.Fatalf("read %d messages, want %d", len(got), total)
	}
	last := map[string]int{}
	wrong := 0
	for _, m := range got {
		if want := JavaPartition(m.Key, partitions); m.Partition != want {
			wrong++
			if wrong <= 5 {
				t.Errorf("key %s on partition %d, a Java producer picks %d", m.Key, m.Partition, want)
			}
		}
		seq, err := strconv.Atoi(string(m.Value))
		if err != nil {
			t.Fatalf("value %q: %v", m.Value, err)
		}
		if prev, ok := last[string(m.Key)]; ok && seq <= prev {
			t.Errorf("key %s: message %d read after %d", m.Key, seq, prev)
		}
		last[string(m.Key)] = seq
	}
	if wrong > 0 {
		t.Errorf("%d of %d messages on another partition than Java's murmur2 picks", wrong, total)
	}
	if len(last) != vdns {
		t.Errorf("read %d distinct keys, want %d", len(last), vdns)
	}
}
