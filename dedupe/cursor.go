package dedupe

import (
	"bytes"
	"encoding/binary"
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
		if _, err := s.readCursor(tx, &st); err != nil {
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

// readCursor fills st's cursor fields from its cursor record and returns the
// stream's changelog seq (0 when it has none).
func (s *Store) readCursor(tx *bolt.Tx, st *StreamState) (uint64, error) {
	r, err := readStreamRecord(tx.Bucket(bucketCursors), []byte(st.Stream))
	if err != nil {
		return 0, err
	}
	st.Cursor = fromNano(r.cursor, s.loc)
	st.LastSweep = fromNano(r.lastSweep, s.loc)
	st.SealedDay = r.sealedDay
	st.LastChanceDay = r.lastChanceDay
	return r.seq, nil
}

// streamRecord is a cursor record and the stream's changelog seq, which
// follows the record's text as a trailer: NUL, then 8 bytes big-endian. The
// text (sealed day, "|", last-chance day) never holds a NUL, so a record
// without the trailer — every record written before Seq existed, and every
// record of a stream never logged — is exactly a cursorRecord with seq 0,
// and a record with seq 0 is written without it. The reverse does not hold:
// a build from before Seq would read a trailer as part of the sealed or
// last-chance day, so a store whose streams were logged must not be opened
// by one.
type streamRecord struct {
	cursorRecord
	seq uint64
}

const seqSep = 0x00

// readStreamRecord reads stream's record from cb; a missing one is zero.
func readStreamRecord(cb *bolt.Bucket, stream []byte) (streamRecord, error) {
	v := cb.Get(stream)
	if v == nil {
		return streamRecord{}, nil
	}
	r, ok := decodeStreamRecord(v) // copies: ints and a new string
	if !ok {
		return streamRecord{}, fmt.Errorf("cursor of %s: malformed value: %w", stream, ErrFormat)
	}
	return r, nil
}

func decodeStreamRecord(v []byte) (streamRecord, bool) {
	if len(v) < 16 {
		return streamRecord{}, false
	}
	i := bytes.IndexByte(v[16:], seqSep)
	if i < 0 {
		r, ok := decodeCursor(v)
		return streamRecord{cursorRecord: r}, ok
	}
	trailer := v[16+i+1:]
	if len(trailer) != 8 {
		return streamRecord{}, false
	}
	r, ok := decodeCursor(v[:16+i])
	return streamRecord{cursorRecord: r, seq: binary.BigEndian.Uint64(trailer)}, ok
}

func (r streamRecord) encode() []byte {
	v := r.cursorRecord.encode()
	if r.seq == 0 {
		return v
	}
	return binary.BigEndian.AppendUint64(append(v, seqSep), r.seq)
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
			if _, err := s.readCursor(tx, &st); err != nil {
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
// set-cursor). Pending calls, the last sweep, the sealed day and the
// changelog seq stay.
func (s *Store) SetCursor(stream string, t time.Time) error {
	if stream == "" {
		return fmt.Errorf("set cursor: empty stream")
	}
	err := s.update("set cursor", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCursors)
		r, err := readStreamRecord(b, []byte(stream))
		if err != nil {
			return err
		}
		r.cursor = unixNano(t) // the changelog seq stays
		return b.Put([]byte(stream), r.encode())
	})
	if err != nil {
		return fmt.Errorf("set cursor of %s to %v: %w", stream, t, err)
	}
	return nil
}

// ResetStream drops stream's cursor record and pending calls, so it starts
// again like a new stream; its changelog seq, kept in the cursor record,
// goes back to 0. Its seen calls stay (a restart re-reads without
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
