package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"
	"github.com/sethvargo/go-envconfig"

	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// writeRecords writes events to a one-partition topic, each in its mode and
// with its produce time, as callpub would have written them at those times.
func writeRecords(t *testing.T, brokers []string, topic string, events []schemas.Event, modes []schemas.Mode, times []time.Time) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, WriteTimeout: 10 * time.Second}
	defer w.Close()
	msgs := make([]kafka.Message, len(events))
	for i, e := range events {
		r, err := e.Record(modes[i])
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = kafka.Message{Key: r.Key, Value: r.Value, Time: times[i]}
		for _, h := range r.Headers {
			msgs[i].Headers = append(msgs[i].Headers, kafka.Header{Key: h.Key, Value: h.Value})
		}
	}
	if err := w.WriteMessages(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
}

// `callpub tail` against a real broker: calls in both content modes,
// produced an hour apart, and two control records.
func TestTailReadsBothModesFromWhereAskedAndStopsAfterN(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic, control := kafkatest.Topic(t, brokers, 1), kafkatest.Topic(t, brokers, 1)
	now := time.Now().Truncate(time.Millisecond)
	produced := []time.Time{now.Add(-4 * time.Hour), now.Add(-3 * time.Hour), now.Add(-2 * time.Hour), now.Add(-time.Hour)}
	modes := []schemas.Mode{schemas.Structured, schemas.Binary, schemas.Structured, schemas.Binary}
	var calls []schemas.Event
	for i, id := range []string{"c1", "c2", "c3", "c4"} {
		calls = append(calls, call(t, s25in, id, produced[i].Add(-time.Minute), false))
	}
	writeRecords(t, brokers, topic, calls, modes, produced)
	sealed := seal(s25in, fullDay(3, true))
	gap := verifyEnc.Gap(s25in, produced[0].Add(-48*time.Hour), produced[0].Add(-30*time.Hour), produced[0])
	writeRecords(t, brokers, control, []schemas.Event{sealed, gap}, []schemas.Mode{schemas.Binary, schemas.Structured}, produced[:2])
	env := envconfig.MapLookuper(map[string]string{"CALLPUB_KAFKA_BROKERS": joinComma(brokers),
		"CALLPUB_KAFKA_TOPIC": topic, "CALLPUB_KAFKA_CONTROL_TOPIC": control})

	tailLines := func(t *testing.T, args ...string) []string {
		t.Helper()
		// -n ends every run; the deadline only bounds a failing one.
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		var out, errOut bytes.Buffer
		if err := dispatch(ctx, append([]string{"tail"}, args...), env, &out, &errOut); err != nil {
			t.Fatalf("tail %v: %v\n%s", args, err, errOut.String())
		}
		if ctx.Err() != nil {
			t.Fatalf("tail %v did not stop after -n", args)
		}
		return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	}
	callIDs := func(lines []string) []string {
		var ids []string
		for _, l := range lines {
			for _, id := range []string{"c1", "c2", "c3", "c4"} {
				if strings.Contains(l, " call "+id+" ") {
					ids = append(ids, id)
				}
			}
		}
		return ids
	}

	t.Run("-from beginning reads every call, structured or binary, in order", func(t *testing.T) {
		lines := tailLines(t, "-from", "beginning", "-n", "4")
		if diff := cmp.Diff([]string{"c1", "c2", "c3", "c4"}, callIDs(lines)); diff != "" {
			t.Errorf("calls (-want +got):\n%s\n%s", diff, strings.Join(lines, "\n"))
		}
		for i, l := range lines {
			var d schemas.CallCompletedData
			if err := json.Unmarshal(calls[i].Data, &d); err != nil {
				t.Fatal(err)
			}
			if want := callLine(d); l != want {
				t.Errorf("line %d:\n got %q\nwant %q", i, l, want)
			}
		}
	})
	t.Run("-n stops after N events", func(t *testing.T) {
		if diff := cmp.Diff([]string{"c1", "c2"}, callIDs(tailLines(t, "-from", "beginning", "-n", "2"))); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	})
	t.Run("-from a time starts at the first record produced at or after it", func(t *testing.T) {
		from := produced[2].Add(-time.Second).Format(time.RFC3339Nano)
		if diff := cmp.Diff([]string{"c3", "c4"}, callIDs(tailLines(t, "-from", from, "-n", "2"))); diff != "" {
			t.Errorf("calls from %s (-want +got):\n%s", from, diff)
		}
	})
	t.Run("-raw prints a structured event's JSON and a binary record's headers and value", func(t *testing.T) {
		lines := tailLines(t, "-from", "beginning", "-n", "2", "-raw")
		if len(lines) != 2 {
			t.Fatalf("%d lines, want 2", len(lines))
		}
		if want, _ := json.Marshal(calls[0]); lines[0] != string(want) {
			t.Errorf("structured -raw line\n got %s\nwant %s", lines[0], want)
		}
		var bin struct {
			Headers []struct{ Key, Value string }
			Value   json.RawMessage
		}
		if err := json.Unmarshal([]byte(lines[1]), &bin); err != nil {
			t.Fatalf("binary -raw line %q: %v", lines[1], err)
		}
		headers := map[string]string{}
		for _, h := range bin.Headers {
			headers[h.Key] = h.Value
		}
		if headers["ce_id"] != calls[1].ID || headers["ce_type"] != schemas.TypeCallCompleted || headers["content-type"] != "application/json" {
			t.Errorf("binary -raw headers %v", headers)
		}
		if !bytes.Equal(bin.Value, calls[1].Data) {
			t.Errorf("binary -raw value %s, want the data %s", bin.Value, calls[1].Data)
		}
	})
	t.Run("-control reads the control topic", func(t *testing.T) {
		lines := tailLines(t, "-control", "-from", "beginning", "-n", "2")
		if diff := cmp.Diff([]string{controlLine(sealed), controlLine(gap)}, lines); diff != "" {
			t.Errorf("control lines (-want +got):\n%s", diff)
		}
	})
}

func TestTailAndItsFlagsAreInTheHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := dispatch(t.Context(), []string{"--help"}, envconfig.MapLookuper(nil), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"callpub tail [-from beginning|end|RFC3339] [-n N] [-raw] [-control]", "callpub verify ["} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	out.Reset()
	if err := dispatch(t.Context(), []string{"tail", "-h"}, envconfig.MapLookuper(nil), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-control", "-raw", "-from", "-n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("tail -h lacks %q:\n%s", want, out.String())
		}
	}
}
