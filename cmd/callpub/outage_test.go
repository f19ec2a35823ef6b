package main

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// The two tests below cut a dependency in the middle of a live run and
// restore it. They assert that nothing is lost and bound how long the
// service takes to use the dependency again: with the backoff of a failed
// stream alone (2 s doubling up to 5 min) that took tens of seconds after a
// minute-long outage; the scheduler's probes and wake-up make it seconds.
// The bound is a behaviour (a probe every second or two, everyone woken at
// its first success), not a benchmark, so it is generous.
const recoveryBound = 5 * time.Second

// catchUpBound bounds how long after the dependency's return every call that
// was visible before it is committed: the recovery, then a step or two per
// stream (before the probes it was more than a minute).
const catchUpBound = 15 * time.Second

// liveTraffic keeps calls arriving on 6 VDNs, some listed while running,
// with ingestion delays, from half an hour before the test on.
func liveTraffic(seed int64) ccmssim.Options {
	return ccmssim.Options{VDNs: 6, Seed: seed, Traffic: ccmssim.Traffic{
		BusyShare: 1, BusyPerHour: 1800, Flat: true, ListInProgress: true, InProgressShare: 1,
		MeanTalk: 15 * time.Second, MeanWait: 5 * time.Second, LongCallShare: -1,
		IngestDelayMax: 8 * time.Second, Start: time.Now().Add(-30 * time.Minute)}}
}

// withProductionRetries replaces the fixture's short retry delays with the
// defaults, under which a failed stream backs off 2 s, 4 s, 8 s … up to 5 min,
// and a failed page 0.5 s, 1 s … up to 30 s.
func withProductionRetries(vars map[string]string) map[string]string {
	vars["CALLPUB_POLL_RETRY_BASE"], vars["CALLPUB_POLL_RETRY_MAX"] = "2s", "5m"
	vars["CALLPUB_CCMS_RETRY_BASE_DELAY"], vars["CALLPUB_CCMS_RETRY_MAX_DELAY"] = "500ms", "30s"
	return vars
}

// visibleBefore lists the event ids of every completed call the simulator
// returned before at.
func visibleBefore(f simFixture, at time.Time) map[string]bool {
	now := f.sim.Now()
	ids := map[string]bool{}
	for _, c := range f.sim.Oracle(poller.Horizon(now, ccms.Reach{Loc: f.sim.Location(), Boundary: ccms.BoundaryTenant}), now) {
		if !c.NeverEnds && c.VisibleAt.Before(at) {
			ids[schemas.EventID(1, c.VDN, c.Inbound, c.CallID)] = true
		}
	}
	return ids
}

// CC-CMS answers 503 to every request for 90 seconds in the middle of a live
// run: afterwards every call it held is published, and the first successful
// request follows its recovery within seconds.
func TestE2EUpstreamOutageLosesNothingAndRecoversWithinSeconds(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 3)
	f := startSim(t, liveTraffic(11))
	up := newUpstreamOutage(t, f.srv.CAFile)
	s := startServiceWith(t, withProductionRetries(f.vars(brokers, topic, t.TempDir(), "1-6")), hooks{transport: up})
	s.waitCommitted(t, oracleIDs(f, nil), 2*time.Minute) // the backfill of the last half hour
	<-time.After(5 * time.Second)                        // live polling before the outage: the test's course, not a synchronisation

	up.goDown()
	<-time.After(90 * time.Second) // the outage
	back := up.comeBack()
	delay := up.firstSuccess(t, 2*time.Minute).Sub(back)
	t.Logf("CC-CMS down for 90s, %d requests answered 503 meanwhile; first successful request %v after its recovery",
		up.refusedCount(), delay.Round(time.Millisecond))
	if delay > recoveryBound {
		t.Errorf("first successful request %v after the upstream's recovery, want at most %v", delay.Round(time.Millisecond), recoveryBound)
	}

	checkCaughtUp(t, s, f, brokers, topic, back, "recovery")
}

