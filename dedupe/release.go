package dedupe

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ReleaseMapped drops the store's file pages from this process's resident
// set. bbolt reads the file through a shared read-only mapping, so every page
// a lookup or a commit has touched counts in the process's RSS (as file
// memory) until the mapping goes — about the whole store after an hour of
// lookups. The pages stay in the page cache; a later read maps them back
// with a minor fault. The mapping cannot move meanwhile: a read transaction
// holds off bbolt's remap. On systems other than Linux it does nothing.
func (s *Store) ReleaseMapped() error {
	err := s.db.View(func(tx *bolt.Tx) error {
		return releaseMapped(s.db.Info().Data, int(tx.Size()))
	})
	if err != nil {
		return fmt.Errorf("release the store's mapped pages: %w", err)
	}
	return nil
}
