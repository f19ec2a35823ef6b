package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// newDLQPublisher is newPublisher with a dead-letter topic.
func newDLQPublisher(t testing.TB, brokers []string, topic, dlq string, reg prometheus.Registerer) *Publisher {
	t.Helper()
	cfg := Config{
		Brokers: brokers, Topic: topic, DLQTopic: dlq, Compression: "lz4", MaxMessageBytes: 1_000_000,
		BatchTimeout: 2 * time.Millisecond, WriteTimeout: 10 * time.Second,
	}
	p, err := New(cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// quarantineEvent is a quarantine record of a row of VDN vdn's inbound stream.
func quarantineEvent(vdn int, raw string) schemas.Event {
	return encoder.Quarantined(schemas.Stream{CCID: 1, VDN: vdn, Dir: schemas.In}, t0, t0.Add(5*time.Minute),
		"callEnd: not a number", json.RawMessage(raw), t0.Add(6*time.Minute))
}

func TestQuarantineRecordsGoToTheDLQTopicKeyedByVDN(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 1)
	dlq := kafkatest.Topic(t, brokers, 3)
	reg := prometheus.NewRegistry()
	p := newDLQPublisher(t, brokers, topic, dlq, reg)
	events := []schemas.Event{
		quarantineEvent(25, `{"callerNo":"+8613800001234","callEnd":"x"}`),
		quarantineEvent(26, `{"callerNo":"+8613800005678"`),
		quarantineEvent(25, `[1,2,3]`),
	}
	if err := p.PublishDLQ(t.Context(), events...); err != nil {
		t.Fatal(err)
	}
	msgs := kafkatest.ReadAll(t, brokers, dlq, 3, len(events))
	if len(msgs) != len(events) {
		t.Fatalf("read %d records, want %d", len(msgs), len(events))
	}
	want := map[string][]string{"25": {events[0].ID, events[2].ID}, "26": {events[1].ID}}
	got := map[string][]string{}
	for _, m := range msgs { // partition by partition, in offset order
		if err := schemas.Validate(m.Value); err != nil {
			t.Error(err)
		}
		if strings.Contains(string(m.Value), "86138000") {
			t.Errorf("a phone number reached the topic: %s", m.Value)
		}
		var ev schemas.Event
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		if m.Partition != javaPartition(string(m.Key), 3) {
			t.Errorf("key %s on partition %d, Java's murmur2 says %d", m.Key, m.Partition, javaPartition(string(m.Key), 3))
		}
		got[string(m.Key)] = append(got[string(m.Key)], ev.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ids by key, in order (-want +got):\n%s", diff)
	}
	if n := len(kafkatest.ReadAll(t, brokers, topic, 1, 0)); n != 0 {
		t.Errorf("%d records on the call topic, want none", n)
	}
	labels := map[string]string{"topic": dlq, "type": schemas.TypeQuarantined}
	if got := counterValue(t, reg, "callpub_events_published_total", labels); got != 3 {
		t.Errorf("callpub_events_published_total%v = %v, want 3", labels, got)
	}
}

func TestPublishDLQWithoutADLQTopicDoesNothing(t *testing.T) {
	p, err := New(validConfig(), nil, nil) // brokers that do not exist: nothing may be sent
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.PublishDLQ(t.Context(), quarantineEvent(25, `{}`)); err != nil {
		t.Errorf("PublishDLQ = %v, want nil", err)
	}
}

func TestPublishDLQWithoutADLQTopicWritesNowhere(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 1)
	control := kafkatest.Topic(t, brokers, 1)
	p := newPublisher(t, brokers, topic, control, nil)
	if err := p.PublishDLQ(t.Context(), quarantineEvent(25, `{}`)); err != nil {
		t.Fatalf("PublishDLQ = %v, want nil", err)
	}
	for _, name := range []string{topic, control} {
		if n := len(kafkatest.ReadAll(t, brokers, name, 1, 0)); n != 0 {
			t.Errorf("%d records on %s, want none", n, name)
		}
	}
}

func TestCheckTopicReportsTheDLQTopic(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 2)
	dlq := kafkatest.Topic(t, brokers, 3)
	info, err := newDLQPublisher(t, brokers, topic, dlq, nil).CheckTopic(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := TopicInfo{Topic: topic, Partitions: 2, DLQTopic: dlq, DLQPartitions: 3}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("TopicInfo (-want +got):\n%s", diff)
	}

	missing := kafkatest.Name(t)
	_, err = newDLQPublisher(t, brokers, topic, missing, nil).CheckTopic(t.Context())
	var te *TopicError
	if !errors.As(err, &te) || !te.Missing || te.Topic != missing {
		t.Errorf("a missing dead-letter topic: CheckTopic = %v", err)
	}
}

