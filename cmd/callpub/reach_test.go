package main

import (
	"testing"
	"time"

	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/publisher/kafkatest"
)

// A tenant east of UTC, with the default day boundary mode (auto), starts
// for the first time against a server on Shanghai days and against one on
// UTC days: either way every call the server still holds is published, from
// its own 00:00 of yesterday, and the only request the server refuses is
// the question that tells the two apart (none for the Shanghai server).
func TestE2EAFirstStartReadsAllTheServerHoldsWhateverItsDays(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		server     *time.Location
		maxRefused int64
	}{
		{name: "a server on Shanghai days", server: shanghai, maxRefused: 0},
		{name: "a server on UTC days", server: time.UTC, maxRefused: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
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
			if n := f.sim.Invalid(); n > tc.maxRefused {
				t.Errorf("the server refused %d requests as invalid, want at most %d", n, tc.maxRefused)
			}
			t.Logf("%d calls from the server's 00:00 of yesterday, %d requests, %d refused", len(want), f.sim.Requests(), f.sim.Invalid())
		})
	}
}
