package dedupe_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/callpub/callpub/dedupe"
)

func TestReopenKeepsEverything(t *testing.T) {
	o := options(t)
	s, err := dedupe.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	b := dedupe.Batch{
		Stream:    testStream,
		Seen:      []dedupe.Key{key("a", at(9, 0), 7), key("b", at(9, 30), 8)},
		Pending:   []dedupe.Pending{{CallID: "p", FilterTime: at(9, 45), FirstSeen: at(10, 0)}},
		Cursor:    ptr(at(9, 45)),
		LastSweep: ptr(at(8, 0)),
		SealedDay: "20260309",
		Gaps:      []dedupe.Gap{{Stream: testStream, Start: at(1, 0), End: at(2, 0), DetectedAt: at(3, 0)}},
	}
	commit(t, s, b)
	wantState, _ := s.State(testStream)
	wantStats, _ := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, o)
	got, err := s.State(testStream)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantState, got); diff != "" {
		t.Errorf("state after reopen (-want +got):\n%s", diff)
	}
	want := dedupe.StreamState{Stream: testStream, Cursor: at(9, 45), LastSweep: at(8, 0), SealedDay: "20260309",
		Pending: b.Pending}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("state after reopen differs from the batch (-want +got):\n%s", diff)
	}
	unseen, err := s.Unseen([]dedupe.Key{key("a", at(9, 0), 7), key("b", at(9, 30), 8), key("c", at(9, 40), 9)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]dedupe.Key{key("c", at(9, 40), 9)}, unseen); diff != "" {
		t.Errorf("Unseen after reopen (-want +got):\n%s", diff)
	}
	gaps, err := s.Gaps()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(b.Gaps, gaps); diff != "" {
		t.Errorf("gaps after reopen (-want +got):\n%s", diff)
	}
	gotStats, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantStats, gotStats, cmpopts.IgnoreFields(dedupe.Stats{}, "DataSize", "FileSize")); diff != "" {
		t.Errorf("stats after reopen (-want +got):\n%s", diff)
	}
}

func TestSecondOpenGetsErrLocked(t *testing.T) {
	o := options(t)
	open(t, o) // the holder, like a running service

	tests := []struct {
		name     string
		readOnly bool
	}{
		{"a second read-write open is refused with ErrLocked", false},
		{"a read-only open while a writer holds the file is refused with ErrLocked", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o2 := o
			o2.LockTimeout = 100 * time.Millisecond
			o2.ReadOnly = tt.readOnly
			s, err := dedupe.Open(o2)
			if err == nil {
				s.Close()
				t.Fatal("second Open succeeded")
			}
			if !errors.Is(err, dedupe.ErrLocked) || !errors.Is(err, berrors.ErrTimeout) {
				t.Fatalf("Open = %v, want ErrLocked wrapping bbolt's timeout", err)
			}
			if !strings.Contains(err.Error(), "in use by another callpub process") {
				t.Errorf("message %q does not say who holds the file", err)
			}
		})
	}
}

func TestReadOnly(t *testing.T) {
	t.Run("a missing file is not created and the error says so", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing.db")
		_, err := dedupe.Open(dedupe.Options{Path: path, ReadOnly: true, LockTimeout: time.Second})
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "no such file") {
			t.Fatalf("Open = %v, want a not-exist error", err)
		}
		if _, err := dedupe.Open(dedupe.Options{Path: path, ReadOnly: true, LockTimeout: time.Second}); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the first read-only open created the file: %v", err)
		}
	})
	t.Run("an existing store can be inspected by several readers but not written", func(t *testing.T) {
		o := options(t)
		o.Location = mustZone(t, "Europe/Berlin")
		s, err := dedupe.Open(o)
		if err != nil {
			t.Fatal(err)
		}
		commit(t, s, dedupe.Batch{Stream: testStream, Cursor: ptr(at(10, 0))})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		ro := dedupe.Options{Path: o.Path, ReadOnly: true, LockTimeout: time.Second} // CCID 0: any store
		r1, r2 := open(t, ro), open(t, ro)
		if got := r1.Location().String(); got != "Europe/Berlin" {
			t.Errorf("read-only open without a zone uses %s, want the file's Europe/Berlin", got)
		}
		st, err := r2.State(testStream)
		if err != nil || !st.Cursor.Equal(at(10, 0)) {
			t.Errorf("State = %+v, %v; want cursor %v", st, err, at(10, 0))
		}
		if err := r1.Commit(dedupe.Batch{Stream: testStream}); !errors.Is(err, dedupe.ErrReadOnly) {
			t.Errorf("Commit = %v, want ErrReadOnly", err)
		}
		if err := r1.SetCursor(testStream, at(11, 0)); !errors.Is(err, dedupe.ErrReadOnly) {
			t.Errorf("SetCursor = %v, want ErrReadOnly", err)
		}
		if _, err := r1.Prune(at(11, 0)); !errors.Is(err, dedupe.ErrReadOnly) {
			t.Errorf("Prune = %v, want ErrReadOnly", err)
		}
		if err := r1.Check(); err != nil {
			t.Errorf("Check = %v", err)
		}
	})
}

