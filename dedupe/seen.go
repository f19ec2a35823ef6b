package dedupe

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Key identifies one completed call of a stream and the content it was
// published with.
type Key struct {
	Stream  string    // the stream's key, e.g. "1/25/in"
	CallID  string    //
	CallEnd time.Time // names the day bucket; must not be zero
	Hash    uint64    // content hash of the normalised record
	// Update is set by Unseen: the key is recorded with another Hash, so the
	// call changed since it was published.
	Update bool
}

func (k Key) validate() error {
	switch {
	case k.Stream == "":
		return fmt.Errorf("key %q: empty stream", k.CallID)
	case k.CallID == "":
		return fmt.Errorf("key of stream %q: empty call id", k.Stream)
	case k.CallEnd.IsZero():
		return fmt.Errorf("key %s/%s: zero callEnd (only completed calls are seen)", k.Stream, k.CallID)
	}
	return nil
}

// dayBuckets finds seen/YYYYMMDD buckets within one transaction, caching
// the last day so a page of calls from one day costs one lookup.
type dayBuckets struct {
	tx      *bolt.Tx
	loc     *time.Location
	y, d    int
	m       time.Month
	name    string
	buckets map[string]*bolt.Bucket
}

func newDayBuckets(tx *bolt.Tx, loc *time.Location) *dayBuckets {
	return &dayBuckets{tx: tx, loc: loc, buckets: map[string]*bolt.Bucket{}}
}

// day returns the day name of t and its bucket (nil when absent).
func (c *dayBuckets) day(t time.Time) (string, *bolt.Bucket) {
	y, m, d := t.In(c.loc).Date()
	if c.name == "" || y != c.y || m != c.m || d != c.d {
		c.y, c.m, c.d = y, m, d
		c.name = time.Date(y, m, d, 12, 0, 0, 0, c.loc).Format(dayLayout)
	}
	return c.name, c.bucket(c.name)
}

func (c *dayBuckets) bucket(name string) *bolt.Bucket {
	b, ok := c.buckets[name]
	if !ok {
		b = c.tx.Bucket(dayBucket(name))
		c.buckets[name] = b
	}
	return b
}

// neighbours are the days before and after t's day: a call whose callEnd
// was corrected across midnight is still found (as an update).
func (c *dayBuckets) neighbours(t time.Time) [2]string {
	y, m, d := t.In(c.loc).Date()
	return [2]string{
		time.Date(y, m, d-1, 12, 0, 0, 0, c.loc).Format(dayLayout),
		time.Date(y, m, d+1, 12, 0, 0, 0, c.loc).Format(dayLayout),
	}
}

// lookup finds key k: its recorded hash and whether it is recorded at all.
func (c *dayBuckets) lookup(k Key, sk []byte) (uint64, bool, error) {
	day, b := c.day(k.CallEnd)
	if b != nil {
		if v := b.Get(sk); v != nil {
			h, ok := seenHash(v)
			if !ok {
				return 0, false, fmt.Errorf("seen %s in day %s: malformed value: %w", sk, day, ErrFormat)
			}
			return h, true, nil
		}
	}
	for _, n := range c.neighbours(k.CallEnd) {
		if b := c.bucket(n); b != nil {
			if v := b.Get(sk); v != nil {
				h, ok := seenHash(v)
				if !ok {
					return 0, false, fmt.Errorf("seen %s in day %s: malformed value: %w", sk, n, ErrFormat)
				}
				return h, true, nil
			}
		}
	}
	return 0, false, nil
}

// Unseen returns, in one read transaction, the keys that still need
// publishing: those not recorded, and those recorded with another Hash
// (returned with Update set). The order of keys is kept. A key is looked up
// in the bucket of its CallEnd's day and, failing that, the days either side.
func (s *Store) Unseen(keys []Key) ([]Key, error) {
	for _, k := range keys {
		if err := k.validate(); err != nil {
			return nil, fmt.Errorf("unseen: %w", err)
		}
	}
	var out []Key
	err := s.view("unseen", func(tx *bolt.Tx) error {
		days := newDayBuckets(tx, s.loc)
		sk := make([]byte, 0, 64)
		for _, k := range keys {
			sk = append(append(append(sk[:0], k.Stream...), '/'), k.CallID...)
			h, found, err := days.lookup(k, sk)
			if err != nil {
				return err
			}
			switch {
			case !found:
				k.Update = false
			case h != k.Hash:
				k.Update = true
			default:
				continue
			}
			out = append(out, k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("unseen %d keys: %w", len(keys), err)
	}
	return out, nil
}

// CountSeen counts the seen calls of stream whose CallEnd falls on day's
// date in the store's zone.
func (s *Store) CountSeen(stream string, day time.Time) (int, error) {
	if stream == "" {
		return 0, fmt.Errorf("count seen: empty stream")
	}
	name := dayName(day, s.loc)
	n := 0
	err := s.view("count seen", func(tx *bolt.Tx) error {
		b := tx.Bucket(dayBucket(name))
		if b == nil {
			return nil
		}
		prefix := []byte(stream + "/")
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count seen %s on %s: %w", stream, name, err)
	}
	return n, nil
}

// Prune drops every seen day bucket for a day before before's day (in the
// store's zone); the bucket of before's own day stays. Quarantine records
// detected before before go too. It returns how many
// buckets it dropped.
func (s *Store) Prune(before time.Time) (int, error) {
	keep := dayName(before, s.loc)
	dropped := 0
	err := s.update("prune", func(tx *bolt.Tx) error {
		dropped = 0
		var names [][]byte
		err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if day, ok := isDayBucket(name); ok && day < keep {
				names = append(names, bytes.Clone(name))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := tx.DeleteBucket(n); err != nil {
				return fmt.Errorf("drop %s: %w", n, err)
			}
			dropped++
		}
		return pruneQuarantined(tx, before)
	})
	if err != nil {
		return 0, fmt.Errorf("prune before %s: %w", keep, err)
	}
	return dropped, nil
}
