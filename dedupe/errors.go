package dedupe

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by every method once Close was called.
	ErrClosed = errors.New("store closed")
	// ErrLocked means another process holds the file: the lock was not
	// obtained within Options.LockTimeout. It wraps bbolt's timeout error.
	ErrLocked = errors.New("store file is in use by another callpub process (is the service running?)")
	// ErrFormat means the file is not a callpub store, or one written in a
	// format version this build does not know.
	ErrFormat = errors.New("unknown store format")
	// ErrReadOnly is returned by writing methods of a store opened ReadOnly.
	ErrReadOnly = errors.New("store opened read-only")
)

// MismatchError reports a store that was made for another ccId, shard or
// time zone than the one it is opened for.
type MismatchError struct {
	Path  string
	Field string // "ccId", "shard" or "location"
	Store string // value recorded in the file
	Given string // value passed to Open
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("store %s was made for %s %q, not %q", e.Path, e.Field, e.Store, e.Given)
}

// BatchError reports a Batch that Commit refused before touching the file.
type BatchError struct {
	Stream string
	Reason string
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("invalid batch for stream %q: %s", e.Stream, e.Reason)
}