func TestOpenRefusesAStoreOfAnotherOwner(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	tests := []struct {
		name   string
		change func(*dedupe.Options)
		field  string
	}{
		{"a store made for another ccId is refused", func(o *dedupe.Options) { o.CCID = 2 }, "ccId"},
		{"a store made for another shard is refused", func(o *dedupe.Options) { o.Shard = "1/2" }, "shard"},
		{"a store made in another zone is refused", func(o *dedupe.Options) { o.Location = berlin }, "location"},
		{"a read-only open naming another ccId is refused", func(o *dedupe.Options) { o.CCID = 2; o.ReadOnly = true }, "ccId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := options(t)
			o.Shard = "0/2"
			s, err := dedupe.Open(o)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tt.change(&o)
			s, err = dedupe.Open(o)
			var me *dedupe.MismatchError
			if !errors.As(err, &me) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("Open = %v, want a *MismatchError", err)
			}
			if me.Field != tt.field || me.Store == me.Given || !strings.Contains(err.Error(), me.Store) ||
				!strings.Contains(err.Error(), me.Given) {
				t.Errorf("error %q (%+v) does not name both values of %s", err, me, tt.field)
			}
		})
	}
}

func TestOpenRefusesUnknownFormats(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*bolt.Tx) error
	}{
		{"a store of an unknown format version is refused", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("meta")).Put([]byte("version"), []byte("99"))
		}},
		{"a bbolt file that is not a callpub store is refused", func(tx *bolt.Tx) error {
			if err := tx.DeleteBucket([]byte("meta")); err != nil {
				return err
			}
			_, err := tx.CreateBucket([]byte("something-else"))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := options(t)
			s, err := dedupe.Open(o)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			db, err := bolt.Open(o.Path, 0o600, &bolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if err := errors.Join(db.Update(tt.setup), db.Close()); err != nil {
				t.Fatal(err)
			}
			for _, ro := range []bool{false, true} {
				o.ReadOnly = ro
				if s, err := dedupe.Open(o); !errors.Is(err, dedupe.ErrFormat) {
					if s != nil {
						s.Close()
					}
					t.Errorf("Open(ReadOnly=%v) = %v, want ErrFormat", ro, err)
				}
			}
		})
	}
}

