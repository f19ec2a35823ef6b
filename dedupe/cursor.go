package dedupe

import (
	"bytes"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// StreamState is what the store knows about one stream.
type StreamState struct {
	Stream string
	// Cursor W: every call whose filter time is before W was seen complete
	// and published, except the pending ones. Zero: the stream has not
	// started yet.
	Cursor    time.Time
	LastSweep time.Time // zero: never swept
	SealedDay string    // last sealed day, "YYYYMMDD", or ""
	// LastChanceDay is the last day read once more just before it left the
	// API's reach ("YYYYMMDD", or "").
	LastChanceDay string
	Pending       []Pending // sorted by FilterTime, then CallID
}

// State returns stream's state; a stream the store has never seen has a
// zero state and no error.
func (s *Store) State(stream string) (StreamState, error) {
	if stream == "" {
		return StreamState{}, fmt.Errorf("state: empty stream")
	}
	st := StreamState{Stream: stream}
	err := s.view("state", func(tx *bolt.Tx) error {
		if err := s.readCursor(tx, &st); err != nil {
			return err
		}
		var err error
		st.Pending, err = s.readPending(tx, stream)
		return err
	})
	if err != nil {
		return StreamState{}, fmt.Errorf("state of %s: %w", stream, err)
	}
	return st, nil
}

func (s *Store) readCursor(tx *bolt.Tx, st *StreamState) error {
	v := tx.Bucket(bucketCursors).Get([]byte(st.Stream))
	if v == nil {
		return nil
	}
	r, ok := decodeCursor(v) // copies: ints and a new string
	if !ok {
		return fmt.Errorf("cursor of %s: malformed value: %w", st.Stream, ErrFormat)
	}
	st.Cursor = fromNano(r.cursor, s.loc)
	st.LastSweep = fromNano(r.lastSweep, s.loc)
	st.SealedDay = r.sealedDay
	st.LastChanceDay = r.lastChanceDay
	return nil
}

// Streams returns every stream that has a cursor record or pending calls,
// sorted by key.
func (s *Store) Streams() ([]StreamState, error) {
	var out []StreamState
	err := s.view("streams", func(tx *bolt.Tx) error {
		names := map[string]bool{}
		err := tx.Bucket(bucketCursors).ForEach(func(k, _ []byte) error {
			names[string(k)] = true
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketPending).ForEach(func(k, _ []byte) error {
			if i := bytes.IndexByte(k, pendingSep[0]); i >= 0 {
				names[string(k[:i])] = true
			}
			return nil
		})
		if err != nil {
			return err
		}
		for name := range names {
			st := StreamState{Stream: name}
			if err := s.readCursor(tx, &st); err != nil {
				return err
			}
			if st.Pending, err = s.readPending(tx, name); err != nil {
				return err
			}
			out = append(out, st)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stream < out[j].Stream })
	return out, nil
}

// SetCursor sets stream's cursor to t, forwards or backwards (callpub state
// set-cursor). Pending calls, the last sweep and the sealed day stay.
func (s *Store) SetCursor(stream string, t time.Time) error {
	if stream == "" {
		return fmt.Errorf("set cursor: empty stream")
	}
	err := s.update("set cursor", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCursors)
		r := cursorRecord{}
		if v := b.Get([]byte(stream)); v != nil {
			var ok bool
			if r, ok = decodeCursor(v); !ok {
				return fmt.Errorf("malformed cursor value: %w", ErrFormat)
			}
		}
		r.cursor = unixNano(t)
		return b.Put([]byte(stream), r.encode())
	})
	if err != nil {
		return fmt.Errorf("set cursor of %s to %v: %w", stream, t, err)
	}
	return nil
}

// ResetStream drops stream's cursor record and pending calls, so it starts
// again like a new stream. Its seen calls stay (a restart re-reads without
// re-publishing), and so do its gap entries.
func (s *Store) ResetStream(stream string) error {
	if stream == "" {
		return fmt.Errorf("reset stream: empty stream")
	}
	err := s.update("reset stream", func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketCursors).Delete([]byte(stream)); err != nil {
			return err
		}
		return deletePending(tx.Bucket(bucketPending), stream)
	})
	if err != nil {
		return fmt.Errorf("reset stream %s: %w", stream, err)
	}
	return nil
}
