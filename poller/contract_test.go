package poller_test

import (
	"testing"
	"time"

	"github.com/callpub/callpub/poller/ccms"
	"github.com/callpub/callpub/poller/pollertest"
	"github.com/callpub/callpub/schemas"
)

// The test fakes keep the contracts the real seams keep (poller/pollertest;
// ccms.Client, dedupe.Store and publisher.Publisher run the same checks in
// their packages), so no poller test relies on a promise the service breaks.
func TestFakesKeepTheSeamContracts(t *testing.T) {
	w := ccms.Window{Stream: schemas.Stream{CCID: 1, VDN: 1, Dir: schemas.In},
		Start: time.Now().Add(-time.Hour), End: time.Now()}
	t.Run("fakePublisher keeps the Publisher contract", func(t *testing.T) {
		f := &fakePublisher{}
		pollertest.Publisher(t, f, func(t *testing.T, n, nControl int) (events, control []schemas.Event) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.events[:min(n, len(f.events))], f.control[:min(nControl, len(f.control))]
		}, true)
	})
	t.Run("fixedSource keeps the Source contract", func(t *testing.T) {
		pollertest.Source(t, fixedSource{calls: []ccms.Call{{CallID: "a", CallEnd: w.Start}, {CallID: "b"}}}, w, []string{"a"})
	})
	t.Run("aheadSource keeps the Source contract", func(t *testing.T) {
		pollertest.Source(t, aheadSource{ahead: time.Hour}, w, nil)
	})
	t.Run("slowSource keeps the Source contract", func(t *testing.T) {
		pollertest.Source(t, slowSource{took: time.Millisecond}, w, []string{})
	})
}
