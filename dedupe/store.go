package dedupe

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// formatVersion is the layout this package reads and writes. Open refuses
// any other with ErrFormat.
const formatVersion = 1

// Meta keys.
var (
	metaVersion     = []byte("version")
	metaCCID        = []byte("ccid")
	metaShard       = []byte("shard")
	metaLocation    = []byte("location")
	metaFingerprint = []byte("fingerprint")
	metaCreated     = []byte("created")
)

// Options configures Open. Defaults live in the caller's config tags; Open
// validates and never substitutes a value, except where a field says so.
type Options struct {
	// Path of the bbolt file. A read-write open creates it.
	Path string
	// LockTimeout bounds the wait for the file lock; it must be positive
	// (bbolt's zero value waits forever). On timeout Open returns ErrLocked.
	LockTimeout time.Duration
	// CCID the store belongs to. A store made for another ccId is refused
	// with a *MismatchError. A ReadOnly open with CCID 0 inspects any store
	// and skips the ccId and shard checks.
	CCID int
	// Fingerprint of the configuration that shapes the state (recorded; a
	// change is allowed and reported by Meta as PreviousFingerprint).
	Fingerprint string
	// Location names the day buckets (the API's day zone). nil means UTC;
	// for a ReadOnly open nil means the zone recorded in the file. A store
	// made in another zone is refused with a *MismatchError.
	Location *time.Location
	// ReadOnly opens an existing file with a shared lock for inspection
	// (callpub state show / check). A missing file is an error.
	ReadOnly bool
	// Shard is the replica's shard ("i/n", or "" when not sharded). A store
	// made for another shard is refused with a *MismatchError.
	Shard string
	// BatchDelay is how long a commit waits for concurrent commits to join
	// its transaction (bbolt's MaxBatchDelay); 0 means DefaultBatchDelay.
	// A commit with no other commit in flight never waits.
	BatchDelay time.Duration
	// BatchSize caps the commits sharing one transaction (bbolt's
	// MaxBatchSize); 0 keeps bbolt's 1000.
	BatchSize int
}

// DefaultBatchDelay is the grouping wait used when Options.BatchDelay is 0.
// bbolt's own default (10ms) is tuned for many tiny writers; with fsync
// near a millisecond, half of that groups concurrent commits without
// making each of them wait ten times the disk's latency
// (BenchmarkCommitParallel).
const DefaultBatchDelay = 500 * time.Microsecond

// Meta is what the file records about itself.
type Meta struct {
	Version     int
	CCID        int
	Shard       string
	Location    string // IANA name of the day-bucket zone
	Fingerprint string
	// PreviousFingerprint is the fingerprint the file held before this
	// read-write open replaced it ("" when unchanged).
	PreviousFingerprint string
	Created             time.Time
}

// Store is the bbolt-backed state of every stream of one ccId. Its methods
// are safe for concurrent use and take no ctx: each is one short
// transaction.
type Store struct {
	db       *bolt.DB
	path     string
	loc      *time.Location
	readOnly bool
	meta     Meta

	inflight   atomic.Int64 // commits in progress; >1 means Batch can group
	noGrouping bool         // benchmarks only: every commit its own transaction

	mu     sync.RWMutex // guards closed; held shared by every operation
	closed bool
}

// Open opens (or, unless ReadOnly, creates) the store at o.Path.
func Open(o Options) (*Store, error) {
	if o.Path == "" {
		return nil, errors.New("open store: empty path")
	}
	if o.LockTimeout <= 0 {
		return nil, fmt.Errorf("open store %s: lock timeout must be positive, got %v", o.Path, o.LockTimeout)
	}
	if o.BatchDelay < 0 || o.BatchSize < 0 {
		return nil, fmt.Errorf("open store %s: negative batch delay or size", o.Path)
	}
	if o.ReadOnly {
		if _, err := os.Stat(o.Path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("open store %s read-only: no such file (only a read-write open creates one): %w", o.Path, err)
			}
			return nil, fmt.Errorf("open store %s read-only: %w", o.Path, err)
		}
	}
	db, err := bolt.Open(o.Path, 0o600, &bolt.Options{
		Timeout:  o.LockTimeout,
		ReadOnly: o.ReadOnly,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: %w: %w", o.Path, ErrLocked, err)
		}
		return nil, fmt.Errorf("open store %s: %w", o.Path, err)
	}
	db.MaxBatchDelay = DefaultBatchDelay
	if o.BatchDelay > 0 {
		db.MaxBatchDelay = o.BatchDelay
	}
	if o.BatchSize > 0 {
		db.MaxBatchSize = o.BatchSize
	}
	s := &Store{db: db, path: o.Path, readOnly: o.ReadOnly}
	if err := s.initMeta(o); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return s, nil
}

// initMeta creates the meta bucket in a new file, or checks it in an
// existing one, and settles the store's location.
func (s *Store) initMeta(o Options) error {
	if o.ReadOnly {
		return s.db.View(func(tx *bolt.Tx) error { return s.checkMeta(tx, o) })
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			if err := s.createMeta(tx, o); err != nil {
				return err
			}
		} else if err := s.checkMeta(tx, o); err != nil {
			return err
		}
		for _, name := range [][]byte{bucketCursors, bucketPending, bucketGaps} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("open store %s: create bucket %s: %w", s.path, name, err)
			}
		}
		return nil
	})
}

