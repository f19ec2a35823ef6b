package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"
	"github.com/sethvargo/go-envconfig"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/publisher"
	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// TestMain also serves as the `callpub` binary for the tests that start and
// kill a child process: with CALLPUB_E2E_CHILD set, it runs dispatch on its
// arguments after "--" and exits like main does.
func TestMain(m *testing.M) {
	if os.Getenv("CALLPUB_E2E_CHILD") == "1" {
		args := os.Args[1:]
		for i, a := range args {
			if a == "--" {
				args = args[i+1:]
				break
			}
		}
		ctx, stop := signalContext()
		err := dispatch(ctx, args, envconfig.OsLookuper(), os.Stdout, os.Stderr)
		stop()
		os.Exit(exitCode(err, os.Stderr))
	}
	kafkatest.Main(m)
}

// simFixture is a simulator over HTTPS with a fixed set of calls.
type simFixture struct {
	sim *ccmssim.Sim
	srv *ccmssim.Server
}

func startSim(t testing.TB, o ccmssim.Options) simFixture {
	t.Helper()
	o.AK, o.SK, o.CCID = "e2e-ak", "e2e-sk", 1
	sim, err := ccmssim.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ccmssim.StartServer(sim, ccmssim.ServerOptions{TLS: true, CertDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return simFixture{sim: sim, srv: srv}
}

// finiteTraffic has every call of the fixture complete and visible before the
// test starts, so the oracle is a fixed set.
func finiteTraffic(busy float64, hours int) ccmssim.Traffic {
	now := time.Now()
	return ccmssim.Traffic{BusyShare: busy, Flat: true, LongCallShare: -1, IngestDelayMax: 30 * time.Second,
		Start: now.Add(-time.Duration(hours) * time.Hour), Stop: now.Add(-90 * time.Minute)}
}

// vars is a complete configuration for one service against the fixture.
func (f simFixture) vars(brokers []string, topic, stateDir, vdns string) map[string]string {
	return map[string]string{
		"CALLPUB_CC_ID": "1", "CALLPUB_VDNS": vdns, "CALLPUB_DIRECTIONS": "in,out",
		"CALLPUB_CCMS_URL": f.srv.URL, "CALLPUB_CCMS_AK": "e2e-ak", "CALLPUB_CCMS_SK": "e2e-sk",
		"CALLPUB_CCMS_CA_FILE": f.srv.CAFile, "CALLPUB_CCMS_RATE": "2000", "CALLPUB_CCMS_MAX_IN_FLIGHT": "8",
		"CALLPUB_CCMS_RETRY_BASE_DELAY": "50ms", "CALLPUB_CCMS_RETRY_MAX_DELAY": "1s",
		"CALLPUB_POLL_INTERVAL": "1s", "CALLPUB_POLL_MAX_INTERVAL": "3s", "CALLPUB_POLL_MAX_SPAN": "12h",
		"CALLPUB_LOOKBACK": "2m", "CALLPUB_SWEEP_INTERVAL": "5s", "CALLPUB_SWEEP_LOOKBACK": "3h",
		"CALLPUB_POLL_RETRY_BASE": "100ms", "CALLPUB_POLL_RETRY_MAX": "2s",
		"CALLPUB_KAFKA_BROKERS": joinComma(brokers), "CALLPUB_KAFKA_TOPIC": topic,
		"CALLPUB_STATE_DIR": stateDir, "CALLPUB_HTTP_ADDR": "127.0.0.1:0", "CALLPUB_LOG_LEVEL": "warn",
	}
}

func joinComma(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ","
		}
		out += v
	}
	return out
}

// service runs serve() in the background and counts what it commits.
type service struct {
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	ids    map[string]int  // event id -> times committed
	events []schemas.Event // each id's first commit, in commit order
	vdns   map[int]bool
	more   chan struct{} // signalled after each commit
}

func startService(t testing.TB, vars map[string]string) *service {
	t.Helper()
	return startServiceWith(t, vars, hooks{})
}