func TestOpenValidatesOptions(t *testing.T) {
	tests := []struct {
		name   string
		change func(*dedupe.Options)
		want   string
	}{
		{"a zero lock timeout is refused, it would wait forever", func(o *dedupe.Options) { o.LockTimeout = 0 }, "lock timeout must be positive"},
		{"an empty path is refused", func(o *dedupe.Options) { o.Path = "" }, "empty path"},
		{"a negative batch delay is refused", func(o *dedupe.Options) { o.BatchDelay = -1 }, "negative batch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := options(t)
			tt.change(&o)
			s, err := dedupe.Open(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("Open = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

func TestFingerprintChangeIsRecorded(t *testing.T) {
	o := options(t)
	s, err := dedupe.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	o.Fingerprint = "fp-2"
	s = open(t, o)
	m, err := s.Meta()
	if err != nil {
		t.Fatal(err)
	}
	want := dedupe.Meta{Version: 1, CCID: 1, Location: "UTC", Fingerprint: "fp-2", PreviousFingerprint: "fp-1"}
	if diff := cmp.Diff(want, m, cmpopts.IgnoreFields(dedupe.Meta{}, "Created")); diff != "" {
		t.Errorf("Meta (-want +got):\n%s", diff)
	}
	if m.Created.IsZero() {
		t.Error("Meta.Created is zero")
	}
}

func TestEveryMethodReturnsErrClosedAfterClose(t *testing.T) {
	o := options(t)
	s, err := dedupe.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"Close":  s.Close,
		"Commit": func() error { return s.Commit(dedupe.Batch{Stream: testStream}) },
		"Unseen": func() error { _, err := s.Unseen([]dedupe.Key{key("a", at(1, 0), 1)}); return err },
		"State":  func() error { _, err := s.State(testStream); return err },
		"Streams": func() error {
			_, err := s.Streams()
			return err
		},
		"Gaps":        func() error { _, err := s.Gaps(); return err },
		"CountSeen":   func() error { _, err := s.CountSeen(testStream, at(1, 0)); return err },
		"SetCursor":   func() error { return s.SetCursor(testStream, at(1, 0)) },
		"ResetStream": func() error { return s.ResetStream(testStream) },
		"Prune":       func() error { _, err := s.Prune(at(1, 0)); return err },
		"Stats":       func() error { _, err := s.Stats(); return err },
		"Check":       s.Check,
		"Meta":        func() error { _, err := s.Meta(); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, dedupe.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestSetCursorAndResetStream(t *testing.T) {
	s := open(t, options(t))
	other := "1/26/out"
	commit(t, s,
		dedupe.Batch{Stream: testStream, Cursor: ptr(at(10, 0)), SealedDay: "20260309",
			Seen:    []dedupe.Key{key("a", at(9, 0), 1)},
			Pending: []dedupe.Pending{{CallID: "p", FilterTime: at(9, 30)}}},
		dedupe.Batch{Stream: other, Cursor: ptr(at(11, 0)),
			Pending: []dedupe.Pending{{CallID: "q", FilterTime: at(10, 30)}}},
	)

	if err := s.SetCursor(testStream, at(8, 0)); err != nil {
		t.Fatal(err)
	}
	st, _ := s.State(testStream)
	want := dedupe.StreamState{Stream: testStream, Cursor: at(8, 0), SealedDay: "20260309",
		Pending: []dedupe.Pending{{CallID: "p", FilterTime: at(9, 30)}}}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("after SetCursor back (-want +got):\n%s", diff)
	}

	if err := s.ResetStream(testStream); err != nil {
		t.Fatal(err)
	}
	streams, err := s.Streams()
	if err != nil {
		t.Fatal(err)
	}
	wantStreams := []dedupe.StreamState{{Stream: other, Cursor: at(11, 0),
		Pending: []dedupe.Pending{{CallID: "q", FilterTime: at(10, 30)}}}}
	if diff := cmp.Diff(wantStreams, streams); diff != "" {
		t.Errorf("streams after reset (-want +got):\n%s", diff)
	}
	if unseen, _ := s.Unseen([]dedupe.Key{key("a", at(9, 0), 1)}); len(unseen) != 0 {
		t.Errorf("a reset stream forgot its seen calls: %+v", unseen)
	}
}

func TestStreamsAreSortedByKey(t *testing.T) {
	s := open(t, options(t))
	commit(t, s,
		dedupe.Batch{Stream: "1/3/out", Cursor: ptr(at(10, 0))},
		dedupe.Batch{Stream: "1/10/in", Cursor: ptr(at(10, 0))},
		dedupe.Batch{Stream: "1/2/in", Pending: []dedupe.Pending{{CallID: "p", FilterTime: at(9, 0)}}},
	)
	streams, err := s.Streams()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range streams {
		names = append(names, st.Stream)
	}
	if diff := cmp.Diff([]string{"1/10/in", "1/2/in", "1/3/out"}, names); diff != "" {
		t.Errorf("Streams (-want +got):\n%s", diff)
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
