package main

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// offClock is a simulator clock running off from this host's.
type offClock time.Duration

func (c offClock) Now() time.Time { return time.Now().Add(time.Duration(c)) }

// A server whose clock runs 3 minutes ahead of ours, or behind: callpub
// learns the offset from its Date headers (shown as a metric), reads up to
// the server's own now — calls the server wrote in its last two minutes are
// published within seconds, not 3 minutes later — and no request is
// refused, as invalid or unauthorized.
func TestE2EAServerClockMinutesOffChangesNothing(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	for _, tc := range []struct {
		name string
		by   time.Duration
	}{
		{"ahead", 3 * time.Minute},
		{"behind", -3 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startSim(t, ccmssim.Options{VDNs: 3, Seed: 47, Clock: offClock(tc.by), Traffic: ccmssim.Traffic{
				BusyShare: 1, BusyPerHour: 240, Flat: true, LongCallShare: -1, IngestDelayMax: 5 * time.Second}})
			serverNow := f.sim.Now()
			want := map[string]bool{}
			for _, c := range f.sim.Oracle(serverNow.Add(-2*time.Hour), serverNow) {
				if c.VisibleAt.Before(serverNow.Add(-10 * time.Second)) {
					want[schemas.EventID(1, c.VDN, c.Inbound, c.CallID)] = true
				}
			}
			topic := kafkatest.Topic(t, brokers, 3)
			vars := f.vars(brokers, topic, t.TempDir(), "1-3")
			delete(vars, "CALLPUB_POLL_MAX_SPAN")
			ready := make(chan string, 1)
			s := startServiceWith(t, vars, hooks{onReady: func(addr string) { ready <- addr }})
			addr := <-ready
			s.waitCommitted(t, want, 45*time.Second) // 3 minutes late without the server's clock
			offset := metricValue(t, addr, "callpub_ccms_clock_offset_seconds")
			s.stop(t)
			if (time.Duration(offset*float64(time.Second)) - tc.by).Abs() > 2*time.Second {
				t.Errorf("learned offset %.1fs, want %v", offset, tc.by)
			}
			if n := f.sim.Invalid(); n != 0 {
				t.Errorf("%d requests refused as invalid", n)
			}
			t.Logf("%d calls of the server's last 2 hours published; offset learned %.2fs", len(want), offset)
		})
	}
}

// metricValue reads one unlabelled sample from the ops server's /metrics.
func metricValue(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}
