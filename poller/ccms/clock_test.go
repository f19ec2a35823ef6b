package ccms_test

import (
	"testing"
	"time"

	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/schemas"
)

// shiftedClock is a simulator clock running off from the client's.
type shiftedClock struct {
	base *ccmssim.ManualClock
	by   time.Duration
}

func (c shiftedClock) Now() time.Time { return c.base.Now().Add(c.by) }

func TestTheClientLearnsTheServersClockFromItsDateHeaders(t *testing.T) {
	tests := []struct {
		name     string
		server   time.Duration // the server's clock minus the client's
		manual   time.Duration // CALLPUB_CCMS_CLOCK_OFFSET
		want     time.Duration
		accuracy time.Duration
	}{
		{name: "a server 3 minutes ahead is learned to within a second from whole-second Date headers",
			server: 3*time.Minute + 400*time.Millisecond, want: 3*time.Minute + 400*time.Millisecond, accuracy: time.Second},
		{name: "a server 3 minutes behind likewise", server: -3 * time.Minute, want: -3 * time.Minute, accuracy: time.Second},
		{name: "a server on time stays on time", want: 0, accuracy: time.Second},
		{name: "an hour off is bounded at 10 minutes", server: time.Hour, want: 10 * time.Minute},
		{name: "a manual offset overrides what the headers say", server: 3 * time.Minute, manual: -time.Second, want: -time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var base *ccmssim.ManualClock
			f := startSimOptions(t, func(o *ccmssim.Options) {
				base = o.Clock.(*ccmssim.ManualClock)
				o.Clock = shiftedClock{base: base, by: tc.server}
				o.MaxSkew = 2 * time.Hour // the hour-off case still signs in
			}, func(c *ccms.Config) { c.ClockOffset = tc.manual })
			now := simNow
			for i := range 30 {
				base.Set(now.Add(time.Duration(i) * 337 * time.Millisecond)) // Date's whole seconds fall differently each time
				if _, err := f.client.QueryCalls(t.Context(), ccms.Query{Stream: schemas.Stream{CCID: 1, VDN: 1, Dir: schemas.In},
					Begin: simNow.Add(-time.Hour), End: simNow.Add(-time.Minute), Limit: 1}); err != nil {
					t.Fatal(err)
				}
			}
			if got := f.client.ClockOffset(); (got - tc.want).Abs() > tc.accuracy {
				t.Errorf("offset %v, want %v ± %v", got, tc.want, tc.accuracy)
			}
			if got, want := f.client.Now(), base.Now().Add(f.client.ClockOffset()); !got.Equal(want) {
				t.Errorf("Now %v, want our clock plus the offset %v", got, want)
			}
		})
	}
}
