package main

import (
	"testing"
	"time"

	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/publisher/kafkatest"
)

// The faulty gateway of issue 10: of every request it lets through, 10 % are
// answered 429 with Retry-After: 1, 5 % 502, 2 % with a truncated body, 2 %
// with resultCode 0100001, and 3 % only after 5 s. Faults are drawn per
// request, so they are random, not congestion: callpub should retry the
// requests that got them without slowing every stream.
var faultyGateway = ccmssim.Faults{
	RateLimit: 0.10, RetryAfter: time.Second,
	ServerError: 0.05, ServerStatus: 502,
	Truncate:    0.02,
	ResultError: 0.02,
	Slow:        0.03, SlowDelay: 5 * time.Second,
}

// faultyHistory is about 2,000 completed calls on 30 VDNs in both
// directions, all of them in the last 3 hours and visible before the test
// starts, so the oracle is a fixed set.
func faultyHistory(seed int64) ccmssim.Options {
	now := time.Now()
	return ccmssim.Options{VDNs: 30, Seed: seed, Traffic: ccmssim.Traffic{
		BusyShare: 1, BusyPerHour: 22, Flat: true, LongCallShare: -1, IngestDelayMax: 30 * time.Second,
		Start: now.Add(-3 * time.Hour), Stop: now.Add(-time.Hour)}}
}

// faultyVars configures a first start the way a new user would: the
// defaults, with a budget of 50 requests/s, production retry delays, and
// none of the e2e fixture's short poll intervals (fresh polls every second
// and sweeps every 5 s would spend the budget on work a first start does not
// need).
func faultyVars(f simFixture, brokers []string, topic, stateDir string) map[string]string {
	vars := withProductionRetries(f.vars(brokers, topic, stateDir, "1-30"))
	for _, k := range []string{"CALLPUB_POLL_INTERVAL", "CALLPUB_POLL_MAX_INTERVAL", "CALLPUB_POLL_MAX_SPAN",
		"CALLPUB_LOOKBACK", "CALLPUB_SWEEP_INTERVAL", "CALLPUB_SWEEP_LOOKBACK", "CALLPUB_CCMS_MAX_IN_FLIGHT"} {
		delete(vars, k)
	}
	vars["CALLPUB_CCMS_RATE"] = "50"
	return vars
}

// A first start behind the faulty gateway publishes every call of the last
// three hours. How long it takes next to a fault-free start is printed by
// BenchmarkFirstStartBehindAFaultyGateway; this test asserts only that
// nothing is missing and nothing is published that the server does not hold.
func TestFaultyGatewayFirstStartPublishesEveryCall(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 6)
	f := startSim(t, faultyHistory(41))
	f.sim.SetFaults(faultyGateway)
	want := oracleIDs(f, nil)
	if len(want) < 1500 {
		t.Fatalf("the fixture holds %d calls, want about 2,000", len(want))
	}
	before := f.sim.Requests()
	s := startService(t, faultyVars(f, brokers, topic, t.TempDir()))
	s.waitCommitted(t, want, 10*time.Minute)
	s.stop(t)
	dups := checkTopic(t, brokers, topic, 6, want)
	t.Logf("%d calls published behind the faulty gateway with %d requests, %d duplicates",
		len(want), f.sim.Requests()-before, dups)
}
