package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/publisher"
	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// replica is a child `callpub run` in group mode whose log is read as it
// comes: its latest slots, and the streams its turns committed.
type replica struct {
	*child
	name string
	mu   sync.Mutex
	// slots of its latest assignment, and when the log said so.
	slots      []int
	gens       int
	assignedAt time.Time
	rebuild    string               // the "took" of its latest rebuild
	lastTurn   map[string]time.Time // stream → when its latest turn committed, as read
}

func startReplica(t *testing.T, name string, vars map[string]string) *replica {
	t.Helper()
	r := &replica{child: startChild(t, vars, "run"), name: name, lastTurn: map[string]time.Time{}}
	go r.read()
	return r
}

// read consumes the child's output (a child whose output is not read stops
// when the pipe fills).
func (r *replica) read() {
	for l := range r.lines {
		var rec struct {
			Msg    string
			Slots  string
			Stream string
			Took   string
			Seen   string `json:"seen_marks_took"`
			Events int    `json:"event_records_read"`
		}
		if json.Unmarshal([]byte(l), &rec) != nil {
			continue
		}
		r.mu.Lock()
		switch rec.Msg {
		case "consumer group: slots assigned":
			r.slots, r.gens, r.assignedAt = parseSlots(rec.Slots), r.gens+1, time.Now()
		case "state changelog read":
			r.rebuild = fmt.Sprintf("%s (%d event records read for seen marks in %s)", rec.Took, rec.Events, rec.Seen)
		case "window done":
			r.lastTurn[rec.Stream] = time.Now()
		}
		r.mu.Unlock()
	}
}

func parseSlots(s string) []int {
	var out []int
	for _, f := range strings.Fields(strings.Trim(s, "[]")) {
		var n int
		if _, err := fmt.Sscan(f, &n); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func (r *replica) state() (slots []int, gens int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.slots), r.gens
}

// polledSince reports whether a turn of stream committed after t.
func (r *replica) polledSince(stream string, t time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastTurn[stream].After(t)
}

// waitFor calls cond every 100 ms until it holds, or fails after timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		<-tick.C
	}
	return time.Since(start)
}

// everySlotOwnedOnce reports whether the replicas' latest slots cover the
// topic's partitions exactly once, each replica owning some.
func everySlotOwnedOnce(parts int, rs ...*replica) bool {
	seen := make([]int, parts)
	for _, r := range rs {
		slots, _ := r.state()
		if len(slots) == 0 {
			return false
		}
		for _, s := range slots {
			seen[s]++
		}
	}
	return !slices.ContainsFunc(seen, func(n int) bool { return n != 1 })
}

