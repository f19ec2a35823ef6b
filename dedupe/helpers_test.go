package dedupe_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/callpub/callpub/dedupe"
	_ "time/tzdata" // Europe/Berlin without a system zoneinfo
)

const testStream = "1/25/in"

// options returns read-write options for a fresh file in t.TempDir().
func options(t *testing.T) dedupe.Options {
	t.Helper()
	return dedupe.Options{
		Path:        filepath.Join(t.TempDir(), "state.db"),
		LockTimeout: time.Second,
		CCID:        1,
		Fingerprint: "fp-1",
	}
}

// open opens o and, on cleanup, closes the store (unless the test did) and
// runs the consistency check over the file.
func open(t *testing.T, o dedupe.Options) *dedupe.Store {
	t.Helper()
	s, err := dedupe.Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, dedupe.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
		checkFile(t, o.Path)
	})
	return s
}

// checkFile reopens path read-only and runs Check.
func checkFile(t *testing.T, path string) {
	t.Helper()
	r, err := dedupe.Open(dedupe.Options{Path: path, ReadOnly: true, LockTimeout: time.Second})
	if err != nil {
		t.Errorf("reopen for check: %v", err)
		return
	}
	if err := r.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close after check: %v", err)
	}
}

func commit(t *testing.T, s *dedupe.Store, bs ...dedupe.Batch) {
	t.Helper()
	for _, b := range bs {
		if err := s.Commit(b); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
}

// at is a UTC instant on 2026-03-10 (a day without DST changes).
func at(hour, minute int) time.Time { return time.Date(2026, 3, 10, hour, minute, 0, 0, time.UTC) }

func ptr[T any](v T) *T { return &v }

func key(callID string, end time.Time, hash uint64) dedupe.Key {
	return dedupe.Key{Stream: testStream, CallID: callID, CallEnd: end, Hash: hash}
}
