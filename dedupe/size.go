package dedupe

import (
	"fmt"
	"os"
)

// Size is the length of the store's file: the space it takes on its
// volume. bbolt reuses the pages that pruning frees but never shrinks the
// file; `callpub state compact` does, offline.
func (s *Store) Size() (int64, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return 0, fmt.Errorf("size of store: %w", err)
	}
	return fi.Size(), nil
}

// VolumeFree is the space, in bytes, that this process may still use on the
// volume holding the store's file (what statfs calls available: the blocks
// reserved for root are not counted). Where that cannot be asked portably it
// returns an error wrapping errors.ErrUnsupported.
func (s *Store) VolumeFree() (int64, error) {
	n, err := volumeFree(s.path)
	if err != nil {
		return 0, fmt.Errorf("free space beside %s: %w", s.path, err)
	}
	return n, nil
}
