package main

import (
	"encoding/json"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/publisher"
	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// A replica whose state directory is lost (SIGKILL, then the directory
// deleted) rebuilds its store from the state topic and the event topic when
// it starts again: nothing is missing, and it does not publish again what
// was acknowledged before the loss. Without the changelog it would publish
// everything the API still holds a second time.
func TestE2EALostStateDirectoryIsRebuiltFromKafka(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const parts = 6
	topic := kafkatest.Topic(t, brokers, parts)
	stateTopic := kafkatest.Topic(t, brokers, 3)
	f := startSim(t, ccmssim.Options{VDNs: 40, Seed: 12, Traffic: finiteTraffic(0.3, 6)})
	want := oracleIDs(f, nil)
	dir := t.TempDir()
	vars := f.vars(brokers, topic, dir, "1-40")
	vars["CALLPUB_KAFKA_STATE_TOPIC"] = stateTopic
	vars["CALLPUB_CCMS_RATE"] = "300" // slow enough that the run ends mid-backfill
	vars["CALLPUB_LOG_LEVEL"] = "debug"

	c := startChild(t, vars, "run")
	c.waitPublished(t, 2000)
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := c.exit(t); code != -int(syscall.SIGKILL) {
		t.Fatalf("exit %d, want killed", code)
	}
	committed := seenKeys(t, dir)
	acked := topicCount(t, brokers, topic, parts)
	if acked == 0 || committed >= int64(len(want)) {
		t.Fatalf("%d events acknowledged, %d committed of %d calls: the loss proves nothing", acked, committed, len(want))
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	records, err := publisher.ReadState(t.Context(), publisher.Config{Brokers: brokers, Topic: topic, StateTopic: stateTopic,
		Compression: "lz4", BatchTimeout: 5 * time.Millisecond, WriteTimeout: 10 * time.Second},
		func(string, []byte, int64, int) error { return nil })
	if err != nil || records == 0 {
		t.Fatalf("%d state records, %v: the run wrote no changelog", records, err)
	}

	remaining := map[string]bool{}
	for id := range want {
		remaining[id] = true
	}
	for _, m := range kafkatest.ReadAll(t, brokers, topic, parts, int(acked)) {
		var e schemas.Event
		if err := json.Unmarshal(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		delete(remaining, e.ID)
	}
	start := time.Now()
	s := startService(t, vars)
	s.waitCommitted(t, remaining, 3*time.Minute)
	s.stop(t)
	dups := checkTopic(t, brokers, topic, parts, want)
	// The bound the issue sets: the batches in flight at the loss (events
	// acknowledged, not committed). Without a rebuild every acknowledged
	// event would come again.
	inFlight := acked - committed
	if int64(dups) > inFlight {
		t.Errorf("%d duplicates after the rebuild, but only %d events were acknowledged and not committed at the kill", dups, inFlight)
	}
	t.Logf("%d calls; before the loss %d acknowledged, %d committed, %d state records; after it %d duplicates; the rest took %v",
		len(want), acked, committed, records, dups, time.Since(start).Round(time.Millisecond))
}