// waitCommitted waits until every id in want was committed, or fails after timeout.
func (s *service) waitCommitted(t testing.TB, want map[string]bool, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	// Each committed event is looked at once (s.events holds each once, in
	// commit order): a backfill of 200,000 calls in 2,500 commits would
	// otherwise spend more CPU here than the service it measures.
	missing, seen := len(want), 0
	for {
		s.mu.Lock()
		for _, e := range s.events[seen:] {
			if want[e.ID] {
				missing--
			}
		}
		seen = len(s.events)
		s.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-s.more:
		case err := <-s.done:
			t.Fatalf("service stopped with %d calls missing: %v", missing, err)
		case <-deadline.C:
			s.mu.Lock()
			var some []string
			for id := range want {
				if s.ids[id] == 0 && len(some) < 5 {
					some = append(some, id)
				}
			}
			s.mu.Unlock()
			s.stop(t) // releases the store for describe
			t.Fatalf("%d of %d calls not committed after %v, e.g. %v", missing, len(want), timeout, describe(some))
		}
	}
}

// committed returns each committed event once, in commit order.
func (s *service) committed() []schemas.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

func (s *service) stop(t testing.TB) {
	t.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	if err := <-s.done; err != nil {
		t.Errorf("service stopped with %v, want nil", err)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Logf("%s", b)
	return len(b), nil
}

// describe names the calls behind event ids, for failure messages.
var describe = func(ids []string) string { return fmt.Sprint(ids) }

// oracleIDs lists the event ids of every completed, visible call of the
// given VDNs (nil: all) the API still holds.
func oracleIDs(f simFixture, vdns map[int]bool) map[string]bool {
	now := f.sim.Now()
	ids := map[string]bool{}
	for _, c := range f.sim.Oracle(poller.Horizon(now, ccms.Reach{Loc: f.sim.Location(), Boundary: ccms.BoundaryTenant}), now) {
		if c.VisibleAt.After(now) || (vdns != nil && !vdns[c.VDN]) {
			continue
		}
		ids[schemas.EventID(1, c.VDN, c.Inbound, c.CallID)] = true
	}
	return ids
}

// checkTopic reads the whole topic and checks every event: valid against the
// schema, keyed and partitioned by its VDN like a Java producer would, each
// id of want present, and nothing else. It returns the number of duplicates.
func checkTopic(t *testing.T, brokers []string, topic string, partitions int, want map[string]bool) int {
	t.Helper()
	_, dups := readChecked(t, brokers, topic, partitions, want)
	return dups
}

// checkTopicInOrder is checkTopic that also checks that every stream's
// events arrived in the order the services committed them (checkOrder).
func checkTopicInOrder(t *testing.T, brokers []string, topic string, partitions int, want map[string]bool, svcs ...*service) int {
	t.Helper()
	msgs, dups := readChecked(t, brokers, topic, partitions, want)
	var committed []schemas.Event
	for _, s := range svcs {
		committed = append(committed, s.committed()...)
	}
	checkOrder(t, msgs, committed)
	return dups
}

// readChecked is checkTopic returning the records it read too.
func readChecked(t *testing.T, brokers []string, topic string, partitions int, want map[string]bool) ([]kafka.Message, int) {
	t.Helper()
	msgs := kafkatest.ReadAll(t, brokers, topic, partitions, len(want))
	got := map[string]int{}
	for _, m := range msgs {
		if err := schemas.Validate(m.Value); err != nil {
			t.Fatalf("invalid event at %s[%d]@%d: %v", topic, m.Partition, m.Offset, err)
		}
		var e schemas.Event
		if err := json.Unmarshal(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != e.PartitionKey {
			t.Errorf("event %s has key %q, partitionkey %q", e.ID, m.Key, e.PartitionKey)
		}
		if p := kafkatest.JavaPartition(m.Key, partitions); p != m.Partition {
			t.Errorf("event %s of VDN %s on partition %d, a Java producer picks %d", e.ID, m.Key, m.Partition, p)
		}
		if !want[e.ID] {
			t.Errorf("event %s (%s) is not a call the simulator holds", e.ID, e.Subject)
		}
		got[e.ID]++
	}
	dups := 0
	for id := range want {
		switch n := got[id]; {
		case n == 0:
			t.Errorf("call event %s missing from the topic", id)
		case n > 1:
			dups += n - 1
		}
	}
	return msgs, dups
}

// checkOrder checks that each stream's events are on the topic in the
// order they were committed: the committed sequence of each stream (a VDN in
// one direction) is a subsequence of the stream's records in offset order.
// Each stream has one batch in flight at a time, so a retried batch may
// land twice, but an event never lands before one committed ahead of it.
// (A VDN's two directions are two streams, which two workers may commit in
// either order while their records share the VDN's partition: the order
// promised is the stream's.)
func checkOrder(t *testing.T, msgs []kafka.Message, committed []schemas.Event) {
	t.Helper()
	streams, total, problems, err := outOfOrder(msgs, committed)
	if err != nil {
		t.Fatal(err)
	}
	if total == 0 {
		t.Fatal("no committed event to check the order of")
	}
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d committed events of %d streams arrived in commit order", total, streams)
}

// outOfOrder is checkOrder's test: the streams and events committed, and a
// line for each stream whose records break its commit order.
func outOfOrder(msgs []kafka.Message, committed []schemas.Event) (streams, total int, problems []string, err error) {
	streamOfEvent := func(e schemas.Event) (string, error) {
		var d schemas.CallCompletedData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return "", fmt.Errorf("event %s: %w", e.ID, err)
		}
		return streamOf(d), nil
	}
	onTopic := map[string][]string{} // stream -> ids in offset order
	partition := map[string]int{}    // stream -> its partition
	for _, m := range msgs {         // ReadAll: partition by partition, each in offset order
		e, err := publisher.Decode(m)
		if err != nil {
			return 0, 0, nil, err
		}
		s, err := streamOfEvent(e)
		if err != nil {
			return 0, 0, nil, err
		}
		if p, ok := partition[s]; ok && p != m.Partition {
			problems = append(problems, fmt.Sprintf("stream %s on partitions %d and %d", s, p, m.Partition))
		}
		partition[s] = m.Partition
		onTopic[s] = append(onTopic[s], e.ID)
	}
	inOrder := map[string][]string{} // stream -> ids in commit order
	for _, e := range committed {
		if e.Type == schemas.TypeCallCompleted || e.Type == schemas.TypeCallUnended {
			s, err := streamOfEvent(e)
			if err != nil {
				return 0, 0, nil, err
			}
			inOrder[s] = append(inOrder[s], e.ID)
			total++
		}
	}
	for s, ids := range inOrder {
		i := 0
		for _, id := range onTopic[s] {
			if i < len(ids) && id == ids[i] {
				i++
			}
		}
		if i < len(ids) {
			problems = append(problems, fmt.Sprintf("stream %s: committed event %d of %d (%s) is not on the topic after the ones committed before it",
				s, i+1, len(ids), ids[i]))
		}
	}
	slices.Sort(problems)
	return len(inOrder), total, problems, nil
}

func TestOutOfOrderFindsAnEventAheadOfOneCommittedBeforeIt(t *testing.T) {
	a, b, c := call(t, s25in, "a", at(8, 0), false), call(t, s25in, "b", at(9, 0), false), call(t, s25in, "c", at(10, 0), false)
	other := call(t, s26out, "z", at(8, 30), false)
	rec := func(es ...schemas.Event) []kafka.Message {
		var out []kafka.Message
		for _, e := range es {
			r, err := e.Record(schemas.Structured)
			if err != nil {
				t.Fatal(err)
			}
			m := kafka.Message{Key: r.Key, Value: r.Value}
			for _, h := range r.Headers {
				m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: h.Value})
			}
			out = append(out, m)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		topic  []kafka.Message
		commit []schemas.Event
		want   []string
	}{
		{"records in commit order", rec(a, b, c), []schemas.Event{a, b, c}, nil},
		{"a retried batch that landed twice is still in order", rec(a, b, a, b, c), []schemas.Event{a, b, c}, nil},
		{"another stream's records in between do not matter", rec(a, other, b, c), []schemas.Event{other, a, b, c}, nil},
		{"events published but never committed do not matter", rec(a, b, c), []schemas.Event{a, c}, nil},
		{"an event ahead of one committed before it is found", rec(a, c, b), []schemas.Event{a, b, c},
			[]string{"stream 1/25/in: committed event 3 of 3 (" + c.ID + ") is not on the topic after the ones committed before it"}},
		{"a committed event missing from the topic is found", rec(a, c), []schemas.Event{a, b, c},
			[]string{"stream 1/25/in: committed event 2 of 3 (" + b.ID + ") is not on the topic after the ones committed before it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, got, err := outOfOrder(tc.topic, tc.commit)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// 1. Backfill: every completed call the simulator holds, for 200 VDNs in
// both directions, lands on the topic exactly once, valid, on its VDN's partition.
func TestE2EBackfillPublishesEveryCallOnce(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 12)
	f := startSim(t, ccmssim.Options{VDNs: 200, Seed: 1, Traffic: finiteTraffic(0.15, 6)})
	want := oracleIDs(f, nil)
	if len(want) < 20000 {
		t.Fatalf("the fixture holds %d calls, want at least 20,000", len(want))
	}
	s := startService(t, f.vars(brokers, topic, t.TempDir(), "1-200"))
	s.waitCommitted(t, want, 4*time.Minute)
	s.stop(t)
	if dups := checkTopicInOrder(t, brokers, topic, 12, want, s); dups != 0 {
		t.Errorf("%d duplicates without faults or restarts", dups)
	}
	t.Logf("%d calls of 200 VDNs x 2 directions published", len(want))
}

// 3. Faults on: none missed; duplicates only carry the ids of real calls.
func TestE2EFaultsLoseNothing(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 6)
	f := startSim(t, ccmssim.Options{VDNs: 30, Seed: 2, Traffic: finiteTraffic(0.2, 7),
		Faults: ccmssim.Faults{ServerError: 0.05, RateLimit: 0.01, RetryAfter: time.Second, Timeout: 0.005,
			TimeoutDelay: 2 * time.Second, Truncate: 0.03, Malformed: 0.03, ResultError: 0.02,
			NumbersAsStrings: true, IgnoreOffset: true}})
	want := oracleIDs(f, nil)
	vars := f.vars(brokers, topic, t.TempDir(), "1-30")
	vars["CALLPUB_CCMS_TIMEOUT"] = "1s"
	s := startService(t, vars)
	s.waitCommitted(t, want, 4*time.Minute)
	s.stop(t)
	dups := checkTopicInOrder(t, brokers, topic, 6, want, s)
	t.Logf("%d calls published through faults, %d duplicates", len(want), dups)
}

// 5. An outage longer than the API's reach: each stream's gap is reported in
// the store with its exact span, and everything still reachable is published.
func TestE2EOutageReportsTheExactGap(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 3)
	control := kafkatest.Topic(t, brokers, 1)
	f := startSim(t, ccmssim.Options{VDNs: 2, Seed: 3, Traffic: finiteTraffic(1, 7)})
	dir := t.TempDir()
	lastSeen := time.Now().Add(-60 * time.Hour).Truncate(time.Millisecond)
	store, err := dedupe.Open(dedupe.Options{Path: filepath.Join(dir, storeFile), LockTimeout: time.Second, CCID: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"1/1/in", "1/1/out", "1/2/in", "1/2/out"} {
		if err := store.SetCursor(s, lastSeen); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	vars := f.vars(brokers, topic, dir, "1-2")
	vars["CALLPUB_KAFKA_CONTROL_TOPIC"] = control
	want := oracleIDs(f, nil)
	horizon := poller.Horizon(time.Now(), ccms.Reach{})
	s := startService(t, vars)
	s.waitCommitted(t, want, 2*time.Minute)
	s.stop(t)
	checkTopicInOrder(t, brokers, topic, 3, want, s)

	store, err = dedupe.Open(dedupe.Options{Path: filepath.Join(dir, storeFile), LockTimeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	gaps, err := store.Gaps()
	if err != nil {
		t.Fatal(err)
	}
	if len(gaps) != 4 {
		t.Fatalf("gaps %+v, want one per stream", gaps)
	}
	for _, g := range gaps {
		if !g.Start.Equal(lastSeen) || !g.End.Equal(horizon) {
			t.Errorf("gap of %s is %v..%v, want %v..%v", g.Stream, g.Start, g.End, lastSeen, horizon)
		}
	}
	var recs []schemas.GapData
	for _, m := range kafkatest.ReadAll(t, brokers, control, 1, 4) {
		var e schemas.Event
		if err := json.Unmarshal(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		if e.Type != schemas.TypeGap {
			continue
		}
		var d schemas.GapData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, d)
	}
	if len(recs) != 4 {
		t.Errorf("%d gap records on the control topic, want 4", len(recs))
	}
}

// Two shard replicas against one simulator and one broker: together they
// publish every call exactly once, and neither polls the other's VDNs.
func TestE2ETwoShardsShareTheWorkWithoutOverlap(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 6)
	f := startSim(t, ccmssim.Options{VDNs: 40, Seed: 4, Traffic: finiteTraffic(0.2, 5)})
	want := oracleIDs(f, nil)
	var svcs [2]*service
	owned := [2]map[int]bool{{}, {}}
	for i := range svcs {
		vars := f.vars(brokers, topic, t.TempDir(), "1-40")
		vars["CALLPUB_SHARDS"] = "2"
		vars["CALLPUB_POD_NAME"] = fmt.Sprintf("callpub-%d", i)
		sh := shard{I: i, N: 2}
		for v := 1; v <= 40; v++ {
			if sh.owns(poller.Stream{CCID: 1, VDN: v, Dir: poller.In}) {
				owned[i][v] = true
			}
		}
		svcs[i] = startService(t, vars)
	}
	if len(owned[0]) == 0 || len(owned[1]) == 0 {
		t.Fatalf("shards own %d and %d VDNs: the hash does not split 40 VDNs", len(owned[0]), len(owned[1]))
	}
	for i, s := range svcs {
		s.waitCommitted(t, oracleIDs(f, owned[i]), 3*time.Minute)
	}
	for i, s := range svcs {
		s.stop(t)
		for v := range s.vdns {
			if !owned[i][v] {
				t.Errorf("shard %d published VDN %d, which shard %d owns", i, v, 1-i)
			}
		}
	}
	if dups := checkTopicInOrder(t, brokers, topic, 6, want, svcs[:]...); dups != 0 {
		t.Errorf("%d duplicates between two shards", dups)
	}
}

// 2. Live: calls keep arriving with ingestion delays, some listed while
// still running; after 20 s of live traffic every call that became visible
// is published.
func TestE2ELiveTrafficMissesNothing(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 3)
	f := startSim(t, ccmssim.Options{VDNs: 6, Seed: 6, Traffic: ccmssim.Traffic{
		BusyShare: 1, BusyPerHour: 1800, Flat: true, ListInProgress: true, InProgressShare: 1,
		MeanTalk: 15 * time.Second, MeanWait: 5 * time.Second, LongCallShare: -1,
		IngestDelayMax: 8 * time.Second, Start: time.Now().Add(-30 * time.Minute)}})
	vars := f.vars(brokers, topic, t.TempDir(), "1-6")
	s := startService(t, vars)
	s.waitCommitted(t, oracleIDs(f, nil), 2*time.Minute) // the backfill of the last half hour
	<-time.After(20 * time.Second)                       // live traffic: the test's duration, not a synchronisation
	// Calls visible for 10 s have had a fresh step (1 s) and a sweep (5 s).
	settled := time.Now().Add(-10 * time.Second)
	want := map[string]bool{}
	live := 0
	for _, c := range f.sim.Oracle(poller.Horizon(time.Now(), ccms.Reach{}), time.Now()) {
		if c.VisibleAt.Before(settled) {
			want[schemas.EventID(1, c.VDN, c.Inbound, c.CallID)] = true
			if c.VisibleAt.After(settled.Add(-20 * time.Second)) {
				live++
			}
		}
	}
	if live < 10 {
		t.Fatalf("only %d calls completed during the live period: the test proves little", live)
	}
	s.waitCommitted(t, want, time.Minute)
	s.stop(t)
	if dups := checkTopicContains(t, brokers, topic, 3, want, s); dups != 0 {
		t.Errorf("%d duplicates in live traffic without faults", dups)
	}
	t.Logf("%d calls published, %d of them completed during the live period", len(want), live)
}

// checkTopicContains is checkTopic for a topic that may also hold calls that
// became visible after want was computed. It checks that every stream's
// events arrived in the order svcs committed them (checkOrder).
func checkTopicContains(t *testing.T, brokers []string, topic string, partitions int, want map[string]bool, svcs ...*service) int {
	t.Helper()
	msgs := kafkatest.ReadAll(t, brokers, topic, partitions, len(want))
	got := map[string]int{}
	for _, m := range msgs {
		if err := schemas.Validate(m.Value); err != nil {
			t.Fatalf("invalid event: %v", err)
		}
		var e schemas.Event
		if err := json.Unmarshal(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		if p := kafkatest.JavaPartition(m.Key, partitions); p != m.Partition {
			t.Errorf("event %s on partition %d, a Java producer picks %d", e.ID, m.Partition, p)
		}
		got[e.ID]++
	}
	dups := 0
	for _, n := range got {
		if n > 1 {
			dups += n - 1
		}
	}
	for id := range want {
		if got[id] == 0 {
			t.Errorf("call event %s missing from the topic", id)
		}
	}
	if len(svcs) > 0 {
		var committed []schemas.Event
		for _, s := range svcs {
			committed = append(committed, s.committed()...)
		}
		checkOrder(t, msgs, committed)
	}
	return dups
}

// `callpub check` against the simulator and the broker: the right secret
// passes every check, a wrong one fails with the 401 and exit code 1.
func TestE2ECheckSignsAndReportsAuthFailures(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 2)
	f := startSim(t, ccmssim.Options{VDNs: 3, Seed: 8})
	vars := f.vars(brokers, topic, t.TempDir(), "1-3")
	var out bytes.Buffer
	if err := check(t.Context(), envconfig.MapLookuper(vars), &out); err != nil {
		t.Fatalf("check with the right secret: %v\n%s", err, out.String())
	}
	for _, want := range []string{"ccms     ok: VDN 1 in", "ccms     ok: VDN 1 out", "kafka    ok: topic " + topic + " has 2 partitions"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
	vars["CALLPUB_CCMS_SK"] = "not-the-secret"
	out.Reset()
	err := check(t.Context(), envconfig.MapLookuper(vars), &out)
	if err == nil || exitCode(err, io.Discard) != 1 {
		t.Fatalf("check with a wrong secret: %v, want a failure with exit code 1", err)
	}
	if !strings.Contains(out.String(), "http 401 unauthorized") || strings.Contains(out.String(), "not-the-secret") {
		t.Errorf("check output should name the 401 and never the secret:\n%s", out.String())
	}
}

// `callpub check` asks the server which midnight bounds its range when the
// configured zone is not UTC (ccms-api.md A10), and names the mode that
// matches the server, at whatever hour the test runs.
func TestE2ECheckTellsWhichMidnightBoundsTheServersRange(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 1)
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		loc  *time.Location
		want string
	}{
		{"a server on UTC days", time.UTC, "CALLPUB_CCMS_DAY_BOUNDARY_MODE=utc"},
		{"a server on the tenant's days", shanghai, "CALLPUB_CCMS_DAY_BOUNDARY_MODE=tenant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startSim(t, ccmssim.Options{VDNs: 1, Seed: 8, Location: tc.loc})
			vars := f.vars(brokers, topic, t.TempDir(), "1")
			vars["CALLPUB_CCMS_TIMEZONE"] = "Asia/Shanghai"
			var out bytes.Buffer
			if err := check(t.Context(), envconfig.MapLookuper(vars), &out); err != nil {
				t.Fatalf("check: %v\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), "day      ok: ") || !strings.Contains(out.String(), tc.want) {
				t.Errorf("check output lacks a day line with %q:\n%s", tc.want, out.String())
			}
		})
	}
}
