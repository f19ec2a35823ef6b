package poller

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
)

// Rows are taken while they fit the limit; a take that would pass it waits
// until enough rows are given back, a turn alone never waits, rows found on
// top are taken without waiting, a background turn fills only a quarter of it,
// and a wait ends with its context.
func TestHandHoldsTurnsToItsLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHand(100)
		ctx := context.Background()
		if err := h.take(ctx, 150, false); err != nil { // alone: more than the limit is still read
			t.Fatal(err)
		}
		h.put(150)
		if err := h.take(ctx, 60, false); err != nil {
			t.Fatal(err)
		}
		h.add(30) // the window held more than expected
		if got := h.rows(); got != 90 {
			t.Fatalf("rows held %d, want 90", got)
		}
		taken := make(chan error, 1)
		go func() { taken <- h.take(ctx, 20, false) }()
		synctest.Wait()
		select {
		case err := <-taken:
			t.Fatalf("took 20 rows over 90 held with a limit of 100 (err %v), want a wait", err)
		default:
		}
		h.put(90)
		synctest.Wait()
		if err := <-taken; err != nil {
			t.Fatal(err)
		}
		if got := h.rows(); got != 20 {
			t.Fatalf("rows held %d, want 20", got)
		}
		go func() { taken <- h.take(ctx, 40, true) }() // a background turn may fill only a quarter of it
		synctest.Wait()
		select {
		case err := <-taken:
			t.Fatalf("a background turn took 40 rows over 20 held with a limit of 100 (err %v), want a wait", err)
		default:
		}
		if err := h.take(ctx, 40, false); err != nil { // a fresh read finds room meanwhile
			t.Fatal(err)
		}
		h.put(60)
		synctest.Wait()
		if err := <-taken; err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		go func() { taken <- h.take(cctx, 90, false) }()
		synctest.Wait()
		cancel()
		if err := <-taken; !errors.Is(err, context.Canceled) {
			t.Fatalf("take after cancel: %v, want context.Canceled", err)
		}
		if got := h.rows(); got != 40 {
			t.Fatalf("rows held %d after a cancelled take, want 40", got)
		}
	})
}