// Group mode end to end: 200 VDNs × 2 directions with live traffic; one
// replica, then three, then one stopped (SIGTERM), then one SIGKILLed.
// Every call is published, each VDN's events on its partition; a stopped
// replica's streams move at once, a killed one's within the session timeout
// plus a poll interval and a rebuild; the moves publish nothing twice that
// reached the topic (the new owner reads its seen marks back from the event
// topic).
func TestE2EGroupModeSharesStreamsAndTakesOverFromStoppedAndKilledReplicas(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const parts, vdns = 12, 200
	topic := kafkatest.Topic(t, brokers, parts)
	stateTopic := kafkatest.Topic(t, brokers, 3)
	now := time.Now()
	f := startSim(t, ccmssim.Options{VDNs: vdns, Seed: 21, Traffic: ccmssim.Traffic{BusyShare: 0.1, Flat: true, LongCallShare: -1,
		IngestDelayMax: 10 * time.Second, Start: now.Add(-3 * time.Hour), Stop: now.Add(time.Hour)}})
	const session = 6 * time.Second
	vars := func() map[string]string {
		v := f.vars(brokers, topic, t.TempDir(), fmt.Sprintf("1-%d", vdns))
		v["CALLPUB_KAFKA_STATE_TOPIC"] = stateTopic
		v["CALLPUB_GROUP_ID"] = "e2e-" + topic
		v["CALLPUB_GROUP_SESSION_TIMEOUT"] = session.String()
		v["CALLPUB_CCMS_RATE"] = "400"
		v["CALLPUB_POLL_STEP_TIMEOUT"] = "20s"
		v["CALLPUB_LOG_LEVEL"] = "debug"
		return v
	}
	a := startReplica(t, "a", vars())
	waitFor(t, "replica a owns every slot", time.Minute, func() bool { return everySlotOwnedOnce(parts, a) })
	b, c := startReplica(t, "b", vars()), startReplica(t, "c", vars())
	took := waitFor(t, "three replicas share the slots", 2*time.Minute, func() bool { return everySlotOwnedOnce(parts, a, b, c) })
	t.Logf("1 → 3 replicas: slots shared after %v", took.Round(time.Millisecond))

	// Scale down: b stops (SIGTERM, exit 0) and leaves the group; a and c
	// take its slots at once, without waiting for a session timeout.
	slotsB, _ := b.state()
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	if code := b.exit(t); code != 0 {
		t.Fatalf("replica b exited %d after SIGTERM, want 0", code)
	}
	handedOver := streamsOf(vdns, parts, slotsB)
	waitFor(t, "b's streams polled by a or c", time.Minute, func() bool {
		return !slices.ContainsFunc(handedOver, func(s string) bool { return !a.polledSince(s, stopped) && !c.polledSince(s, stopped) })
	})
	t.Logf("3 → 2 replicas (SIGTERM of b, %d streams): polled again by a or c %v after the signal", len(handedOver),
		time.Since(stopped).Round(time.Millisecond))

	// Kill c once it has polled each of its streams after the move.
	slotsC, _ := c.state()
	moved := streamsOf(vdns, parts, slotsC)
	since := time.Now()
	waitFor(t, "replica c polls its streams", time.Minute, func() bool {
		return !slices.ContainsFunc(moved, func(s string) bool { return !c.polledSince(s, since.Add(-time.Minute)) })
	})
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitFor(t, "replica a owns every slot again", time.Minute, func() bool { return everySlotOwnedOnce(parts, a) })
	waitFor(t, "c's streams polled by a", 2*time.Minute, func() bool {
		return !slices.ContainsFunc(moved, func(s string) bool { return !a.polledSince(s, killed) })
	})
	failover := time.Since(killed)
	a.mu.Lock()
	assigned, rebuilt := a.assignedAt.Sub(killed), a.rebuild
	a.mu.Unlock()
	t.Logf("SIGKILL of c (%d streams): all of them polled again by a %v after the kill (session timeout %v, POLL_MAX_INTERVAL 3s): "+
		"slots assigned to a after %v, its rebuild took %s, then their first turns", len(moved), failover.Round(time.Millisecond), session,
		assigned.Round(time.Millisecond), rebuilt)
	if limit := session + 3*time.Second + 15*time.Second; failover > limit {
		t.Errorf("failover took %v, more than the session timeout + a poll interval + 15 s for the rebuild and the rebalance (%v)", failover, limit)
	}

	// Everything visible a minute ago reaches the topic, once.
	want := oracleIDs(f, nil)
	settled := f.sim.Now().Add(-time.Minute)
	for _, cl := range f.sim.Oracle(settled, f.sim.Now().Add(time.Hour)) {
		if cl.VisibleAt.After(settled) {
			delete(want, schemas.EventID(1, cl.VDN, cl.Inbound, cl.CallID))
		}
	}
	waitFor(t, "every call on the topic", 3*time.Minute, func() bool { return topicHolds(t, brokers, topic, parts, want) })
	dups := countDuplicates(t, brokers, topic, parts)
	t.Logf("%d calls checked; %d duplicates over 1 → 3 → 2 (SIGTERM) → 1 (SIGKILL) replicas", len(want), dups)
	if dups != 0 {
		t.Errorf("%d duplicates: a move must publish again only what never reached the topic", dups)
	}
}

// streamsOf are the streams of the VDNs whose events go to slots.
func streamsOf(vdns, parts int, slots []int) []string {
	var out []string
	for v := 1; v <= vdns; v++ {
		if slices.Contains(slots, publisher.PartitionOf(v, parts)) {
			out = append(out, fmt.Sprintf("1/%d/in", v), fmt.Sprintf("1/%d/out", v))
		}
	}
	return out
}

// topicHolds reports whether every id of want is on the topic, each event of
// a VDN on the partition a Java producer picks.
func topicHolds(t *testing.T, brokers []string, topic string, parts int, want map[string]bool) bool {
	t.Helper()
	n := topicCount(t, brokers, topic, parts)
	if n < int64(len(want)) {
		return false
	}
	got := map[string]bool{}
	for _, m := range kafkatest.ReadAll(t, brokers, topic, parts, int(n)) {
		var e schemas.Event
		if err := json.Unmarshal(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		if p := kafkatest.JavaPartition(m.Key, parts); p != m.Partition {
			t.Fatalf("event %s of VDN %s on partition %d, a Java producer picks %d", e.ID, m.Key, m.Partition, p)
		}
		got[e.ID] = true
	}
	for id := range want {
		if !got[id] {
			return false
		}
	}
	return true
}

// countDuplicates counts the records of the topic whose id came before.
func countDuplicates(t *testing.T, brokers []string, topic string, parts int) int {
	t.Helper()
	seen, dups := map[string]bool{}, 0
	for _, m := range kafkatest.ReadAll(t, brokers, topic, parts, int(topicCount(t, brokers, topic, parts))) {
		var e schemas.Event
		if err := json.Unmarshal(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		if seen[e.ID] {
			dups++
		}
		seen[e.ID] = true
	}
	return dups
}
