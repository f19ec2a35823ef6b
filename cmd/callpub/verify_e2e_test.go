package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/sethvargo/go-envconfig"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/publisher"
	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// The proof on a real broker. The service runs, in binary mode, against a
// simulator that serves a few poison rows, with one stream whose cursor is
// 60 hours old (so a gap), until yesterday is sealed twice (reconciliation,
// then the last-chance read) for every stream. Then verify, reading only
// the topics:
//
//   - reports the days the gap lost as never sealed, naming the span;
//   - reports yesterday incomplete for each stream whose seal counts
//     quarantined rows, with that reason, and complete for the others,
//     the count on the topic matching the latest seal;
//   - reports today as not sealed, and so exits 1;
//   - exits 0 for a day and stream that is complete;
//   - fails that day when one of its events is missing: the topic is copied,
//     all but one record, to a fresh topic.
func TestVerifyProvesDaysCompleteAndFindsWhatIsMissing(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic, control, dlq := kafkatest.Topic(t, brokers, 3), kafkatest.Topic(t, brokers, 1), kafkatest.Topic(t, brokers, 1)
	f := startSim(t, ccmssim.Options{VDNs: 4, Seed: 41, Traffic: finiteTraffic(0.3, 70), Faults: ccmssim.Faults{Poison: 0.002}})
	dir := t.TempDir()
	lastSeen := time.Now().Add(-60 * time.Hour).Truncate(time.Millisecond)
	store, err := dedupe.Open(dedupe.Options{Path: filepath.Join(dir, storeFile), LockTimeout: time.Second, CCID: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetCursor("1/1/in", lastSeen); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	vars := f.vars(brokers, topic, dir, "1-4")
	vars["CALLPUB_KAFKA_CONTROL_TOPIC"], vars["CALLPUB_KAFKA_DLQ_TOPIC"] = control, dlq
	vars["CALLPUB_EVENT_MODE"] = "binary"
	// Yesterday is reconciled at once, and read a last time a minute after
	// midnight (UTC): both seals come during the test at any hour.
	vars["CALLPUB_RECONCILE_DELAY"], vars["CALLPUB_LAST_CHANCE_BEFORE"] = "1s", "23h59m"
	streams := []string{"1/1/in", "1/1/out", "1/2/in", "1/2/out", "1/3/in", "1/3/out", "1/4/in", "1/4/out"}
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)

	s := startService(t, vars)
	s.waitCommitted(t, oracleIDs(f, nil), 3*time.Minute)
	waitLastChanceSeals(t, brokers, control, yesterday, streams, 3*time.Minute)
	s.stop(t)

	env := map[string]string{"CALLPUB_KAFKA_BROKERS": joinComma(brokers), "CALLPUB_KAFKA_TOPIC": topic,
		"CALLPUB_KAFKA_CONTROL_TOPIC": control, "CALLPUB_CCMS_TIMEZONE": "UTC"}
	report, err := runVerify(t, env, "-json")
	if err == nil || exitCode(err, &bytes.Buffer{}) != 1 {
		t.Fatalf("verify of every day read, today's included: %v, want a failure with exit code 1", err)
	}
	rows := map[dayKey]dayVerdict{}
	for _, d := range report.Days {
		rows[dayKey{d.Stream, d.Day}] = d
	}
	quarantinedStreams := dlqStreams(t, brokers, dlq)
	var complete, quarantined []string
	for _, st := range streams {
		d, ok := rows[dayKey{st, yesterday}]
		switch {
		case !ok:
			t.Errorf("%s %s not reported", st, yesterday)
		case d.Sealed == nil || d.Seals < 2 || !d.LastChance:
			t.Errorf("%s %s: %d seals, last chance %v: want the reconciliation's and the last-chance read's", st, yesterday, d.Seals, d.LastChance)
		case d.Complete:
			if !d.OK || d.Verdict != verdictComplete || d.Found != *d.Sealed || d.Found == 0 {
				t.Errorf("%s %s sealed complete: verdict %q, sealed %d, found %d, reasons %v", st, yesterday, d.Verdict, *d.Sealed, d.Found, d.Reasons)
			}
			complete = append(complete, st)
		default:
			if d.OK || d.Verdict != verdictIncomplete || !slices.ContainsFunc(d.Reasons, func(r string) bool { return strings.HasSuffix(r, "quarantined rows (on the dead-letter topic)") }) {
				t.Errorf("%s %s sealed incomplete: verdict %q, reasons %v; want incomplete for quarantined rows", st, yesterday, d.Verdict, d.Reasons)
			}
			if !quarantinedStreams[st] {
				t.Errorf("%s %s counts quarantined rows, but the dead-letter topic has none of the stream", st, yesterday)
			}
			if d.Found != *d.Sealed {
				t.Errorf("%s %s: sealed %d, found %d", st, yesterday, *d.Sealed, d.Found)
			}
			quarantined = append(quarantined, st)
		}
	}
	if len(complete) == 0 || len(quarantined) == 0 {
		t.Fatalf("yesterday complete for %v, incomplete for quarantined rows for %v: the fixture should give both", complete, quarantined)
	}
	lost := 0
	for k, d := range rows {
		switch {
		case k.day < yesterday && k.stream == "1/1/in":
			lost++
			if d.Verdict != verdictNotSealed || len(d.Reasons) != 1 || !strings.HasPrefix(d.Reasons[0], "lost to the API's horizon: ") ||
				!strings.HasSuffix(d.Reasons[0], " (gap record)") {
				t.Errorf("%s %s, a day the gap lost: verdict %q, reasons %v", k.stream, k.day, d.Verdict, d.Reasons)
			}
		case k.day < yesterday:
			t.Errorf("%s %s reported, though nothing of the stream falls on it: %+v", k.stream, k.day, d)
		case k.day > yesterday && (d.Verdict != verdictNotSealed || d.OK):
			t.Errorf("%s %s (today) is %q, want not sealed", k.stream, k.day, d.Verdict)
		}
	}
	if lost == 0 {
		t.Error("no day of 1/1/in before yesterday reported: the gap's days are missing")
	}
	t.Logf("yesterday (%s) complete for %v, incomplete for quarantined rows for %v; %d days of 1/1/in lost to the gap; %d days reported",
		yesterday, complete, quarantined, lost, len(report.Days))
	if report.EventTopic.Bad+report.ControlTopic.Bad != 0 {
		t.Errorf("%d records read as not callpub events", report.EventTopic.Bad+report.ControlTopic.Bad)
	}

	// One complete day of one stream: exit 0, and a table that says so.
	text, err := runVerifyText(t, env, "-day", yesterday, "-stream", complete[0])
	if err != nil {
		t.Fatalf("verify -day %s -stream %s: %v\n%s", yesterday, complete[0], err, text)
	}
	if !strings.Contains(text, complete[0]+"  "+yesterday) || !strings.Contains(text, "1 of 1 days proven complete") {
		t.Errorf("verify table:\n%s", text)
	}

	// Tamper: the event topic copied to a fresh one without one record of
	// that day and stream.
	victim := complete[0]
	tampered, removed := copyTopicWithout(t, brokers, topic, 3, func(e schemas.Event) bool {
		var d schemas.CallCompletedData
		return e.Type == schemas.TypeCallCompleted && json.Unmarshal(e.Data, &d) == nil && streamOf(d) == victim &&
			e.Time.UTC().Format(time.DateOnly) == yesterday
	})
	env["CALLPUB_KAFKA_TOPIC"] = tampered
	report, err = runVerify(t, env, "-json", "-day", yesterday)
	if err == nil {
		t.Fatalf("verify of the tampered topic passed; the copy lacks event %s", removed.ID)
	}
	t.Logf("the tampered copy lacks event %s (call %s of %s)", removed.ID, removed.Subject, victim)
	for _, d := range report.Days {
		switch {
		case d.Stream == victim:
			want := fmt.Sprintf("sealed %d calls, the topic holds %d: 1 missing from the topic", *d.Sealed, *d.Sealed-1)
			if d.OK || d.Verdict != verdictMismatch || !slices.Contains(d.Reasons, want) {
				t.Errorf("tampered %s %s: verdict %q, reasons %v; want a mismatch: %s", d.Stream, d.Day, d.Verdict, d.Reasons, want)
			}
		case slices.Contains(complete, d.Stream) && !d.OK:
			t.Errorf("untouched %s %s: verdict %q, reasons %v", d.Stream, d.Day, d.Verdict, d.Reasons)
		}
	}
}

// runVerify runs `callpub verify -json args...` and decodes its report.
func runVerify(t *testing.T, env map[string]string, args ...string) (verifyReport, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := dispatch(t.Context(), append([]string{"verify"}, args...), envconfig.MapLookuper(env), &out, &errOut)
	var r verifyReport
	if jerr := json.Unmarshal(out.Bytes(), &r); jerr != nil {
		t.Fatalf("verify %v printed no report (%v, %v):\n%s%s", args, jerr, err, out.String(), errOut.String())
	}
	return r, err
}

func runVerifyText(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := dispatch(t.Context(), append([]string{"verify"}, args...), envconfig.MapLookuper(env), &out, &errOut)
	return out.String() + errOut.String(), err
}

// waitLastChanceSeals reads the control topic as it grows until every
// stream has a last-chance seal of day, or fails after timeout.
func waitLastChanceSeals(t *testing.T, brokers []string, control, day string, streams []string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: control, Partition: 0, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	sealed := map[string]bool{}
	for len(sealed) < len(streams) {
		m, err := r.ReadMessage(ctx) // blocks until the service writes the next record
		if err != nil {
			t.Fatalf("last-chance seals of %s for %d of %d streams after %v: %v", day, len(sealed), len(streams), timeout, err)
		}
		e, err := publisher.Decode(m)
		if err != nil || (e.Type != schemas.TypeDaySealed) {
			continue
		}
		d, err := schemas.DaySealedOf(e)
		if err == nil && d.Day == day && d.LastChance {
			sealed[d.Stream] = true
		}
	}
}

// dlqStreams are the streams with a record on the dead-letter topic.
func dlqStreams(t *testing.T, brokers []string, dlq string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, m := range readToEnd(t, brokers, dlq, 1) {
		e, err := publisher.Decode(m)
		if err != nil {
			t.Fatal(err)
		}
		var d schemas.QuarantinedData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		out[d.Stream] = true
	}
	return out
}

// readToEnd reads every record a topic holds now.
func readToEnd(t *testing.T, brokers []string, topic string, partitions int) []kafka.Message {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	total := 0
	for p := range partitions {
		res, err := c.ListOffsets(t.Context(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(p)}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, po := range res.Topics[topic] {
			total += int(po.LastOffset)
		}
	}
	if total == 0 {
		return nil
	}
	return kafkatest.ReadAll(t, brokers, topic, partitions, total)
}

// copyTopicWithout copies every record of topic, keys, headers and times
// kept, to a fresh topic with as many partitions, except the first record
// drop picks. It returns the new topic and the event left out.
func copyTopicWithout(t *testing.T, brokers []string, topic string, partitions int, drop func(schemas.Event) bool) (string, schemas.Event) {
	t.Helper()
	fresh := kafkatest.Topic(t, brokers, partitions)
	var keep []kafka.Message
	var removed schemas.Event
	dropped := false
	for _, m := range readToEnd(t, brokers, topic, partitions) {
		e, err := publisher.Decode(m)
		if err != nil {
			t.Fatal(err)
		}
		if !dropped && drop(e) {
			removed, dropped = e, true
			continue
		}
		keep = append(keep, kafka.Message{Partition: m.Partition, Key: m.Key, Value: m.Value, Headers: m.Headers, Time: m.Time})
	}
	if !dropped {
		t.Fatal("no record to leave out")
	}
	// Each record to its partition as it was: the balancer sends a
	// message to the partition it names.
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: fresh, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond,
		Balancer: kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return m.Partition })}
	defer w.Close()
	if err := w.WriteMessages(t.Context(), keep...); err != nil {
		t.Fatal(err)
	}
	return fresh, removed
}
