package ccms_test

import (
	"errors"
	"testing"
	"time"

	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/schemas"
)

func TestProbeBoundary(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	s := schemas.Stream{CCID: 1, VDN: 1, Dir: schemas.In}
	tests := []struct {
		name     string
		tenant   string         // CALLPUB_CCMS_TIMEZONE
		server   *time.Location // the simulator's days
		want     ccms.DayBoundary
		accepted bool
	}{
		{name: "a Shanghai tenant whose server keeps Shanghai days answers for Shanghai's earlier midnight",
			tenant: "Asia/Shanghai", server: shanghai, want: ccms.BoundaryTenant, accepted: true},
		{name: "a Shanghai tenant whose server keeps UTC days refuses Shanghai's midnight, so UTC bounds it",
			tenant: "Asia/Shanghai", server: time.UTC, want: ccms.BoundaryUTC},
		{name: "a New York tenant whose server keeps UTC days answers for UTC's earlier midnight",
			tenant: "America/New_York", server: time.UTC, want: ccms.BoundaryUTC, accepted: true},
		{name: "a New York tenant whose server keeps New York days refuses UTC's midnight",
			tenant: "America/New_York", server: newYork, want: ccms.BoundaryTenant},
		{name: "a UTC tenant asks nothing: every mode agrees",
			tenant: "UTC", server: time.UTC, want: ccms.BoundaryTenant, accepted: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startSimOptions(t, func(o *ccmssim.Options) { o.Location = tc.server },
				func(c *ccms.Config) { c.Timezone, c.DayBoundaryMode = tc.tenant, "auto" })
			before := f.sim.Requests()
			p, err := f.client.ProbeBoundary(t.Context(), s, simNow)
			if err != nil {
				t.Fatal(err)
			}
			if p.Mode != tc.want || p.Accepted != tc.accepted {
				t.Errorf("probe %+v, want mode %s, answered %v", p, tc.want, tc.accepted)
			}
			if asked := f.sim.Requests() - before; (tc.tenant == "UTC") != (asked == 0) || asked > 1 {
				t.Errorf("%d requests, want one (none for UTC)", asked)
			}
			// Until told, auto is both; told, the client and every copy of its Reach use the answer.
			reach := f.client.Reach()
			if reach.Mode() != ccms.BoundaryBoth {
				t.Errorf("auto before the answer is %s, want both", reach.Mode())
			}
			f.client.UseBoundary(p.Mode)
			if reach.Mode() != tc.want || f.client.Reach().Mode() != tc.want {
				t.Errorf("after UseBoundary(%s) the reach's mode is %s", tc.want, reach.Mode())
			}
			earliest, _ := f.client.Reach().Range(simNow)
			if _, err := f.client.QueryCalls(t.Context(), ccms.Query{Stream: s, Begin: earliest, End: earliest.Add(time.Hour), Limit: 1}); err != nil {
				t.Errorf("a query from the detected horizon %v: %v", earliest, err)
			}
		})
	}
}

func TestProbeBoundaryFailsClearlyWhenTheServerDoesNotAnswer(t *testing.T) {
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	f := startSimOptions(t, func(o *ccmssim.Options) { o.Location = shanghai; o.Faults = ccmssim.Faults{ServerError: 1} },
		func(c *ccms.Config) { c.Timezone, c.DayBoundaryMode, c.MaxAttempts = "Asia/Shanghai", "auto", 1 })
	_, err := f.client.ProbeBoundary(t.Context(), schemas.Stream{CCID: 1, VDN: 1, Dir: schemas.In}, simNow)
	if !errors.Is(err, ccms.ErrBoundaryUnknown) {
		t.Fatalf("got %v, want ErrBoundaryUnknown", err)
	}
	if f.client.Reach().Mode() != ccms.BoundaryBoth {
		t.Errorf("without an answer the mode is %s, want both", f.client.Reach().Mode())
	}
}

func TestUseBoundaryLeavesAConfiguredModeAlone(t *testing.T) {
	f := startSim(t, func(c *ccms.Config) { c.Timezone, c.DayBoundaryMode = "Asia/Shanghai", "utc" })
	f.client.UseBoundary(ccms.BoundaryTenant)
	if m := f.client.Reach().Mode(); m != ccms.BoundaryUTC {
		t.Errorf("mode %s after UseBoundary on a client configured utc, want utc", m)
	}
}
