package dedupe

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketQuarantined remembers the rows each stream quarantined, so a bad row
// read again is reported once: key stream NUL sum, value the detection time
// (8 bytes, unix nanoseconds). The first commit that quarantines a row
// creates it; a store without it has quarantined nothing.
var bucketQuarantined = []byte("quarantined")

// Quarantined is a row of a stream that could not be used and was reported
// (on the dead-letter topic, when there is one).
type Quarantined struct {
	Sum        string // identifies the row: hex SHA-256 of its raw bytes
	DetectedAt time.Time
}

// NewlyBad returns the sums not yet recorded as quarantined for stream, in
// their order, in one read transaction.
func (s *Store) NewlyBad(stream string, sums []string) ([]string, error) {
	var out []string
	err := s.view("newly bad", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQuarantined)
		for _, sum := range sums {
			if b == nil || b.Get(quarantineKey(stream, sum)) == nil {
				out = append(out, sum)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("newly bad rows of %s: %w", stream, err)
	}
	return out, nil
}

func quarantineKey(stream, sum string) []byte {
	return []byte(stream + pendingSep + sum)
}

// prepareQuarantined validates and encodes b.Quarantined.
func prepareQuarantined(b Batch) ([][2][]byte, error) {
	var out [][2][]byte
	for _, q := range b.Quarantined {
		if q.Sum == "" || strings.Contains(q.Sum, pendingSep) {
			return nil, badBatch(b.Stream, "quarantined row: empty sum or one with a NUL byte")
		}
		v := make([]byte, 8)
		putInt(v, unixNano(q.DetectedAt))
		out = append(out, [2][]byte{quarantineKey(b.Stream, q.Sum), v})
	}
	return out, nil
}

// applyQuarantined records the quarantined rows, creating the bucket on
// first use.
func (p *prepared) applyQuarantined(tx *bolt.Tx) error {
	if len(p.quarantined) == 0 {
		return nil
	}
	b, err := tx.CreateBucketIfNotExists(bucketQuarantined)
	if err != nil {
		return fmt.Errorf("quarantine bucket: %w", err)
	}
	for _, kv := range p.quarantined {
		if err := b.Put(kv[0], kv[1]); err != nil {
			return fmt.Errorf("quarantined %q: %w", kv[0], err)
		}
	}
	return nil
}

// pruneQuarantined drops the quarantine records detected before before: by
// then the API no longer returns their rows.
func pruneQuarantined(tx *bolt.Tx, before time.Time) error {
	b := tx.Bucket(bucketQuarantined)
	if b == nil {
		return nil
	}
	limit := unixNano(before)
	var old [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if len(v) == 8 && getInt(v) < limit {
			old = append(old, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
