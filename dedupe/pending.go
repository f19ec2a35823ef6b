package dedupe

import (
	"bytes"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Pending is a call seen without callEnd: it still runs (or its completed
// row has not shown up). Its filter time holds the stream's cursor back.
type Pending struct {
	CallID     string
	FilterTime time.Time // the time the API's window filters it on
	FirstSeen  time.Time // kept from the first upsert
}

func (s *Store) readPending(tx *bolt.Tx, stream string) ([]Pending, error) {
	prefix := []byte(stream + pendingSep)
	var out []Pending
	c := tx.Bucket(bucketPending).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		filter, first, ok := decodePending(v)
		if !ok {
			return nil, fmt.Errorf("pending %q: malformed value: %w", k, ErrFormat)
		}
		out = append(out, Pending{
			CallID:     string(k[len(prefix):]), // string() copies
			FilterTime: fromNano(filter, s.loc),
			FirstSeen:  fromNano(first, s.loc),
		})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].FilterTime.Equal(out[j].FilterTime) {
			return out[i].FilterTime.Before(out[j].FilterTime)
		}
		return out[i].CallID < out[j].CallID
	})
	return out, nil
}

// deletePending removes every pending call of stream.
func deletePending(b *bolt.Bucket, stream string) error {
	prefix := []byte(stream + pendingSep)
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