func TestPublishDLQToAMissingTopicFails(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 1)
	missing := kafkatest.Name(t)
	p := newDLQPublisher(t, brokers, topic, missing, nil)
	ev := quarantineEvent(25, `{}`)
	err := p.PublishDLQ(t.Context(), ev)
	var pe *PublishError
	if !errors.As(err, &pe) || pe.Topic != missing || !cmp.Equal(pe.Failed, []string{ev.ID}) {
		t.Fatalf("PublishDLQ = %v, want a *PublishError for %s", err, missing)
	}
	if !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Errorf("PublishDLQ error does not say the topic is missing: %v", err)
	}
}

func TestMaxMessageBytesLeavesRoomForTheRecordsFramingAndHeaders(t *testing.T) {
	const room = schemas.StructuredHeaderRoom
	for _, tt := range []struct {
		configured int
		mode       schemas.Mode
		want       int
	}{
		{0, "", 1_000_000 - recordFraming - room},
		{1_000_000, schemas.Structured, 1_000_000 - recordFraming - room},
		{4096, schemas.Structured, 4096 - recordFraming - room},
		{8 << 20, schemas.Structured, 8<<20 - recordFraming - room},
		{1_000_000, schemas.Binary, 1_000_000 - recordFraming},
		{4096, schemas.Binary, 4096 - recordFraming},
	} {
		cfg := validConfig()
		cfg.MaxMessageBytes, cfg.EventMode = tt.configured, tt.mode
		p, err := New(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.MaxMessageBytes(); got != tt.want {
			t.Errorf("MaxMessageBytes %d, mode %q: MaxMessageBytes() = %d, want %d", tt.configured, tt.mode, got, tt.want)
		}
		if got, want := p.w.BatchBytes, int64(cfg.messageBytes()-batchOverhead); got != want {
			t.Errorf("MaxMessageBytes %d: writer BatchBytes = %d, want %d", tt.configured, got, want)
		}
		p.Close()
	}
}

// An event of MaxMessageBytes() whose subject and source are as long as
// structured headers carry still makes a record the batch takes, in both
// modes: the headers' room is enough.
func TestTheLargestEventWithTheLongestHeadersFitsItsRecord(t *testing.T) {
	for _, mode := range []schemas.Mode{schemas.Structured, schemas.Binary} {
		cfg := validConfig()
		cfg.MaxMessageBytes, cfg.EventMode = 4096, mode
		p, err := New(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		base := quarantineEvent(25, "")
		base.Subject = strings.Repeat("s", schemas.MaxStructuredHeader)
		base.Source = "/" + strings.Repeat("c", schemas.MaxStructuredHeader-len("//1/vdn/25")) + "/1/vdn/25"
		base.Data = json.RawMessage(`{"x":""}`)
		n, _ := base.Size()
		ev := base
		ev.Data = json.RawMessage(`{"x":"` + strings.Repeat("x", p.MaxMessageBytes()-n) + `"}`)
		if size, _ := ev.Size(); size != p.MaxMessageBytes() {
			t.Fatalf("built an event of %d bytes, want %d", size, p.MaxMessageBytes())
		}
		m, err := message("t", ev, mode, p.MaxMessageBytes(), p.maxRecordBytes())
		if err != nil {
			t.Errorf("%s: an event of MaxMessageBytes() with the longest headers: %v", mode, err)
		} else if len(m.Headers) < 7 {
			t.Errorf("%s: %d headers, want the content type and six or more ce_ headers", mode, len(m.Headers))
		}
		p.Close()
	}
}

// sizedEvent is a quarantine record of exactly size bytes (Event.Size).
func sizedEvent(t *testing.T, vdn, size int) schemas.Event {
	t.Helper()
	base, err := quarantineEvent(vdn, "").Size()
	if err != nil {
		t.Fatal(err)
	}
	if size < base {
		t.Fatalf("an event cannot be smaller than %d bytes", base)
	}
	ev := quarantineEvent(vdn, strings.Repeat("x", size-base)) // not JSON: carried as a string, byte for byte
	if n, _ := ev.Size(); n != size {
		t.Fatalf("built an event of %d bytes, want %d", n, size)
	}
	return ev
}

// The record value Publish writes in structured mode is exactly Event.Size
// bytes.
func TestSizeIsTheStructuredRecordValueLength(t *testing.T) {
	for _, ev := range []schemas.Event{callEvent(t, 25, 1), quarantineEvent(25, `{"callerNo":"1"}`)} {
		m, err := message("t", ev, schemas.Structured, 1<<20, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := ev.Size(); err != nil || n != len(m.Value) {
			t.Errorf("Size = %d, %v; record value %d bytes", n, err, len(m.Value))
		}
	}
}

// A topic limited to 4096 bytes takes an event of exactly MaxMessageBytes()
// uncompressed; one byte more is refused before anything is sent, and the
// events around it in the batch are not written either.
func TestAnEventThatFitsIsAcceptedAndOneByteMoreIsRefusedBeforeSending(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := limitedTopic(t, brokers, 4096)
	cfg := Config{Brokers: brokers, Topic: topic, Compression: "none", MaxMessageBytes: 4096,
		BatchTimeout: 2 * time.Millisecond, WriteTimeout: 10 * time.Second}
	p, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fits := sizedEvent(t, 25, p.MaxMessageBytes())
	if err := p.Publish(t.Context(), fits); err != nil {
		t.Fatalf("an event of MaxMessageBytes() bytes: %v", err)
	}
	tooLarge := sizedEvent(t, 25, p.MaxMessageBytes()+1)
	err = p.Publish(t.Context(), quarantineEvent(26, `{}`), tooLarge)
	var pe *PublishError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &pe) || pe.Unknown || len(pe.Failed) != 2 {
		t.Fatalf("an event one byte larger: Publish = %v, want ErrTooLarge failing the whole batch", err)
	}
	msgs := kafkatest.ReadAll(t, brokers, topic, 1, 1)
	if len(msgs) != 1 || len(msgs[0].Value) != p.MaxMessageBytes() {
		t.Errorf("the topic holds %d records, want only the one that fits", len(msgs))
	}

	// The limit is real: without the check the broker refuses what the
	// framing would not leave room for.
	cfg.MaxMessageBytes = 1_000_000
	unchecked, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unchecked.Close()
	if err := unchecked.Publish(t.Context(), sizedEvent(t, 25, 4096)); err == nil {
		t.Error("the broker took a 4096-byte value into a topic limited to 4096 bytes: the test checks nothing")
	}
}

// limitedTopic creates a one-partition topic whose max.message.bytes is limit.
func limitedTopic(t *testing.T, brokers []string, limit int) string {
	t.Helper()
	topic := kafkatest.Name(t)
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	res, err := c.CreateTopics(t.Context(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: strconv.Itoa(limit)}},
	}}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	p := newPublisher(t, brokers, topic, "", nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for { // wait for its leader
		if _, err = p.CheckTopic(ctx); err == nil {
			return topic
		}
		select {
		case <-ctx.Done():
			t.Fatalf("topic %s has no leader after 30s: %v", topic, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
