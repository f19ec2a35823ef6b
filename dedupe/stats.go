package dedupe

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Stats counts what the store holds.
type Stats struct {
	Streams    int        // streams with a cursor record or pending calls
	Cursors    int        // cursor records
	Pending    int        // pending calls over all streams
	Gaps       int        // gap log entries
	SeenKeys   int        // seen keys over all day buckets
	DayBuckets int        // seen/YYYYMMDD buckets
	Days       []DayStats // per day bucket, oldest first
	DataSize   int64      // bytes in use as bbolt sees it
	FileSize   int64      // bytes on disk
}

// DayStats is one seen/YYYYMMDD bucket.
type DayStats struct {
	Day  string // YYYYMMDD
	Keys int
}

// Stats counts keys per bucket kind in one read transaction.
func (s *Store) Stats() (Stats, error) {
	var st Stats
	err := s.view("stats", func(tx *bolt.Tx) error {
		st = Stats{DataSize: tx.Size()}
		streams := map[string]bool{}
		err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if day, ok := isDayBucket(name); ok {
				n := b.Stats().KeyN
				st.Days = append(st.Days, DayStats{Day: day, Keys: n})
				st.SeenKeys += n
				st.DayBuckets++
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketCursors).ForEach(func(k, _ []byte) error {
			st.Cursors++
			streams[string(k)] = true
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketPending).ForEach(func(k, _ []byte) error {
			st.Pending++
			for i, c := range k {
				if c == pendingSep[0] {
					streams[string(k[:i])] = true
					break
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		st.Streams = len(streams)
		st.Gaps = tx.Bucket(bucketGaps).Stats().KeyN
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("stats of %s: %w", s.path, err)
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		return Stats{}, fmt.Errorf("stats of %s: %w", s.path, err)
	}
	st.FileSize = fi.Size()
	return st, nil
}

// Check runs bbolt's consistency check (tx.Check) over the whole file and
// checks that every value has the shape this format writes. It returns nil
// for a sound file and every problem found, joined, otherwise.
func (s *Store) Check() error {
	var errs []error
	err := s.view("check", func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			errs = append(errs, e)
		}
		if len(errs) > 0 {
			return nil // the tree itself is broken: reading values could panic
		}
		errs = append(errs, checkValues(tx)...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("check %s: %w", s.path, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("check %s: %d problems: %w", s.path, len(errs), errors.Join(errs...))
	}
	return nil
}

func checkValues(tx *bolt.Tx) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	_ = tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		switch day, isDay := isDayBucket(name); {
		case isDay:
			if _, err := time.Parse(dayLayout, day); err != nil {
				bad("bucket %s: not a day", name)
			}
			_ = b.ForEach(func(k, v []byte) error {
				if _, ok := seenHash(v); !ok {
					bad("seen %s in %s: value of %d bytes", k, name, len(v))
				}
				return nil
			})
		case string(name) == string(bucketCursors):
			_ = b.ForEach(func(k, v []byte) error {
				if _, ok := decodeCursor(v); !ok {
					bad("cursor %s: value of %d bytes", k, len(v))
				}
				return nil
			})
		case string(name) == string(bucketPending):
			_ = b.ForEach(func(k, v []byte) error {
				if _, _, ok := decodePending(v); !ok {
					bad("pending %q: value of %d bytes", k, len(v))
				}
				return nil
			})
		case string(name) == string(bucketGaps):
			_ = b.ForEach(func(k, v []byte) error {
				if len(k) < 16 || len(v) != 8 {
					bad("gap %x: malformed entry", k)
				}
				return nil
			})
		case string(name) == string(bucketQuarantined):
			_ = b.ForEach(func(k, v []byte) error {
				if len(v) != 8 || !bytes.Contains(k, []byte(pendingSep)) {
					bad("quarantined %q: malformed entry", k)
				}
				return nil
			})
		case string(name) == string(bucketMeta):
		default:
			bad("unexpected bucket %q", name)
		}
		return nil
	})
	return errs
}

// compactLockTimeout bounds Compact's wait for the source's lock: the
// service must be stopped first, and Compact says so instead of waiting.
const compactLockTimeout = 2 * time.Second

// compactTxMaxSize bounds one write transaction of Compact, so memory
// stays flat on a large file.
const compactTxMaxSize = 64 << 20

// Compact copies the store at src into a new file dst with bbolt's
// Compact, reclaiming free pages (callpub state compact). src is opened
// read-only (ErrLocked while the service runs); dst must not exist. The
// copy is consistency-checked; on any error dst is removed.
func Compact(src, dst string) (err error) {
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("compact %s: destination %s exists", src, dst)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("compact %s: %w", src, err)
	}
	from, err := Open(Options{Path: src, ReadOnly: true, LockTimeout: compactLockTimeout})
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	defer func() { err = errors.Join(err, from.Close()) }()
	to, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: compactLockTimeout})
	if err != nil {
		return fmt.Errorf("compact %s: create %s: %w", src, dst, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, os.Remove(dst))
		}
	}()
	if err := bolt.Compact(to, from.db, compactTxMaxSize); err != nil {
		return fmt.Errorf("compact %s into %s: %w", src, dst, errors.Join(err, to.Close()))
	}
	if err := to.Close(); err != nil {
		return fmt.Errorf("compact %s: close %s: %w", src, dst, err)
	}
	check, err := Open(Options{Path: dst, ReadOnly: true, LockTimeout: compactLockTimeout})
	if err != nil {
		return fmt.Errorf("compact %s: reopen %s: %w", src, dst, err)
	}
	return errors.Join(check.Check(), check.Close())
}
