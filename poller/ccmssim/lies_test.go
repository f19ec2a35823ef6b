package ccmssim

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
)

// rawPage is a success page with its rows as raw JSON: poison rows do not
// decode into wireRow.
type rawPage struct {
	Data  []json.RawMessage `json:"data"`
	Count int               `json:"count"`
}

func rawPageOf(t *testing.T, s *Sim, fields map[string]any) rawPage {
	t.Helper()
	w := serve(t, s, reqSpec{body: body(t, fields)})
	var resp wireResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.ResultCode != "0100000" {
		t.Fatalf("status %d body %s: want a success", w.Code, w.Body)
	}
	var p rawPage
	if err := json.Unmarshal(resp.ResultDesc, &p); err != nil {
		t.Fatalf("decode resultDesc: %v", err)
	}
	return p
}

// lastHours is the window the tests below read: six hours of busy VDN 1.
var lastHours = testNow.Add(-6 * time.Hour)

// wholeWindow is the rows of [lastHours, testNow] of VDN 1 inbound, unpaged.
func wholeWindow(t *testing.T, s *Sim) rawPage {
	return rawPageOf(t, s, queryBody(1, true, lastHours, testNow, 0, 0))
}

// isGood reports whether raw is a row of a call, and its callId.
func isGood(raw json.RawMessage) (string, bool) {
	var r wireRow
	if json.Unmarshal(raw, &r) != nil || r.CallID == "" || strings.HasSuffix(r.CallID, poisonIDSuffix) {
		return "", false
	}
	return r.CallID, true
}

func TestPoisonRowsOfEachKindAreExtraRowsAmongTheGoodOnes(t *testing.T) {
	clean, _ := newSim(t, Options{})
	want := wholeWindow(t, clean)
	check := map[PoisonKind]func(row string) bool{
		PoisonNull:          func(row string) bool { return row == "null" },
		PoisonNotObject:     func(row string) bool { return strings.HasPrefix(row, `"`) },
		PoisonNoCallID:      func(row string) bool { return !strings.Contains(row, `"callId"`) },
		PoisonEmptyCallID:   func(row string) bool { return strings.Contains(row, `"callId":""`) },
		PoisonLongCallID:    func(row string) bool { return len(row) > 1100 && strings.Contains(row, poisonIDSuffix) },
		PoisonTimeNotNumber: func(row string) bool { return strings.Contains(row, `"callEnd":"unknown"`) },
		PoisonNegativeTime:  func(row string) bool { return strings.Contains(row, `"callEnd":-1,`) },
		PoisonLateTime:      func(row string) bool { return strings.Contains(row, `"logDate":253402300800000,`) },
		PoisonBigCode:       func(row string) bool { return strings.Contains(row, `"mediaType":4294967296,`) },
	}
	for _, kind := range PoisonKinds {
		t.Run(string(kind)+" rows follow about a fifth of the rows and count as rows", func(t *testing.T) {
			s, _ := newSim(t, Options{Faults: Faults{Poison: 0.2, PoisonKind: kind}})
			got := wholeWindow(t, s)
			var good []json.RawMessage
			poison := 0
			for _, raw := range got.Data {
				if _, ok := isGood(raw); ok {
					good = append(good, raw)
					continue
				}
				poison++
				if !check[kind](string(raw)) {
					t.Errorf("a %s poison row reads %.200s", kind, raw)
				}
			}
			if i := firstDifference(want.Data, good); i >= 0 {
				t.Errorf("the good rows changed from row %d on", i)
			}
			if n := len(want.Data); poison < n/10 || poison > n*3/10 || got.Count != len(got.Data) {
				t.Errorf("%d poison rows among %d good ones, count %d of %d rows", poison, n, got.Count, len(got.Data))
			}
		})
	}
}

func TestPoisonedListingsPageStablyAndTheOracleIgnoresThem(t *testing.T) {
	s, _ := newSim(t, Options{Faults: Faults{Poison: 0.3}})
	whole := wholeWindow(t, s)
	var paged []json.RawMessage
	for offset := 0; offset < whole.Count; offset += 100 {
		p := rawPageOf(t, s, queryBody(1, true, lastHours, testNow, 100, offset))
		if p.Count != whole.Count {
			t.Fatalf("count %d at offset %d, want %d", p.Count, offset, whole.Count)
		}
		paged = append(paged, p.Data...)
	}
	if i := firstDifference(whole.Data, paged); i >= 0 {
		t.Errorf("paged rows differ from the whole listing from row %d on", i)
	}
	clean, _ := newSim(t, Options{})
	if diff := gocmp.Diff(clean.Oracle(lastHours, testNow), s.Oracle(lastHours, testNow)); diff != "" {
		t.Errorf("poison changed the oracle (-clean +poisoned):\n%s", diff)
	}
}

