package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// Poison rows of every kind among the good ones: every good call is
// published once, each poison row is reported once on the dead-letter topic
// (however often its window is re-read), with its phone numbers masked, and
// the streams keep moving.
func TestE2EPoisonRowsAreQuarantinedOnceAndTheGoodRowsPublished(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic, dlq := kafkatest.Topic(t, brokers, 6), kafkatest.Topic(t, brokers, 2)
	f := startSim(t, ccmssim.Options{VDNs: 10, Seed: 31, Traffic: finiteTraffic(0.3, 5),
		Faults: ccmssim.Faults{Poison: 0.03}})
	want := oracleIDs(f, nil)
	vars := f.vars(brokers, topic, t.TempDir(), "1-10")
	vars["CALLPUB_KAFKA_DLQ_TOPIC"], vars["CALLPUB_PII"] = dlq, "mask"
	s := startService(t, vars)
	s.waitCommitted(t, want, 3*time.Minute)
	s.stop(t)
	if dups := checkTopic(t, brokers, topic, 6, want); dups != 0 {
		t.Errorf("%d duplicate call events", dups)
	}
	records := readEvents(t, brokers, dlq, 2)
	if len(records) == 0 {
		t.Fatal("no dead-letter record: the simulator served poison rows")
	}
	reasons := map[string]int{}
	for _, e := range records {
		var d schemas.QuarantinedData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		reasons[d.Stream+" "+d.RowSHA256]++
		// Validate refuses a record whose row keeps a phone number under mask.
		if b, _ := json.Marshal(e); schemas.Validate(b) != nil {
			t.Errorf("dead-letter record %s: %v", e.ID, schemas.Validate(b))
		}
	}
	for row, n := range reasons {
		if n > 1 {
			t.Errorf("row %s reported %d times", row, n)
		}
	}
	t.Logf("%d good calls published, %d poison rows quarantined once each", len(want), len(records))
}

// A server whose count is per page, one whose pages hold 37 rows whatever
// the limit, one that does both (which looks exactly like a truthful short
// page until the page after it is asked for), and one that ignores offset
// while a first start reads windows of hundreds of rows: every call is read
// and published.
func TestE2EPagesThatLieLoseNothing(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	for _, tc := range []struct {
		name   string
		faults ccmssim.Faults
	}{
		{"count per page", ccmssim.Faults{CountPerPage: true}},
		{"pages capped at 37 rows", ccmssim.Faults{PageCap: 37}},
		{"count per page and pages capped at 37 rows", ccmssim.Faults{CountPerPage: true, PageCap: 37}},
		{"offset ignored, every first window far fuller than a page", ccmssim.Faults{IgnoreOffset: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := kafkatest.Topic(t, brokers, 6)
			f := startSim(t, ccmssim.Options{VDNs: 6, Seed: 32, Traffic: finiteTraffic(0.5, 5), Faults: tc.faults})
			want := oracleIDs(f, nil)
			s := startService(t, f.vars(brokers, topic, t.TempDir(), "1-6"))
			s.waitCommitted(t, want, 2*time.Minute)
			s.stop(t)
			if dups := checkTopic(t, brokers, topic, 6, want); dups != 0 {
				t.Errorf("%d duplicate call events", dups)
			}
			t.Logf("%d calls read through lying pages", len(want))
		})
	}
}

// Calls that never report an end (ccms-api.md A17) are published once as
// calls without an end after CALLPUB_MAX_CALL_DURATION, not dropped.
func TestE2ECallsThatNeverEndArePublishedWithoutAnEnd(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 6)
	traffic := finiteTraffic(0.3, 5)
	traffic.NeverEndShare = 0.05
	f := startSim(t, ccmssim.Options{VDNs: 6, Seed: 33, Traffic: traffic})
	want, unended := map[string]bool{}, 0
	now := f.sim.Now()
	for _, c := range f.sim.Oracle(poller.Horizon(now, ccms.Reach{Loc: f.sim.Location(), Boundary: ccms.BoundaryTenant}), now) {
		switch {
		case c.VisibleAt.After(now):
		case c.NeverEnds:
			want[schemas.UnendedEventID(1, c.VDN, c.Inbound, c.CallID)] = true
			unended++
		default:
			want[schemas.EventID(1, c.VDN, c.Inbound, c.CallID)] = true
		}
	}
	if unended == 0 {
		t.Fatal("the fixture holds no call that never ends")
	}
	vars := f.vars(brokers, topic, t.TempDir(), "1-6")
	vars["CALLPUB_MAX_CALL_DURATION"] = "30m"
	s := startService(t, vars)
	s.waitCommitted(t, want, 3*time.Minute)
	s.stop(t)
	if dups := checkTopic(t, brokers, topic, 6, want); dups != 0 {
		t.Errorf("%d duplicate events", dups)
	}
	t.Logf("%d completed calls and %d calls without an end published", len(want)-unended, unended)
}

// readEvents reads every record of a topic, up to each partition's end.
func readEvents(t *testing.T, brokers []string, topic string, partitions int) []schemas.Event {
	t.Helper()
	var out []schemas.Event
	for p := range partitions {
		conn, err := kafka.DialLeader(t.Context(), "tcp", brokers[0], topic, p)
		if err != nil {
			t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		for off := int64(0); off < last; off++ {
			m, err := conn.ReadMessage(10 << 20)
			if err != nil {
				t.Fatalf("read %s[%d]@%d: %v", topic, p, off, err)
			}
			var e schemas.Event
			if err := json.Unmarshal(m.Value, &e); err != nil {
				t.Fatalf("record %s: %v", strings.TrimSpace(string(m.Value)), err)
			}
			out = append(out, e)
		}
		_ = conn.Close()
	}
	return out
}
