package publisher

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// The consumer's side of the binding. Records are decoded twice: by
// Decode, and by the CloudEvents Go SDK's Kafka binding (kafka_sarama, a
// test-only dependency), an implementation that shares no code with
// callpub. The SDK decides the mode from the headers itself, as any
// consumer would.

// sdkDecode decodes a record with the CloudEvents SDK and says in which
// encoding the SDK read it.
func sdkDecode(t *testing.T, key, value []byte, headers []kafka.Header) (binding.Encoding, map[string]any) {
	t.Helper()
	cm := &sarama.ConsumerMessage{Key: key, Value: value}
	for _, h := range headers {
		cm.Headers = append(cm.Headers, &sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
	}
	msg := kafka_sarama.NewMessageFromConsumerMessage(cm)
	ev, err := binding.ToEvent(t.Context(), msg)
	if err != nil {
		t.Fatalf("the CloudEvents SDK cannot read the record: %v", err)
	}
	if err := ev.Validate(); err != nil {
		t.Fatalf("the CloudEvents SDK finds the event invalid: %v", err)
	}
	var data any
	if err := json.Unmarshal(ev.Data(), &data); err != nil {
		t.Fatalf("data %q: %v", ev.Data(), err)
	}
	return msg.ReadEncoding(), map[string]any{
		"specversion": ev.SpecVersion(), "id": ev.ID(), "source": ev.Source(), "type": ev.Type(),
		"subject": ev.Subject(), "time": ev.Time().UTC(), "datacontenttype": ev.DataContentType(),
		"dataschema": ev.DataSchema(), "partitionkey": ev.Extensions()["partitionkey"], "data": data,
	}
}

// want is what the SDK should read from an event: its attributes and data.
func want(t *testing.T, e schemas.Event) map[string]any {
	t.Helper()
	var data any
	if err := json.Unmarshal(e.Data, &data); err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"specversion": e.SpecVersion, "id": e.ID, "source": e.Source, "type": e.Type,
		"subject": e.Subject, "time": e.Time, "datacontenttype": e.DataContentType,
		"dataschema": e.DataSchema, "partitionkey": e.PartitionKey, "data": data,
	}
}

var encodings = map[schemas.Mode]binding.Encoding{
	schemas.Structured: binding.EncodingStructured,
	schemas.Binary:     binding.EncodingBinary,
}

// Calls, control records and dead-letter records, published in either mode
// to a real broker, read back the same by Decode and by the CloudEvents SDK,
// which recognises the mode on its own.
func TestEveryKindOfRecordIsReadableInBothModes(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	for _, mode := range []schemas.Mode{schemas.Structured, schemas.Binary} {
		t.Run(string(mode), func(t *testing.T) {
			topics := map[string]string{"call": kafkatest.Topic(t, brokers, 1), "control": kafkatest.Topic(t, brokers, 1),
				"dlq": kafkatest.Topic(t, brokers, 1)}
			p, err := New(Config{Brokers: brokers, Topic: topics["call"], ControlTopic: topics["control"], DLQTopic: topics["dlq"],
				EventMode: mode, Compression: "lz4", BatchTimeout: 2 * time.Millisecond, WriteTimeout: 10 * time.Second}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			s := schemas.Stream{CCID: 1, VDN: 25, Dir: schemas.In}
			sent := map[string]schemas.Event{
				"call": callEvent(t, 25, 1),
				"control": encoder.DaySealed(s, schemas.DaySeal{Day: "20260329", Published: 3, From: t0, To: t0.Add(time.Hour),
					Quarantined: 1}, t0.Add(26*time.Hour)),
				"dlq": quarantineEvent(25, `{"callerNo":"+8613800001234","callEnd":"x"}`),
			}
			if err := p.Publish(t.Context(), sent["call"]); err != nil {
				t.Fatal(err)
			}
			if err := p.PublishControl(t.Context(), sent["control"]); err != nil {
				t.Fatal(err)
			}
			if err := p.PublishDLQ(t.Context(), sent["dlq"]); err != nil {
				t.Fatal(err)
			}
			for kind, e := range sent {
				msgs := kafkatest.ReadAll(t, brokers, topics[kind], 1, 1)
				if len(msgs) != 1 {
					t.Fatalf("%s topic holds %d records, want 1", kind, len(msgs))
				}
				m := msgs[0]
				got, err := Decode(m)
				if err != nil {
					t.Fatalf("%s: %v", kind, err)
				}
				if diff := cmp.Diff(e, got); diff != "" {
					t.Errorf("%s record decodes to another event (-sent +read):\n%s", kind, diff)
				}
				if mode == schemas.Binary && !bytes.Equal(m.Value, e.Data) {
					t.Errorf("%s: binary value %s, want the data alone", kind, m.Value)
				}
				enc, read := sdkDecode(t, m.Key, m.Value, m.Headers)
				if enc != encodings[mode] {
					t.Errorf("%s: the SDK reads a %s record as %v", kind, mode, enc)
				}
				if diff := cmp.Diff(want(t, e), read); diff != "" {
					t.Errorf("%s: the SDK reads another event (-sent +read):\n%s", kind, diff)
				}
			}
		})
	}
}

// The golden records of schemas/testdata/records, both modes, read by the
// CloudEvents SDK: the wire format as pinned is what an independent
// consumer understands.
func TestTheCloudEventsSDKReadsEveryGoldenRecord(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "schemas", "testdata", "records", "*", "*.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("found %d golden records, want both modes of at least 3 events", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var g struct {
				Key     string
				Headers []struct{ Key, Value string }
				Value   json.RawMessage
			}
			if err := json.Unmarshal(b, &g); err != nil {
				t.Fatal(err)
			}
			var value bytes.Buffer
			if err := json.Compact(&value, g.Value); err != nil {
				t.Fatal(err)
			}
			m := kafka.Message{Key: []byte(g.Key), Value: value.Bytes()}
			for _, h := range g.Headers {
				m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: []byte(h.Value)})
			}
			e, err := Decode(m)
			if err != nil {
				t.Fatal(err)
			}
			enc, read := sdkDecode(t, m.Key, m.Value, m.Headers)
			if mode := schemas.Mode(filepath.Base(filepath.Dir(f))); enc != encodings[mode] {
				t.Errorf("the SDK reads a %s record as %v", mode, enc)
			}
			if diff := cmp.Diff(want(t, e), read); diff != "" {
				t.Errorf("the SDK reads another event than Decode (-Decode +SDK):\n%s", diff)
			}
			if !strings.HasPrefix(e.Type, "com.huawei.ccms.") {
				t.Errorf("type %q", e.Type)
			}
		})
	}
}
