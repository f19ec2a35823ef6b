package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// zoneAwayFromMidnight is a zone whose local time at now lies between 04:00
// and 22:00: yesterday ended more than the sweeps' 3 h ago, and today does
// not end during the test.
func zoneAwayFromMidnight(t *testing.T, now time.Time) *time.Location {
	t.Helper()
	for _, name := range []string{"UTC", "Asia/Shanghai", "America/New_York", "Asia/Kolkata"} {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		if h := now.In(loc).Hour(); h >= 4 && h < 22 {
			return loc
		}
	}
	t.Fatalf("no zone has a local time between 04:00 and 22:00 at %v", now)
	return nil
}

// Rows of yesterday written many hours after their calls keep appearing
// after the day was reconciled and far beyond the sweeps' lookback: the
// last-chance read, due 50 seconds into the run, finds
// those that appeared by then, publishes them once, and seals the day again
// with the new count.
func TestE2EAVeryLateRowIsPublishedByTheLastChanceRead(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	start := time.Now()
	loc := zoneAwayFromMidnight(t, start)
	y := poller.Yesterday(start, loc)
	// Calls of yesterday's last 6 hours, each written up to as long after
	// its end as the oldest of them has been over by now: some are written
	// every few seconds during the test.
	ingest := start.Sub(y.End) + 6*time.Hour
	f := startSim(t, ccmssim.Options{VDNs: 10, Seed: 51, Location: loc, Traffic: ccmssim.Traffic{
		BusyShare: 1, BusyPerHour: 480, Flat: true, LongCallShare: -1, IngestDelayMax: ingest,
		Start: y.End.Add(-6 * time.Hour), Stop: y.End}})
	due := start.Add(50 * time.Second)
	lastChanceBefore := ccms.Reach{Loc: loc, Boundary: ccms.BoundaryTenant}.LostAt(y.Start).Sub(due).Truncate(time.Second)

	want, late, lateOfDay := map[string]bool{}, 0, 0
	for _, c := range f.sim.Oracle(y.Start, y.End) {
		if c.VisibleAt.Before(due.Add(-time.Second)) {
			want[schemas.EventID(1, c.VDN, c.Inbound, c.CallID)] = true
			if c.VisibleAt.After(start.Add(25 * time.Second)) {
				late++ // after the day's first reads, long after the sweeps' reach
				if !c.CallEnd.Before(y.Start) && c.CallEnd.Before(y.End) {
					lateOfDay++ // a seal counts the calls that end on its day
				}
			}
		}
	}
	if late == 0 {
		t.Fatal("no row appears late enough: the fixture proves nothing")
	}
	topic, control := kafkatest.Topic(t, brokers, 4), kafkatest.Topic(t, brokers, 1)
	vars := f.vars(brokers, topic, t.TempDir(), "1-10")
	delete(vars, "CALLPUB_POLL_MAX_SPAN")
	vars["CALLPUB_CCMS_TIMEZONE"], vars["CALLPUB_CCMS_DAY_BOUNDARY_MODE"] = loc.String(), "tenant"
	vars["CALLPUB_RECONCILE_DELAY"], vars["CALLPUB_LAST_CHANCE_BEFORE"] = "0s", lastChanceBefore.String()
	vars["CALLPUB_KAFKA_CONTROL_TOPIC"] = control
	s := startService(t, vars)
	s.waitCommitted(t, want, 3*time.Minute)
	s.stop(t)
	seen := map[string]int{}
	for _, e := range s.committed() {
		if seen[e.ID]++; seen[e.ID] > 1 {
			t.Errorf("event %s committed twice", e.ID)
		}
	}

	// Each stream sealed yesterday, then sealed it again at the last chance
	// with at least as many calls; together the reseals count the late rows.
	day := y.Start.In(loc).Format("2006-01-02")
	first, last := map[string]int{}, map[string]int{}
	for _, e := range readEvents(t, brokers, control, 1) {
		if e.Type != schemas.TypeDaySealed {
			continue
		}
		var d schemas.DaySealedData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.Day != day {
			continue
		}
		key := fmt.Sprint(d.VDN, d.Direction)
		if d.LastChance {
			last[key] = d.Published
		} else if _, ok := first[key]; !ok {
			first[key] = d.Published
		}
	}
	added := 0
	for key, n := range last {
		added += n - first[key]
	}
	if len(last) != 20 || len(first) != 20 {
		t.Errorf("%d streams sealed %s, %d sealed it again at the last chance; want all 20 both times", len(first), day, len(last))
	}
	if added < lateOfDay {
		t.Errorf("the last-chance seals count %d calls more than the first seals, want at least the %d late rows that end on the day", added, lateOfDay)
	}
	t.Logf("zone %s: %d calls of %s, %d appeared after its first reads; the last-chance seals added %d", loc, len(want), day, late, added)
}
