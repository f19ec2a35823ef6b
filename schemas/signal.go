package schemas

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Signals: requests to whichever replica owns a stream, and their answers,
// carried on the state topic (CALLPUB_KAFKA_STATE_TOPIC) like Debezium's
// Kafka signal channel. `callpub replay -stream 1/25/in -from T1 -to T2`
// writes a request under "replay/<id>"; the owner re-reads the span,
// re-publishes its calls and answers under "replay-done/<id>". A signal key
// is never a stream key (ParseStream refuses it), so a rebuild, which takes
// only records under stream keys, passes signals by.
//
// A signal is callpub's own JSON, versioned by its "v" member:
//
//	{"v":1,"kind":"replay","id":"20261203T180501Z-1f3a9c0b","stream":"1/25/in",
//	 "from":"2026-12-03T08:00:00.000000000Z","to":"2026-12-03T09:00:00.000000000Z",
//	 "published":0,"by":"ops-laptop","at":"2026-12-03T18:05:01.123456789Z"}
//
// Times are RFC 3339 in UTC with nine fractional digits, as in the state
// record; "error", "by" and "at" are left out when empty or zero. DecodeSignal
// ignores members it does not know; a change that a version 1 reader must
// not ignore needs a new version.

// Signal kinds.
const (
	SignalReplay     = "replay"      // a request: re-publish a span of a stream
	SignalReplayDone = "replay-done" // the owner's answer to a request of the same id
)

// SignalVersion is the version EncodeSignal writes and DecodeSignal reads.
const SignalVersion = 1

// ErrSignalVersion is wrapped by DecodeSignal's error for a signal of a
// version it does not read (one written by a newer callpub, or a value that
// has no "v"). It is its own error, not ErrStateVersion: a signal of an
// unknown version is one request a replica cannot serve, while a state
// record of an unknown version stops a rebuild.
var ErrSignalVersion = errors.New("unknown signal version")

// ReplaySignal is a replay request (Kind SignalReplay) or its answer (Kind
// SignalReplayDone). Its Kafka key is SignalKey(Kind, ID).
type ReplaySignal struct {
	Kind string // SignalReplay or SignalReplayDone
	// ID names the request, and its answer carries the same one: 1 to 100
	// characters of A-Z a-z 0-9 . _ : - (NewReplayID makes one).
	ID string
	// Stream is the stream key in canonical form, Stream.Key ("1/25/in").
	Stream string
	// From and To are the span [From, To) of filter times to re-publish:
	// both required, From before To.
	From, To time.Time
	// Published counts the call events an answer re-published (a failed
	// replay may have published some before it failed). A request has 0.
	Published int
	// Error says why a replay failed; "" in a request and in the answer to
	// a replay that succeeded.
	Error string
	By    string    // who wrote the signal (free text: a host or pod name)
	At    time.Time // when it was written; zero: not said
}

// Key is the signal's Kafka key: SignalKey(s.Kind, s.ID).
func (s ReplaySignal) Key() string { return SignalKey(s.Kind, s.ID) }

// SignalKey is the Kafka key of the signal of kind with id: "replay/<id>"
// for a request, "replay-done/<id>" for its answer. It does not check its
// arguments: IsSignalKey(SignalKey(kind, id)) holds exactly when kind is a
// signal kind and id a valid id.
func SignalKey(kind, id string) string { return kind + "/" + id }

// IsSignalKey reports whether key is a signal's key: "replay/" or
// "replay-done/" followed by a valid id. No stream key is one.
func IsSignalKey(key string) bool {
	kind, id, ok := strings.Cut(key, "/")
	return ok && knownKind(kind) && checkID(id) == nil
}

// NewReplayID returns an id for a new request: now in UTC, to the second,
// and 8 random hex digits, e.g. "20261203T180501Z-1f3a9c0b". Two requests
// made in the same second share an id once in 2^32.
func NewReplayID(now time.Time) string {
	var r [4]byte
	_, _ = rand.Read(r[:]) // never fails (crypto/rand crashes the program instead)
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(r[:])
}

// signalWire is the wire form. Member order is the order of the fields.
type signalWire struct {
	V         int    `json:"v"`
	Kind      string `json:"kind"`
	ID        string `json:"id"`
	Stream    string `json:"stream"`
	From      string `json:"from"`
	To        string `json:"to"`
	Published int    `json:"published"`
	Error     string `json:"error,omitempty"`
	By        string `json:"by,omitempty"`
	At        string `json:"at,omitempty"`
}

