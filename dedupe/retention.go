package dedupe

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// PruneByDay prunes like Prune(before) but drops one day bucket per write
// transaction, oldest first, and ends with Prune(before) itself (which also
// prunes what Prune prunes besides day buckets). bbolt serialises writers,
// so a commit running alongside waits for the drop of one day at most, never
// for all of them: this is the prune a running service uses. It returns the
// days dropped (YYYYMMDD, oldest first); after an error, those dropped
// before it.
func (s *Store) PruneByDay(before time.Time) ([]string, error) {
	keep := dayName(before, s.loc)
	var old []string
	err := s.view("prune", func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if day, ok := isDayBucket(name); ok && day < keep {
				old = append(old, day) // isDayBucket's string copied name out of the map
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("prune before %s: %w", keep, err)
	}
	var dropped []string
	for _, day := range old { // ForEach visits buckets in byte order: oldest day first
		d, err := time.ParseInLocation(dayLayout, day, s.loc)
		if err != nil {
			return dropped, fmt.Errorf("prune before %s: bucket %s: %w", keep, day, err)
		}
		// Every older bucket is gone, so pruning before the next day drops
		// exactly this one (noon: a day always has one), and never anything
		// a prune before before would keep.
		next := time.Date(d.Year(), d.Month(), d.Day()+1, 12, 0, 0, 0, s.loc)
		if next.After(before) {
			next = before
		}
		n, err := s.Prune(next)
		if err != nil {
			return dropped, err
		}
		if n > 0 {
			dropped = append(dropped, day)
		}
	}
	if _, err := s.Prune(before); err != nil {
		return dropped, err
	}
	return dropped, nil
}
