package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// `callpub replay` of one hour of one stream, while the service runs with
// live traffic: the owner answers, and what it published again is exactly
// the calls of that stream whose filter time lies in the hour — each once
// more, with its id.
func TestE2EReplayOfAnHourRepublishesExactlyItsCalls(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const parts = 3
	topic := kafkatest.Topic(t, brokers, parts)
	stateTopic := kafkatest.Topic(t, brokers, 1)
	now := time.Now()
	f := startSim(t, ccmssim.Options{VDNs: 10, Seed: 31, Traffic: ccmssim.Traffic{BusyShare: 0.5, Flat: true, LongCallShare: -1,
		IngestDelayMax: 10 * time.Second, Start: now.Add(-4 * time.Hour), Stop: now.Add(time.Hour)}})
	vars := f.vars(brokers, topic, t.TempDir(), "1-10")
	vars["CALLPUB_KAFKA_STATE_TOPIC"] = stateTopic
	s := startService(t, vars)
	settled := map[string]bool{}
	for id := range oracleIDs(f, nil) {
		settled[id] = true
	}
	s.waitCommitted(t, settled, 2*time.Minute)

	from := now.Add(-3 * time.Hour).Truncate(time.Minute)
	to := from.Add(time.Hour)
	span := map[string]bool{}
	for _, c := range f.sim.Oracle(from, to) {
		if c.VDN == 4 && !c.Inbound && !c.FilterTime.Before(from) && c.FilterTime.Before(to) && !c.VisibleAt.After(f.sim.Now()) {
			span[schemas.EventID(1, c.VDN, c.Inbound, c.CallID)] = true
		}
	}
	before := topicCount(t, brokers, topic, parts)
	env := envconfig.MapLookuper(map[string]string{"CALLPUB_KAFKA_BROKERS": joinComma(brokers), "CALLPUB_KAFKA_STATE_TOPIC": stateTopic})
	var out bytes.Buffer
	err := replayCommand(t.Context(), []string{"-stream", "1/4/out", "-from", from.Format(time.RFC3339),
		"-to", to.Format(time.RFC3339), "-wait", "1m"}, env, &out)
	t.Logf("callpub replay printed:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d calls published again", len(span)); len(span) == 0 || !strings.Contains(out.String(), want) {
		t.Errorf("the answer does not say %q (the span holds %d calls)", want, len(span))
	}
	s.stop(t)

	// Everything after `before` that repeats an earlier id is the replay's.
	msgs := kafkatest.ReadAll(t, brokers, topic, parts, int(topicCount(t, brokers, topic, parts)))
	first := map[string]bool{}
	again := map[string]int{}
	for _, m := range msgs {
		var e schemas.Event
		if err := json.Unmarshal(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		if first[e.ID] {
			again[e.ID]++
		}
		first[e.ID] = true
	}
	for id := range span {
		if again[id] != 1 {
			t.Errorf("call %s of the span published again %d times, want once", id, again[id])
		}
	}
	for id, n := range again {
		if !span[id] {
			t.Errorf("event %s published %d more times, not a call of the span", id, n)
		}
	}
	t.Logf("%d calls in the span, %d events on the topic before the replay, %d republished", len(span), before, len(again))
}

func TestReplayFlagsAreCheckedBeforeAnythingIsAsked(t *testing.T) {
	cases := []struct {
		name string
		args []string
		ccID int
		want string
	}{
		{"neither a stream nor a VDN", []string{"-from", "2026-12-03T10:00:00Z", "-to", "2026-12-03T11:00:00Z"}, 1,
			"replay: give -stream or -vdn, one of them"},
		{"a stream and a VDN", []string{"-stream", "1/4/in", "-vdn", "4", "-from", "2026-12-03T10:00:00Z", "-to", "2026-12-03T11:00:00Z"}, 1,
			"replay: give -stream or -vdn, one of them"},
		{"a malformed stream", []string{"-stream", "1/4/up", "-from", "2026-12-03T10:00:00Z", "-to", "2026-12-03T11:00:00Z"}, 1,
			"replay: -stream: "},
		{"a VDN without a call center", []string{"-vdn", "4", "-from", "2026-12-03T10:00:00Z", "-to", "2026-12-03T11:00:00Z"}, 0,
			"replay: -vdn needs CALLPUB_CC_ID"},
		{"a span that ends before it starts", []string{"-stream", "1/4/in", "-from", "2026-12-03T11:00:00Z", "-to", "2026-12-03T10:00:00Z"}, 1,
			"replay: -from 2026-12-03T11:00:00Z is not before -to 2026-12-03T10:00:00Z"},
		{"a time that is not RFC 3339", []string{"-stream", "1/4/in", "-from", "10:00", "-to", "2026-12-03T10:00:00Z"}, 1,
			"replay: -from and -to must be RFC 3339 times"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseReplayFlags(c.args, c.ccID, io.Discard)
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error %v, want one starting %q", err, c.want)
			}
		})
	}
	f, err := parseReplayFlags([]string{"-vdn", "4", "-from", "2026-12-03T10:00:00Z", "-to", "2026-12-03T11:00:00Z"}, 7, io.Discard)
	if err != nil || fmt.Sprint(f.streams) != "[7/4/in 7/4/out]" {
		t.Errorf("-vdn 4 with ccId 7: streams %v, %v; want both directions", f.streams, err)
	}
}