func TestPagingLiesKeepTheRowsAndBendCountOrPageSize(t *testing.T) {
	from := lastHours
	tests := []struct {
		name   string
		faults Faults
		check  func(t *testing.T, p rawPage, total int)
	}{
		{"a count per page is the rows of the page", Faults{CountPerPage: true}, func(t *testing.T, p rawPage, total int) {
			if p.Count != len(p.Data) || len(p.Data) != 100 {
				t.Errorf("count %d for %d rows, want 100 and 100", p.Count, len(p.Data))
			}
		}},
		{"a page cap of 37 returns 37 rows for a limit of 100, and the total count", Faults{PageCap: 37}, func(t *testing.T, p rawPage, total int) {
			if len(p.Data) != 37 || p.Count != total {
				t.Errorf("%d rows, count %d; want 37 rows and count %d", len(p.Data), p.Count, total)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clean, _ := newSim(t, Options{})
			want := rawPageOf(t, clean, queryBody(1, true, from, testNow, 0, 0))
			s, _ := newSim(t, Options{Faults: tc.faults})
			p := rawPageOf(t, s, queryBody(1, true, from, testNow, 100, 100))
			tc.check(t, p, want.Count)
			if len(p.Data) == 0 || firstDifference(p.Data, want.Data[100:100+len(p.Data)]) >= 0 {
				t.Error("the rows at offset 100 are not the rows of the clean listing there")
			}
		})
	}
}

func TestCallsThatNeverEndAreListedInProgressForeverAndTheOracleSaysSo(t *testing.T) {
	s, clock := newSim(t, Options{Traffic: Traffic{NeverEndShare: 0.2}})
	clean, _ := newSim(t, Options{})
	from, to := testNow.Add(-6*time.Hour), testNow.Add(-time.Hour)
	never := map[string]bool{} // never-ending call -> of VDN 1 inbound
	for _, c := range s.Oracle(from, to) {
		if c.NeverEnds {
			never[c.CallID] = c.VDN == 1 && c.Inbound
			if !c.CallEnd.IsZero() || c.VisibleAt.IsZero() || c.VisibleAt.After(testNow) {
				t.Errorf("never-ending call %+v: want no callEnd and a first listing before now", c)
			}
		}
	}
	ofVDN1 := 0
	for _, yes := range never {
		if yes {
			ofVDN1++
		}
	}
	if len(never) < 10 || ofVDN1 < 3 {
		t.Fatalf("only %d calls never end, %d of VDN 1 inbound; want about a fifth of the answered ones", len(never), ofVDN1)
	}
	var others []OracleCall
	for _, c := range clean.Oracle(from, to) {
		if _, ok := never[c.CallID]; !ok {
			others = append(others, c)
		}
	}
	if diff := gocmp.Diff(others, slices.DeleteFunc(s.Oracle(from, to), func(c OracleCall) bool { return c.NeverEnds })); diff != "" {
		t.Errorf("the other calls changed (-clean +with never-ending calls):\n%s", diff)
	}
	for _, at := range []time.Duration{0, 20 * time.Hour} { // still listed in progress the next day
		clock.Set(testNow.Add(at))
		inProgress := map[string]bool{}
		for _, r := range readAll(t, s, 1, true, from, to) {
			if r.CallEnd == 0 && r.CallBegin != 0 {
				inProgress[r.CallID] = true
			}
		}
		for id, ofVDN1 := range never {
			if ofVDN1 && !inProgress[id] {
				t.Errorf("at now+%v the never-ending call %s is not listed in progress", at, id)
			}
		}
	}
}

// firstDifference is the index of the first row where a and b differ, or -1.
func firstDifference(a, b []json.RawMessage) int {
	for i := range min(len(a), len(b)) {
		if !bytes.Equal(a[i], b[i]) {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}
