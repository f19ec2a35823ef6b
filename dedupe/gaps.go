package dedupe

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Gap is a span of a stream that fell off the API's reach before it was
// read: its calls are lost and were never published.
type Gap struct {
	Stream     string
	Start, End time.Time // half-open [Start, End)
	DetectedAt time.Time
}

// Gaps returns the gap log, ordered by Start, then End, then Stream.
func (s *Store) Gaps() ([]Gap, error) {
	var out []Gap
	err := s.view("gaps", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketGaps).ForEach(func(k, v []byte) error {
			if len(k) < 16 || len(v) != 8 {
				return fmt.Errorf("gap %x: malformed entry: %w", k, ErrFormat)
			}
			out = append(out, Gap{
				Stream:     string(k[16:]),
				Start:      fromNano(getInt(k[:8]), s.loc),
				End:        fromNano(getInt(k[8:16]), s.loc),
				DetectedAt: fromNano(getInt(v), s.loc),
			})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read gaps: %w", err)
	}
	return out, nil
}

// GapsIn returns the gaps of stream that overlap [from, to), ordered by
// Start: what a day's seal must admit to.
func (s *Store) GapsIn(stream string, from, to time.Time) ([]Gap, error) {
	all, err := s.Gaps()
	if err != nil {
		return nil, err
	}
	var out []Gap
	for _, g := range all {
		if g.Stream == stream && g.Start.Before(to) && g.End.After(from) {
			out = append(out, g)
		}
	}
	return out, nil
}
