package main

import (
	"context"
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// A tenant east of UTC, with the default day boundary mode (auto), starts
// for the first time against a server on Shanghai days and against one on
// UTC days: either way every call the server still holds is published, from
// its own 00:00 of yesterday, and the only request the server refuses is
// the question that tells the two apart. That question asks for the first
// minute after the earlier of the two midnights of yesterday, so the server
// whose midnight is the later refuses it: the UTC server from 00:00 to 16:00
// UTC, the Shanghai server from 16:00 to 24:00.
func TestE2EAFirstStartReadsAllTheServerHoldsWhateverItsDays(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	yesterday := func(now time.Time, loc *time.Location) time.Time {
		d := now.In(loc)
		return time.Date(d.Year(), d.Month(), d.Day()-1, 0, 0, 0, 0, loc)
	}
	for _, tc := range []struct {
		name          string
		server, other *time.Location
	}{
		{name: "a server on Shanghai days", server: shanghai, other: time.UTC},
		{name: "a server on UTC days", server: time.UTC, other: shanghai},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			var maxRefused int64 // the probe, when this server's midnight is the later
			if yesterday(now, tc.server).After(yesterday(now, tc.other)) {
				maxRefused = 1
			}
			f := startSim(t, ccmssim.Options{VDNs: 3, Seed: 41, Location: tc.server, Traffic: ccmssim.Traffic{
				BusyShare: 0.3, Flat: true, LongCallShare: -1, IngestDelayMax: 30 * time.Second,
				Start: now.Add(-60 * time.Hour), Stop: now.Add(-90 * time.Minute)}})
			want := oracleIDs(f, nil) // from the server's own horizon
			topic := kafkatest.Topic(t, brokers, 3)
			vars := f.vars(brokers, topic, t.TempDir(), "1-3")
			delete(vars, "CALLPUB_POLL_MAX_SPAN")
			vars["CALLPUB_CCMS_TIMEZONE"] = "Asia/Shanghai"
			s := startService(t, vars)
			s.waitCommitted(t, want, 2*time.Minute)
			s.stop(t)
			if dups := checkTopic(t, brokers, topic, 3, want); dups != 0 {
				t.Errorf("%d duplicates", dups)
			}
			if n := f.sim.Invalid(); n > maxRefused {
				t.Errorf("the server refused %d requests as invalid, want at most %d", n, maxRefused)
			}
			t.Logf("%d calls from the server's 00:00 of yesterday, %d requests, %d refused", len(want), f.sim.Requests(), f.sim.Invalid())
		})
	}
}

// A stream with nothing in the API's reach costs one request at its first
// start: one window from the horizon to now, answered by one empty page.
// Each stream's first heartbeat on the control topic says its first window
// is committed; the next poll is 30 s away, the first sweep 15 minutes.
func TestE2EAnEmptyStreamsFirstStartCostsOneRequest(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	long := time.Now().Add(-96 * time.Hour) // all traffic long gone from the reach
	f := startSim(t, ccmssim.Options{VDNs: 2, Seed: 43, Traffic: ccmssim.Traffic{Flat: true, Start: long, Stop: long.Add(time.Hour)}})
	topic, control := kafkatest.Topic(t, brokers, 2), kafkatest.Topic(t, brokers, 1)
	vars := f.vars(brokers, topic, t.TempDir(), "1-2")
	delete(vars, "CALLPUB_POLL_MAX_SPAN")
	maps.Copy(vars, map[string]string{"CALLPUB_POLL_INTERVAL": "30s", "CALLPUB_POLL_MAX_INTERVAL": "5m",
		"CALLPUB_SWEEP_INTERVAL": "15m", "CALLPUB_LAST_CHANCE_BEFORE": "1s", "CALLPUB_KAFKA_CONTROL_TOPIC": control})
	s := startService(t, vars)
	waitHeartbeats(t, brokers, control, 4)
	s.stop(t)
	if got := f.sim.Requests(); got != 4 {
		t.Errorf("%d requests for the first start of 4 empty streams, want one each", got)
	}
}

// waitHeartbeats reads the control topic until it holds a heartbeat of
// each of n streams.
func waitHeartbeats(t *testing.T, brokers []string, control string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: control, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	streams := map[string]bool{}
	for len(streams) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("heartbeats of %d streams, want %d: %v", len(streams), n, err)
		}
		var e schemas.Event
		if err := json.Unmarshal(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		if e.Type == schemas.TypeHeartbeat {
			streams[e.Subject] = true
		}
	}
}
