package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

func TestMain(m *testing.M) {
	kafkatest.Main(m)
	if secureStop != nil {
		secureStop()
	}
}

func newPublisher(t testing.TB, brokers []string, topic, control string, reg prometheus.Registerer) *Publisher {
	t.Helper()
	cfg := Config{
		Brokers: brokers, Topic: topic, ControlTopic: control, Compression: "lz4",
		BatchTimeout: 2 * time.Millisecond, WriteTimeout: 10 * time.Second,
	}
	p, err := New(cfg, slog.New(slog.DiscardHandler), reg)
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

var encoder = func() *schemas.Encoder {
	e, err := schemas.NewEncoder(schemas.EncoderOptions{PII: schemas.PIIMask})
	if err != nil {
		panic(err)
	}
	return e
}()

var t0 = time.Date(2026, 3, 29, 8, 0, 0, 0, time.UTC)

// callEvent is the seq-th call of a VDN; its call id carries vdn and seq so a
// reader can check the order.
func callEvent(t testing.TB, vdn, seq int) schemas.Event {
	ev, err := encoder.CallCompleted(schemas.Call{
		CCID: 1, VDN: vdn, Inbound: seq%2 == 0, CallID: fmt.Sprintf("%d-%06d", vdn, seq),
		CallerNo: "+8613800001234", CalleeNo: "4008001000", MediaType: 5, LeaveReason: 16,
		WaitBegin: t0, AckBegin: t0.Add(3 * time.Second), CallBegin: t0.Add(3 * time.Second),
		CallEnd: t0.Add(time.Duration(seq) * time.Second), LogDate: t0.Add(time.Hour),
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestPublishedEventIsReadableWithVDNKey(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 3)
	p := newPublisher(t, brokers, topic, "", nil)

	want := callEvent(t, 25, 1)
	if err := p.Publish(t.Context(), want); err != nil {
		t.Fatal(err)
	}
	msgs := kafkatest.ReadAll(t, brokers, topic, 3, 1)
	if len(msgs) != 1 {
		t.Fatalf("read %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if got := string(m.Key); got != "25" {
		t.Errorf("key = %q, want %q", got, "25")
	}
	if m.Partition != javaPartition("25", 3) {
		t.Errorf("partition = %d, Java's murmur2 says %d", m.Partition, javaPartition("25", 3))
	}
	wantHeaders := []kafka.Header{
		{Key: "content-type", Value: []byte("application/cloudevents+json")},
		{Key: "ce_specversion", Value: []byte("1.0")},
		{Key: "ce_id", Value: []byte(want.ID)},
		{Key: "ce_source", Value: []byte("/ccms/1/vdn/25")},
		{Key: "ce_type", Value: []byte(schemas.TypeCallCompleted)},
		{Key: "ce_subject", Value: []byte(want.Subject)},
		{Key: "ce_time", Value: []byte(schemas.FormatTime(want.Time))},
	}
	if diff := cmp.Diff(wantHeaders, m.Headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if err := schemas.Validate(m.Value); err != nil {
		t.Error(err)
	}
	var got schemas.Event
	if err := json.Unmarshal(m.Value, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("event changed on the way (-want +got):\n%s", diff)
	}
}

// The acceptance test: 20,000 events for 500 VDNs, published in
// pages of 100 by 4 concurrent publishers (each owning a quarter of the VDNs,
// as the scheduler gives a stream to one worker at a time), all read back:
// each valid, on the partition Java's murmur2 gives its VDN, in publish order
// per VDN, none missing, none twice.
func TestTwentyThousandEventsFor500VDNsLandWhereJavaWouldPutThemInOrder(t *testing.T) {
	const (
		vdns       = 500
		perVDN     = 40
		partitions = 12
		workers    = 4
		page       = 100
	)
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, partitions)
	reg := prometheus.NewRegistry()
	p := newPublisher(t, brokers, topic, "", reg)

	// Worker w publishes VDNs with vdn%workers == w, round by round, so a
	// page mixes VDNs and each VDN's events go out in sequence order.
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		var mine []schemas.Event
		for seq := range perVDN {
			for vdn := 1; vdn <= vdns; vdn++ {
				if vdn%workers == w {
					mine = append(mine, callEvent(t, vdn, seq))
				}
			}
		}
		wg.Go(func() {
			for len(mine) > 0 {
				n := min(page, len(mine))
				if err := p.Publish(t.Context(), mine[:n]...); err != nil {
					errs <- err
					return
				}
				mine = mine[n:]
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	total := vdns * perVDN
	msgs := kafkatest.ReadAll(t, brokers, topic, partitions, total)
	if len(msgs) != total {
		t.Fatalf("read %d messages, want %d (more means duplicates)", len(msgs), total)
	}
	// Validate and decode on every core (the schema check dominates under
	// -race), then check keys, partitions and order in one pass.
	decoded := make([]schemas.CallCompletedData, len(msgs))
	var vg sync.WaitGroup
	vErrs := make([]error, runtime.GOMAXPROCS(0))
	for w := range vErrs {
		vg.Go(func() {
			for i := w; i < len(msgs); i += len(vErrs) {
				m := msgs[i]
				if err := schemas.Validate(m.Value); err != nil {
					vErrs[w] = fmt.Errorf("partition %d offset %d: %w", m.Partition, m.Offset, err)
					return
				}
				_, d, err := schemas.DecodeCallCompleted(m.Value)
				if err != nil {
					vErrs[w] = err
					return
				}
				decoded[i] = d
			}
		})
	}
	vg.Wait()
	if err := errors.Join(vErrs...); err != nil {
		t.Fatal(err)
	}
	next := map[int]int{} // vdn -> next expected seq
	for i, m := range msgs {
		d := decoded[i]
		if string(m.Key) != strconv.Itoa(d.VDN) {
			t.Fatalf("event for VDN %d has key %q", d.VDN, m.Key)
		}
		if want := javaPartition(string(m.Key), partitions); m.Partition != want {
			t.Fatalf("VDN %s on partition %d, Java's murmur2 says %d", m.Key, m.Partition, want)
		}
		seq, err := strconv.Atoi(d.CallID[strings.IndexByte(d.CallID, '-')+1:])
		if err != nil {
			t.Fatal(err)
		}
		if seq != next[d.VDN] {
			t.Fatalf("VDN %d: read seq %d, want %d (out of order, lost or repeated)", d.VDN, seq, next[d.VDN])
		}
		next[d.VDN]++
	}
	if len(next) != vdns {
		t.Errorf("read events of %d VDNs, want %d", len(next), vdns)
	}
	if got := counterValue(t, reg, "callpub_events_published_total", map[string]string{"topic": topic, "type": schemas.TypeCallCompleted}); got != float64(total) {
		t.Errorf("callpub_events_published_total = %v, want %d", got, total)
	}
}

func TestPublishToAMissingTopicFailsAndCheckTopicNamesIt(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	missing := kafkatest.Name(t) // never created
	reg := prometheus.NewRegistry()
	p := newPublisher(t, brokers, missing, "", reg)

	ev := callEvent(t, 25, 1)
	err := p.Publish(t.Context(), ev)
	var pe *PublishError
	if !errors.As(err, &pe) {
		t.Fatalf("Publish = %v, want a *PublishError", err)
	}
	if diff := cmp.Diff([]string{ev.ID}, pe.Failed); diff != "" || pe.Unknown || pe.Topic != missing {
		t.Errorf("PublishError = %+v (failed diff %s)", pe, diff)
	}
	var te *TopicError
	if !errors.As(err, &te) || !te.Missing || !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Errorf("Publish error does not say the topic is missing: %v", err)
	}
	if got := counterValue(t, reg, "callpub_kafka_write_errors_total", map[string]string{"topic": missing}); got != 1 {
		t.Errorf("callpub_kafka_write_errors_total = %v, want 1", got)
	}

	_, err = p.CheckTopic(t.Context())
	want := fmt.Sprintf(`kafka topic %q does not exist on brokers %s: create it (auto-creation is off)`,
		missing, strings.Join(brokers, ","))
	if err == nil || err.Error() != want {
		t.Errorf("CheckTopic = %v\nwant %s", err, want)
	}
	// Looking the topic up must not have created it.
	if _, err := p.CheckTopic(t.Context()); err == nil {
		t.Error("the topic exists after CheckTopic looked it up")
	}
}

func TestCheckTopicReportsBothTopics(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 6)
	control := kafkatest.Topic(t, brokers, 2)
	p := newPublisher(t, brokers, topic, control, nil)
	info, err := p.CheckTopic(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := TopicInfo{Topic: topic, Partitions: 6, ControlTopic: control, ControlPartitions: 2}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("TopicInfo (-want +got):\n%s", diff)
	}

	p2 := newPublisher(t, brokers, topic, kafkatest.Name(t), nil)
	if _, err := p2.CheckTopic(t.Context()); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("a missing control topic: CheckTopic = %v", err)
	}
}

func TestCheckTopicOnUnreachableBrokersFails(t *testing.T) {
	// Port 1 on loopback: nothing listens there, the dial is refused at once.
	p, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t", Compression: "none",
		BatchTimeout: time.Millisecond, WriteTimeout: time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := p.CheckTopic(ctx); err == nil || !strings.Contains(err.Error(), "kafka metadata from brokers 127.0.0.1:1") {
		t.Errorf("CheckTopic = %v", err)
	}
}

func TestControlRecordsGoToTheControlTopic(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 1)
	control := kafkatest.Topic(t, brokers, 3)
	p := newPublisher(t, brokers, topic, control, nil)
	at := t0.Add(time.Hour)
	events := []schemas.Event{
		encoder.Gap(schemas.Stream{CCID: 1, VDN: 25, Dir: schemas.In}, t0.Add(-48*time.Hour), t0.Add(-47*time.Hour), at),
		encoder.DaySealed(schemas.Stream{CCID: 1, VDN: 25, Dir: schemas.In}, schemas.DaySeal{Day: "20260328", Published: 42}, at),
		encoder.Heartbeat(schemas.Stream{CCID: 1, VDN: 25, Dir: schemas.In}, t0, at),
	}
	if err := p.PublishControl(t.Context(), events...); err != nil {
		t.Fatal(err)
	}
	msgs := kafkatest.ReadAll(t, brokers, control, 3, len(events))
	if len(msgs) != len(events) {
		t.Fatalf("read %d records, want %d", len(msgs), len(events))
	}
	for i, m := range msgs { // one VDN: one partition, in order
		if err := schemas.Validate(m.Value); err != nil {
			t.Error(err)
		}
		var got schemas.Event
		if err := json.Unmarshal(m.Value, &got); err != nil {
			t.Fatal(err)
		}
		if got.ID != events[i].ID || string(m.Key) != "25" || m.Partition != javaPartition("25", 3) {
			t.Errorf("record %d: id %s key %s partition %d", i, got.ID, m.Key, m.Partition)
		}
	}
}

func TestPublishControlWithoutAControlTopicDoesNothing(t *testing.T) {
	p, err := New(validConfig(), nil, nil) // brokers that do not exist: nothing may be sent
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.PublishControl(t.Context(), encoder.Heartbeat(schemas.Stream{CCID: 1, VDN: 25, Dir: schemas.In}, t0, t0)); err != nil {
		t.Errorf("PublishControl = %v, want nil", err)
	}
}

func TestPublishWithAnEndedContextHasAnUnknownOutcome(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 1)
	p := newPublisher(t, brokers, topic, "", nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	evs := []schemas.Event{callEvent(t, 25, 1), callEvent(t, 26, 1)}
	err := p.Publish(ctx, evs...)
	var pe *PublishError
	if !errors.As(err, &pe) || !pe.Unknown || !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish = %v, want an unknown-outcome *PublishError wrapping context.Canceled", err)
	}
	if len(pe.Failed) != 2 {
		t.Errorf("Failed = %v, want both ids", pe.Failed)
	}
}

func TestPublishRejectsEventsWithoutAVDNKey(t *testing.T) {
	p, err := New(validConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, key := range []string{"", "025", "x", "-1", "0"} {
		ev := callEvent(t, 25, 1)
		ev.PartitionKey = key
		err := p.Publish(t.Context(), ev)
		var pe *PublishError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "is not a VDN in decimal") {
			t.Errorf("key %q: Publish = %v", key, err)
		}
	}
}

func TestPublishAfterCloseFails(t *testing.T) {
	p, err := New(validConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := p.Publish(t.Context(), callEvent(t, 25, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
}

func TestPublishNothingIsNil(t *testing.T) {
	p, err := New(validConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Publish(t.Context()); err != nil {
		t.Errorf("Publish() = %v", err)
	}
}

func TestEveryCompressionRoundTripsThroughTheBroker(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	for _, c := range []string{"none", "snappy", "lz4", "zstd"} {
		t.Run(c, func(t *testing.T) {
			topic := kafkatest.Topic(t, brokers, 1)
			cfg := Config{Brokers: brokers, Topic: topic, Compression: c, BatchTimeout: time.Millisecond, WriteTimeout: 10 * time.Second}
			p, err := New(cfg, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			evs := []schemas.Event{callEvent(t, 7, 1), callEvent(t, 7, 2), callEvent(t, 7, 3)}
			if err := p.Publish(t.Context(), evs...); err != nil {
				t.Fatal(err)
			}
			msgs := kafkatest.ReadAll(t, brokers, topic, 1, len(evs))
			for i, m := range msgs {
				var got schemas.Event
				if err := json.Unmarshal(m.Value, &got); err != nil {
					t.Fatal(err)
				}
				if got.ID != evs[i].ID {
					t.Errorf("record %d: id %s, want %s", i, got.ID, evs[i].ID)
				}
			}
		})
	}
}

func TestPublishPublishesMetrics(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 1)
	reg := prometheus.NewRegistry()
	p := newPublisher(t, brokers, topic, "", reg)
	if err := p.Publish(t.Context(), callEvent(t, 1, 1), callEvent(t, 2, 1)); err != nil {
		t.Fatal(err)
	}
	if got := counterValue(t, reg, "callpub_events_published_total", map[string]string{"topic": topic, "type": schemas.TypeCallCompleted}); got != 2 {
		t.Errorf("events published = %v, want 2", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "callpub_kafka_write_duration_seconds" {
			if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n != 1 {
				t.Errorf("write duration samples = %d, want 1", n)
			}
			return
		}
	}
	t.Error("callpub_kafka_write_duration_seconds not registered")
}

// counterValue reads one counter series from reg (0 when absent).
func counterValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