// The Kafka broker is unreachable for 60 seconds in the middle of a live run
// (a proxy in its place refuses connections, as a dead broker's port does):
// afterwards every call is published, and events are acknowledged again
// within seconds of its return.
func TestE2EKafkaOutageLosesNothingAndRecoversWithinSeconds(t *testing.T) {
	proxy := startProxy(t)
	b := brokerBehind(t, proxy.addr)
	proxy.setTarget(b.Addrs[0])
	brokers := []string{proxy.addr}
	topic := kafkatest.Topic(t, brokers, 3)
	f := startSim(t, liveTraffic(12))

	var mu sync.Mutex
	var restored, firstAck time.Time
	acked := make(chan struct{})
	s := startServiceWith(t, withProductionRetries(f.vars(brokers, topic, t.TempDir(), "1-6")), hooks{
		onPublished: func(events []schemas.Event) {
			mu.Lock()
			defer mu.Unlock()
			if len(events) > 0 && !restored.IsZero() && firstAck.IsZero() {
				firstAck = time.Now()
				close(acked)
			}
		}})
	s.waitCommitted(t, oracleIDs(f, nil), 2*time.Minute) // the backfill of the last half hour
	<-time.After(5 * time.Second)                        // live polling before the outage: the test's course, not a synchronisation

	proxy.cut()
	<-time.After(60 * time.Second) // the outage
	mu.Lock()
	if err := proxy.restore(); err != nil {
		mu.Unlock()
		t.Fatal(err)
	}
	restored = time.Now()
	mu.Unlock()
	select {
	case <-acked:
	case <-time.After(2 * time.Minute):
		t.Fatal("no event acknowledged within 2 minutes of the broker's return")
	}
	mu.Lock()
	delay := firstAck.Sub(restored)
	mu.Unlock()
	t.Logf("Kafka unreachable for 60s; first event acknowledged %v after its return", delay.Round(time.Millisecond))
	if delay > recoveryBound {
		t.Errorf("first event acknowledged %v after the broker's return, want at most %v", delay.Round(time.Millisecond), recoveryBound)
	}

	checkCaughtUp(t, s, f, brokers, topic, restored, "return")
}

// brokerBehind starts a broker of this test's own from jars that advertises
// addr (a proxy in front of it) as its address, so every client connection,
// also those to addresses learnt from metadata, goes through the proxy. The
// shared test broker is never touched. Without java or the broker jars the
// test is skipped, unless CALLPUB_TEST_KAFKA=real, where that is a failure.
func brokerBehind(t *testing.T, addr string) *kafkatest.Broker {
	t.Helper()
	mode := strings.ToLower(strings.TrimSpace(os.Getenv(kafkatest.EnvMode)))
	if mode == "fake" {
		t.Skipf("%s=fake: this test needs a real broker of its own to cut off", kafkatest.EnvMode)
	}
	var b *kafkatest.Broker
	var err error
	for range 3 { // a cluster id drawn with a leading "-" reads as an option to kafka-storage format
		b, err = kafkatest.StartJar(kafkatest.JarOptions{
			ExtraProps: map[string]string{"advertised.listeners": "PLAINTEXT://" + addr},
		})
		if err == nil || !strings.Contains(err.Error(), "kafka storage format") {
			break
		}
	}
	if err != nil {
		if mode == "real" {
			t.Fatalf("%s=real, but no broker of this test's own could be started from jars: %v", kafkatest.EnvMode, err)
		}
		t.Skipf("needs a broker of its own started from jars (java and the jars of publisher/kafkatest/pom.xml): %v", err)
	}
	t.Cleanup(b.Stop)
	return b
}

// checkCaughtUp waits until every call visible before back (the
// dependency's return, named by what) is committed, stops the service,
// checks the topic holds them, and bounds how long after back that took.
func checkCaughtUp(t *testing.T, s *service, f simFixture, brokers []string, topic string, back time.Time, what string) {
	t.Helper()
	want := visibleBefore(f, back)
	s.waitCommitted(t, want, time.Minute)
	caughtUp := time.Since(back)
	s.stop(t)
	dups := checkTopicContains(t, brokers, topic, 3, want)
	t.Logf("every call visible before the %s committed %v after it; %d calls published, %d duplicates",
		what, caughtUp.Round(time.Millisecond), len(want), dups)
	if caughtUp > catchUpBound {
		t.Errorf("every call visible before the %s committed %v after it, want at most %v", what, caughtUp.Round(time.Millisecond), catchUpBound)
	}
}