// EncodeSignal is s's record value. It refuses what DecodeSignal would
// refuse (an unknown kind, a bad id or stream key, a missing or empty span,
// a negative count, a request with a count or an error, a string that is
// not UTF-8, a time whose UTC year is outside 0000-9999), so whatever it
// writes decodes to s, with times in UTC.
func EncodeSignal(s ReplaySignal) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("encode signal%s: %w", s.named(), err)
	}
	b, err := json.Marshal(signalWire{
		V: SignalVersion, Kind: s.Kind, ID: s.ID, Stream: s.Stream,
		From: formatStateTime(s.From), To: formatStateTime(s.To),
		Published: s.Published, Error: s.Error, By: s.By, At: formatStateTime(s.At),
	})
	if err != nil { // strings and numbers only: cannot happen
		return nil, fmt.Errorf("encode signal %s: %w", s.Key(), err)
	}
	return b, nil
}

// DecodeSignal reads a record value written by EncodeSignal. It refuses an
// empty value (a tombstone), a version other than SignalVersion
// (ErrSignalVersion), and anything EncodeSignal would not write. Times come
// back in UTC. It does not see the record's key: a reader that needs the two
// to agree compares the key with the signal's Key.
func DecodeSignal(value []byte) (ReplaySignal, error) {
	if len(value) == 0 {
		return ReplaySignal{}, errors.New("decode signal: empty value (a tombstone is not a signal)")
	}
	var w signalWire
	if err := json.Unmarshal(value, &w); err != nil {
		return ReplaySignal{}, fmt.Errorf("decode signal: %w", err)
	}
	if w.V != SignalVersion {
		return ReplaySignal{}, fmt.Errorf("decode signal: version %d, want %d: %w", w.V, SignalVersion, ErrSignalVersion)
	}
	s := ReplaySignal{Kind: w.Kind, ID: w.ID, Stream: w.Stream, Published: w.Published, Error: w.Error, By: w.By}
	var ts timeParser
	s.From = ts.parse("from", w.From)
	s.To = ts.parse("to", w.To)
	s.At = ts.parse("at", w.At)
	err := ts.err
	if err == nil {
		err = s.check()
	}
	if err != nil {
		return ReplaySignal{}, fmt.Errorf("decode signal%s: %w", s.named(), err)
	}
	return s, nil
}

// named is " <key>" for error messages once kind and id are valid, else "".
func (s ReplaySignal) named() string {
	if !knownKind(s.Kind) || checkID(s.ID) != nil {
		return ""
	}
	return " " + s.Key()
}

// check is what EncodeSignal and DecodeSignal require of a signal. It
// returns the first problem it finds.
func (s ReplaySignal) check() error {
	if !knownKind(s.Kind) {
		return fmt.Errorf("kind %q is not %s or %s", s.Kind, SignalReplay, SignalReplayDone)
	}
	if err := checkID(s.ID); err != nil {
		return err
	}
	if err := checkStream(s.Stream); err != nil {
		return err
	}
	for _, err := range []error{
		s.checkSpan(), s.checkOutcome(), checkText("by", s.By),
		checkTimes(namedTime{"from", s.From}, namedTime{"to", s.To}, namedTime{"at", s.At}),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkSpan requires From and To, From before To.
func (s ReplaySignal) checkSpan() error {
	switch {
	case s.From.IsZero():
		return errors.New("from missing")
	case s.To.IsZero():
		return errors.New("to missing")
	case !s.From.Before(s.To):
		return fmt.Errorf("from %s is not before to %s", formatStateTime(s.From), formatStateTime(s.To))
	}
	return nil
}

// checkOutcome checks published and error: an answer's outcome, which a
// request does not have.
func (s ReplaySignal) checkOutcome() error {
	switch {
	case s.Published < 0:
		return fmt.Errorf("published: %d is negative", s.Published)
	case s.Kind == SignalReplay && s.Published != 0:
		return fmt.Errorf("published: %d in a request (only an answer counts events)", s.Published)
	case s.Kind == SignalReplay && s.Error != "":
		return errors.New("error: set in a request (only an answer reports one)")
	}
	return checkText("error", s.Error)
}

func knownKind(kind string) bool { return kind == SignalReplay || kind == SignalReplayDone }

// maxIDLen is the longest id: room for NewReplayID's 25 characters and for
// ids an operator makes up.
const maxIDLen = 100

// checkID requires 1 to maxIDLen characters of A-Z a-z 0-9 . _ : -.
func checkID(id string) error {
	if id == "" {
		return errors.New("id missing")
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("id: %d characters, at most %d", len(id), maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._:-", c) >= 0) {
			return fmt.Errorf("id %q: only A-Z a-z 0-9 . _ : - are allowed", id)
		}
	}
	return nil
}