func (s *Store) createMeta(tx *bolt.Tx, o Options) error {
	empty := true
	_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
	if !empty {
		return fmt.Errorf("open store %s: not a callpub store (no meta bucket): %w", s.path, ErrFormat)
	}
	loc := o.Location
	if loc == nil {
		loc = time.UTC
	}
	now := time.Now()
	m, err := tx.CreateBucket(bucketMeta)
	if err != nil {
		return fmt.Errorf("open store %s: create meta: %w", s.path, err)
	}
	for k, v := range map[string]string{
		string(metaVersion):     strconv.Itoa(formatVersion),
		string(metaCCID):        strconv.Itoa(o.CCID),
		string(metaShard):       o.Shard,
		string(metaLocation):    loc.String(),
		string(metaFingerprint): o.Fingerprint,
		string(metaCreated):     now.UTC().Format(time.RFC3339Nano),
	} {
		if err := m.Put([]byte(k), []byte(v)); err != nil {
			return fmt.Errorf("open store %s: write meta %s: %w", s.path, k, err)
		}
	}
	s.loc = loc
	s.meta = Meta{Version: formatVersion, CCID: o.CCID, Shard: o.Shard, Location: loc.String(),
		Fingerprint: o.Fingerprint, Created: now.UTC()}
	return nil
}

func (s *Store) checkMeta(tx *bolt.Tx, o Options) error {
	m := tx.Bucket(bucketMeta)
	if m == nil {
		return fmt.Errorf("open store %s: not a callpub store (no meta bucket): %w", s.path, ErrFormat)
	}
	get := func(k []byte) string { return string(m.Get(k)) } // string() copies out of the map
	v, err := strconv.Atoi(get(metaVersion))
	if err != nil || v != formatVersion {
		return fmt.Errorf("open store %s: format version %q, this build reads %d: %w",
			s.path, get(metaVersion), formatVersion, ErrFormat)
	}
	ccid, err := strconv.Atoi(get(metaCCID))
	if err != nil {
		return fmt.Errorf("open store %s: bad ccId %q in meta: %w", s.path, get(metaCCID), ErrFormat)
	}
	created, _ := time.Parse(time.RFC3339Nano, get(metaCreated))
	s.meta = Meta{Version: v, CCID: ccid, Shard: get(metaShard), Location: get(metaLocation),
		Fingerprint: get(metaFingerprint), Created: created}

	inspect := o.ReadOnly && o.CCID == 0
	if !inspect {
		if ccid != o.CCID {
			return &MismatchError{Path: s.path, Field: "ccId", Store: strconv.Itoa(ccid), Given: strconv.Itoa(o.CCID)}
		}
		if s.meta.Shard != o.Shard {
			return &MismatchError{Path: s.path, Field: "shard", Store: s.meta.Shard, Given: o.Shard}
		}
	}
	switch {
	case o.Location != nil && o.Location.String() != s.meta.Location:
		return &MismatchError{Path: s.path, Field: "location", Store: s.meta.Location, Given: o.Location.String()}
	case o.Location != nil:
		s.loc = o.Location
	case o.ReadOnly:
		loc, err := time.LoadLocation(s.meta.Location)
		if err != nil {
			return fmt.Errorf("open store %s: zone %q recorded in meta: %w", s.path, s.meta.Location, err)
		}
		s.loc = loc
	case s.meta.Location != time.UTC.String():
		return &MismatchError{Path: s.path, Field: "location", Store: s.meta.Location, Given: time.UTC.String()}
	default:
		s.loc = time.UTC
	}
	if !o.ReadOnly && o.Fingerprint != s.meta.Fingerprint {
		if err := m.Put(metaFingerprint, []byte(o.Fingerprint)); err != nil {
			return fmt.Errorf("open store %s: write fingerprint: %w", s.path, err)
		}
		s.meta.PreviousFingerprint = s.meta.Fingerprint
		s.meta.Fingerprint = o.Fingerprint
	}
	return nil
}

// Meta returns what the file records about itself, as read at Open.
func (s *Store) Meta() (Meta, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return Meta{}, ErrClosed
	}
	return s.meta, nil
}

// Location is the zone that names the day buckets.
func (s *Store) Location() *time.Location { return s.loc }

// Path is the file the store lives in.
func (s *Store) Path() string { return s.path }

// Close releases the file and its lock. Every later call returns ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// view runs fn in a read transaction unless the store is closed.
func (s *Store) view(op string, fn func(*bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("%s: %w", op, ErrClosed)
	}
	return s.db.View(fn)
}

// update runs fn in its own read-write transaction.
func (s *Store) update(op string, fn func(*bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("%s: %w", op, ErrClosed)
	}
	if s.readOnly {
		return fmt.Errorf("%s: %w", op, ErrReadOnly)
	}
	return s.db.Update(fn)
}
