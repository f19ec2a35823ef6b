package poller_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/poller/ccmssim"
)

// fakeChangelog keeps the last record of each stream and refuses a
// sequence that skips.
type fakeChangelog struct {
	mu   sync.Mutex
	last map[string]dedupe.Snapshot
	logs int
	fail int // the next n logs fail
}

func (c *fakeChangelog) Log(ctx context.Context, sn dedupe.Snapshot) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail > 0 {
		c.fail--
		return errors.New("state topic unavailable")
	}
	if prev, ok := c.last[sn.State.Stream]; ok && sn.Seq != prev.Seq+1 {
		return errors.New("sequence skipped")
	}
	c.last[sn.State.Stream] = sn
	c.logs++
	return nil
}

// Every commit is logged first, numbered one after the last, with the state
// the store then holds; a changelog that fails fails the turn before the
// commit, and the retry logs and commits it.
func TestEveryCommitIsLoggedBeforeItWithTheStateItCommits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := &fakeChangelog{last: map[string]dedupe.Snapshot{}, fail: 3}
		cfg := baseConfig()
		cfg.VDNs = poller.VDNSet{1, 2}
		sim, err := ccmssim.New(ccmssim.Options{AK: "ak", SK: "sk", CCID: 1, VDNs: 2, Seed: 8})
		if err != nil {
			t.Fatal(err)
		}
		store := openStore(t)
		e := buildWith(t, cfg, sim, store, func(d *poller.Deps) { d.Changelog = cl })
		e.runFor(t, 30*time.Minute)
		e.check(t, time.Now().Add(-10*time.Minute))
		cl.mu.Lock()
		defer cl.mu.Unlock()
		if cl.logs == 0 || len(cl.last) != 4 {
			t.Fatalf("%d records of %d streams, want every stream logged", cl.logs, len(cl.last))
		}
		for stream, logged := range cl.last {
			got, err := store.Snapshot(stream)
			if err != nil {
				t.Fatal(err)
			}
			// Printed alike: nil and empty lists, and a time's zone
			// pointer, are no difference here.
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", logged) {
				t.Errorf("%s: the store holds\n%+v\nthe changelog's last record\n%+v", stream, got, logged)
			}
		}
		if cl.fail != 0 {
			t.Errorf("%d failures not reached", cl.fail)
		}
	})
}
