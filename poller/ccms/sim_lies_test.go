package ccms_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/poller/pollertest"
	"github.com/google/go-cmp/cmp"
)

// A client reading a simulator that lies gets every good call the oracle
// holds, quarantines every poison row without its phone numbers in the
// reason, and needs no split and reports no suspect span for it.
func TestSimClientReadsEveryGoodCallWhateverTheServerLies(t *testing.T) {
	type lie struct {
		name    string
		faults  ccmssim.Faults
		traffic func(*ccmssim.Traffic)
	}
	lies := []lie{
		{name: "a count per page", faults: ccmssim.Faults{CountPerPage: true}},
		{name: "pages capped at 50 rows", faults: ccmssim.Faults{PageCap: 50}},
		{name: "pages capped at 37 rows", faults: ccmssim.Faults{PageCap: 37}},
		{name: "poison rows of every kind", faults: ccmssim.Faults{Poison: 0.2}},
		{name: "poison rows and pages capped at 50", faults: ccmssim.Faults{Poison: 0.1, PageCap: 50}},
		{name: "poison rows and a count per page", faults: ccmssim.Faults{Poison: 0.1, CountPerPage: true}},
		{name: "poison rows with numbers as strings", faults: ccmssim.Faults{Poison: 0.1, NumbersAsStrings: true}},
		{name: "calls that never end", traffic: func(tr *ccmssim.Traffic) { tr.NeverEndShare = 0.1 }},
	}
	for _, k := range ccmssim.PoisonKinds {
		lies = append(lies, lie{name: "poison rows of kind " + string(k), faults: ccmssim.Faults{Poison: 0.05, PoisonKind: k}})
	}
	for _, tc := range lies {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each reads its own simulator
			f := startSimOptions(t, func(o *ccmssim.Options) {
				o.Faults = tc.faults
				if tc.traffic != nil {
					tc.traffic(&o.Traffic)
				}
			}, func(c *ccms.Config) { c.MaxPages = 100 }) // pages capped at 37 need 60 pages: no split for MaxPages
			rd, err := f.client.ReadWindow(t.Context(), simWindow)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(oracleIDs(f, simWindow), completedIDs(rd.Calls)); diff != "" {
				t.Errorf("completed calls (-oracle +read):\n%s", diff)
			}
			for _, c := range rd.Calls {
				if strings.HasSuffix(c.CallID, "-poison") {
					t.Errorf("a poison row became the call %+v", c)
				}
			}
			if len(rd.Suspect) != 0 || rd.Stats.Splits != 0 {
				t.Errorf("suspect spans %v, stats %+v: want neither for this lie", rd.Suspect, rd.Stats)
			}
			if (tc.faults.Poison > 0) != (len(rd.Bad) > 0) {
				t.Errorf("%d bad rows with poison share %v", len(rd.Bad), tc.faults.Poison)
			}
			for _, b := range rd.Bad {
				checkReasonHidesPhones(t, b)
			}
			if tc.traffic != nil {
				checkNeverEndingCallsAreRead(t, f, rd.Calls)
			}
			pollertest.Source(t, f.client, simWindow, oracleIDs(f, simWindow))
		})
	}
}

// checkReasonHidesPhones fails when a bad row's reason shows a phone number
// the row holds.
func checkReasonHidesPhones(t *testing.T, b ccms.BadRow) {
	t.Helper()
	var phones []string
	var row map[string]any
	var s string
	switch {
	case json.Unmarshal(b.Raw, &row) == nil:
		for _, k := range []string{"callerNo", "calleeNo"} {
			if v, ok := row[k].(string); ok {
				phones = append(phones, v)
			}
		}
	case json.Unmarshal(b.Raw, &s) == nil:
		phones = append(phones, s)
	}
	for _, p := range phones {
		if len(p) >= 7 && strings.Contains(b.Reason, p) {
			t.Errorf("reason %q shows the phone number %s", b.Reason, p)
		}
	}
	if b.Reason == "" {
		t.Errorf("bad row %.80s has no reason", b.Raw)
	}
}

// checkNeverEndingCallsAreRead wants every never-ending call the window
// lists by now among the calls read, still without an end.
func checkNeverEndingCallsAreRead(t *testing.T, f *simFixture, calls []ccms.Call) {
	t.Helper()
	running := map[string]bool{}
	for _, c := range calls {
		if !c.Completed() {
			running[c.CallID] = true
		}
	}
	n := 0
	for _, c := range f.sim.Oracle(simWindow.Start, simWindow.End) {
		if c.NeverEnds && c.VDN == simWindow.VDN && c.Inbound == simWindow.Inbound() && !c.VisibleAt.After(simNow) {
			n++
			if !running[c.CallID] {
				t.Errorf("the never-ending call %s was not read in progress", c.CallID)
			}
		}
	}
	if n == 0 {
		t.Error("the window holds no never-ending call; the check proves nothing")
	}
}
