package schemas

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ptrTime(t time.Time) Timestamp { return Timestamp{t} }

func TestCallCompletedMapping(t *testing.T) {
	t0 := time.Date(2026, 3, 29, 8, 0, 0, 0, time.UTC)
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	tests := []struct {
		name string
		call Call
		want func(d *CallCompletedData) // edits a copy of the mapped base fields
	}{
		{
			name: "an unanswered call has answered false, talkMs 0, null ackBegin and callBegin, and waits until callEnd",
			call: Call{CCID: 1, VDN: 7, Inbound: true, CallID: "a", WaitBegin: t0, CallEnd: t0.Add(30 * time.Second), CallType: 0, LeaveReason: 89, MediaType: 5},
			want: func(d *CallCompletedData) {
				d.Answered, d.TalkMs, d.WaitMs = false, 0, 30000
				d.WaitBegin, d.CallEnd = ptrTime(t0), ptrTime(t0.Add(30*time.Second))
				d.LeaveReason = Code{89, "User hung up before the agent answered"}
			},
		},
		{
			name: "an answered call talks from callBegin and waits until ackBegin",
			call: Call{CCID: 1, VDN: 7, Inbound: true, CallID: "a", WaitBegin: t0, AckBegin: t0.Add(5 * time.Second),
				CallBegin: t0.Add(6 * time.Second), CallEnd: t0.Add(66 * time.Second), LeaveReason: 16, MediaType: 5},
			want: func(d *CallCompletedData) {
				d.Answered, d.TalkMs, d.WaitMs = true, 60000, 5000
				d.WaitBegin, d.AckBegin, d.CallBegin, d.CallEnd = ptrTime(t0), ptrTime(t0.Add(5*time.Second)), ptrTime(t0.Add(6*time.Second)), ptrTime(t0.Add(66*time.Second))
				d.LeaveReason = Code{16, "Agent released"}
			},
		},
		{
			name: "an answered call without callBegin talks from ackBegin",
			call: Call{CCID: 1, VDN: 7, Inbound: true, CallID: "a", AckBegin: t0, CallEnd: t0.Add(2 * time.Second), MediaType: 5},
			want: func(d *CallCompletedData) {
				d.Answered, d.TalkMs, d.WaitMs = true, 2000, 0
				d.AckBegin, d.CallEnd = ptrTime(t0), ptrTime(t0.Add(2*time.Second))
			},
		},
		{
			name: "times running backwards upstream give zero spans, never negative ones",
			call: Call{CCID: 1, VDN: 7, Inbound: true, CallID: "a", WaitBegin: t0.Add(time.Minute), AckBegin: t0, CallBegin: t0.Add(time.Hour), CallEnd: t0.Add(time.Second), MediaType: 5},
			want: func(d *CallCompletedData) {
				d.Answered, d.TalkMs, d.WaitMs = true, 0, 0
				d.WaitBegin, d.AckBegin, d.CallBegin, d.CallEnd = ptrTime(t0.Add(time.Minute)), ptrTime(t0), ptrTime(t0.Add(time.Hour)), ptrTime(t0.Add(time.Second))
			},
		},
		{
			name: "unknown codes keep their number and get a null name",
			call: Call{CCID: 1, VDN: 7, Inbound: true, CallID: "a", CallEnd: t0, CallType: 999, LeaveReason: 21, MediaType: 77, SubMediaType: 3},
			want: func(d *CallCompletedData) {
				d.CallEnd = ptrTime(t0)
				d.CallType, d.LeaveReason, d.MediaType, d.SubMediaType = Code{999, ""}, Code{21, ""}, Code{77, ""}, Code{3, ""}
			},
		},
		{
			name: "subMediaType is named only for multimedia (53) calls",
			call: Call{CCID: 1, VDN: 7, Inbound: true, CallID: "a", CallEnd: t0, MediaType: 53, SubMediaType: 9},
			want: func(d *CallCompletedData) {
				d.CallEnd = ptrTime(t0)
				d.MediaType, d.SubMediaType = Code{53, "Social or multimedia text chat"}, Code{9, "Telegram"}
			},
		},
		{
			name: "an outbound call says outbound",
			call: Call{CCID: 3, VDN: 5000, Inbound: false, CallID: "b", CallEnd: t0, CallType: 7, MediaType: 5},
			want: func(d *CallCompletedData) {
				d.CCID, d.VDN, d.Direction, d.CallID, d.CallEnd = 3, 5000, "outbound", "b", ptrTime(t0)
				d.CallType = Code{7, "Normal outbound call"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := enc.CallCompleted(tt.call, false)
			if err != nil {
				t.Fatal(err)
			}
			var got CallCompletedData
			if err := json.Unmarshal(ev.Data, &got); err != nil {
				t.Fatal(err)
			}
			want := CallCompletedData{
				CCID: 1, VDN: 7, Direction: "inbound", CallID: "a", NumberPolicy: PIIPlain,
				CallType: Code{0, "Normal inbound call"}, LeaveReason: Code{0, "Normal access or transfer"},
				MediaType: Code{5, "Common voice call"}, SubMediaType: Code{0, ""},
			}
			tt.want(&want)
			want.ContentHash = got.ContentHash // pinned elsewhere
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
			b, _ := json.Marshal(ev)
			if err := Validate(b); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestCallCompletedAttributes(t *testing.T) {
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	c := answeredCall()
	ev, err := enc.CallCompleted(c, false)
	if err != nil {
		t.Fatal(err)
	}
	want := Event{
		SpecVersion: "1.0", ID: EventID(1, 25, true, c.CallID), Source: "/ccms/1/vdn/25",
		Type: "com.huawei.ccms.call.completed.v1", Subject: c.CallID,
		Time:            c.CallEnd.UTC().Truncate(time.Millisecond),
		DataContentType: "application/json", DataSchema: SchemaCallCompleted, PartitionKey: "25",
	}
	if diff := cmp.Diff(want, ev, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Data" }, cmp.Ignore())); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	if ev.Time.Location() != time.UTC {
		t.Errorf("time is in %v, want UTC", ev.Time.Location())
	}
}

func TestAnUpdateHasItsOwnIDAndSaysSo(t *testing.T) {
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	c := answeredCall()
	first, err := enc.CallCompleted(c, false)
	if err != nil {
		t.Fatal(err)
	}
	c.LeaveReason = 16
	upd, err := enc.CallCompleted(c, true)
	if err != nil {
		t.Fatal(err)
	}
	if upd.ID == first.ID {
		t.Fatal("an update reuses the first event's id")
	}
	if want := UpdateEventID(c.CCID, c.VDN, c.Inbound, c.CallID, ContentHash(c)); upd.ID != want {
		t.Errorf("update id = %s, want %s", upd.ID, want)
	}
	again, _ := enc.CallCompleted(c, true)
	if again.ID != upd.ID {
		t.Error("the same update encoded twice got two ids")
	}
	var d CallCompletedData
	if err := json.Unmarshal(upd.Data, &d); err != nil {
		t.Fatal(err)
	}
	if !d.Update {
		t.Error("data.update is false on an update")
	}
}

func TestCallCompletedRejectsCallsThatCannotBeEvents(t *testing.T) {
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	tests := []struct {
		name  string
		edit  func(*Call)
		field string
	}{
		{"a call still running has no callEnd", func(c *Call) { c.CallEnd = time.Time{} }, "callEnd"},
		{"a call without id", func(c *Call) { c.CallID = "" }, "callId"},
		{"vdn 0", func(c *Call) { c.VDN = 0 }, "vdn"},
		{"vdn above 5000", func(c *Call) { c.VDN = 5001 }, "vdn"},
		{"ccId 0", func(c *Call) { c.CCID = 0 }, "ccId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := answeredCall()
			tt.edit(&c)
			_, err := enc.CallCompleted(c, false)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("err = %v, want a FieldError on %s", err, tt.field)
			}
		})
	}
}

func TestDecodeCallCompletedRoundTrips(t *testing.T) {
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	for _, c := range []Call{answeredCall(), unansweredCall()} {
		ev, err := enc.CallCompleted(c, false)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		gotEv, d, err := DecodeCallCompleted(b)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ev, gotEv); diff != "" {
			t.Errorf("event (-sent +decoded):\n%s", diff)
		}
		back := d.Call()
		if ContentHash(back) != ContentHash(c) {
			t.Errorf("call %s: the decoded call hashes differently", c.CallID)
		}
	}
}
