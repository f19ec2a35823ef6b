package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/callpub/callpub/dedupe"
)

// stateConfig is all `callpub state` needs: where the store is. The ccId,
// shard and day zone come from the file itself.
type stateConfig struct {
	StateDir    string        `env:"STATE_DIR, default=./data"`
	LockTimeout time.Duration `env:"STATE_LOCK_TIMEOUT, default=5s"`
}

const stateUsage = `Usage: callpub state <command> [flags]   (operates on $CALLPUB_STATE_DIR/callpub.db)

  show    [-stream KEY] [-json]       store summary, per-stream cursors, pending calls and gaps
  check                               bbolt consistency check plus value checks
  reset   -stream KEY [-to RFC3339]   forget a stream's cursor and pending calls (it starts again at
                                      the API's horizon), or with -to set its cursor to that time;
                                      seen marks stay, so nothing is published twice
  prune   [-before YYYY-MM-DD]        drop seen-day buckets older than that day (default: 3 days
                                      before today, beyond the API's reach)
  compact                             rewrite the file without free pages (keeps a .bak copy)

The service must be stopped: the store belongs to one process at a time.
A stream KEY is ccId/vdn/dir, e.g. 1/25/in.
`

// state runs one `callpub state` command on the store in CALLPUB_STATE_DIR.
func state(args []string, env envconfig.Lookuper, out io.Writer) error {
	if len(args) == 0 || helpAsked(args[:1]) {
		fmt.Fprint(out, stateUsage)
		if len(args) == 0 {
			return usagef("state: no command given")
		}
		return nil
	}
	var cfg stateConfig
	if err := envconfig.ProcessWith(context.Background(), &envconfig.Config{
		Target: &cfg, Lookuper: envconfig.PrefixLookuper("CALLPUB_", env),
	}); err != nil {
		return configError(err)
	}
	path := filepath.Join(cfg.StateDir, storeFile)
	cmd := args[0]
	f, err := parseStateFlags(cmd, args[1:], out)
	if err != nil {
		return err
	}
	if f == nil {
		return nil // -help
	}
	switch cmd {
	case "show":
		return withStore(path, cfg.LockTimeout, true, func(s *dedupe.Store) error { return stateShow(s, f.stream, f.asJSON, out) })
	case "check":
		return withStore(path, cfg.LockTimeout, true, func(s *dedupe.Store) error { return stateCheck(s, path, out) })
	case "reset":
		return stateReset(path, cfg.LockTimeout, f.stream, f.to, out)
	case "prune":
		return withStore(path, cfg.LockTimeout, false, func(s *dedupe.Store) error { return statePrune(s, f.before, out) })
	case "compact":
		return stateCompact(path, cfg.LockTimeout, out)
	default:
		fmt.Fprint(out, stateUsage)
		return usagef("state: unknown command %q", cmd)
	}
}

// stateFlags are the flags of every state command; each command reads the
// ones it knows.
type stateFlags struct {
	stream string // show, reset: the stream key
	asJSON bool   // show
	to     string // reset: the new cursor, RFC 3339
	before string // prune: YYYY-MM-DD
}

// parseStateFlags parses the flags of state command cmd. It returns nil
// flags and a nil error when help was asked for.
func parseStateFlags(cmd string, args []string, out io.Writer) (*stateFlags, error) {
	fs := flag.NewFlagSet("state "+cmd, flag.ContinueOnError)
	fs.SetOutput(out)
	stream := fs.String("stream", "", "stream key ccId/vdn/dir")
	asJSON := fs.Bool("json", false, "machine-readable output")
	to := fs.String("to", "", "reset: set the cursor to this RFC 3339 time instead of forgetting it")
	before := fs.String("before", "", "prune: drop seen days before this date (YYYY-MM-DD)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil
		}
		return nil, usagef("state %s: %v", cmd, err)
	}
	return &stateFlags{stream: *stream, asJSON: *asJSON, to: *to, before: *before}, nil
}

// stateCheck runs the store's consistency and value checks.
func stateCheck(s *dedupe.Store, path string, out io.Writer) error {
	if err := s.Check(); err != nil {
		return fmt.Errorf("state check %s: %w", path, err)
	}
	fmt.Fprintf(out, "%s: ok\n", path)
	return nil
}

// stateReset forgets stream's cursor and pending calls or, when to is set,
// moves its cursor to that RFC 3339 time. The flags are checked before the
// store is opened.
func stateReset(path string, lock time.Duration, stream, to string, out io.Writer) error {
	if stream == "" {
		return usagef("state reset: -stream is required (e.g. -stream 1/25/in)")
	}
	var at time.Time
	if to != "" {
		t, err := time.Parse(time.RFC3339, to)
		if err != nil {
			return usagef("state reset: -to %q is not an RFC 3339 time", to)
		}
		at = t
	}
	return withStore(path, lock, false, func(s *dedupe.Store) error {
		if at.IsZero() {
			if err := s.ResetStream(stream); err != nil {
				return err
			}
			fmt.Fprintf(out, "stream %s reset: it starts again at the API's horizon; seen calls stay seen\n", stream)
			return nil
		}
		if err := s.SetCursor(stream, at); err != nil {
			return err
		}
		fmt.Fprintf(out, "stream %s: cursor set to %s\n", stream, at.UTC().Format(time.RFC3339))
		return nil
	})
}

// statePrune drops the seen-day buckets before the day before names
// (YYYY-MM-DD in the store's zone), or by default before the day 3 days
// before today.
func statePrune(s *dedupe.Store, before string, out io.Writer) error {
	cut := time.Now().In(s.Location())
	cut = time.Date(cut.Year(), cut.Month(), cut.Day(), 0, 0, 0, 0, s.Location()).AddDate(0, 0, -3)
	if before != "" {
		t, err := time.ParseInLocation("2006-01-02", before, s.Location())
		if err != nil {
			return usagef("state prune: -before %q is not YYYY-MM-DD", before)
		}
		cut = t
	}
	n, err := s.Prune(cut)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "pruned %d day buckets before %s\n", n, cut.Format("2006-01-02"))
	return nil
}

// withStore opens the store for fn. Read-write opens take the ccId, shard and
// zone recorded in the file, so they never refuse a store for its identity.
func withStore(path string, lock time.Duration, readOnly bool, fn func(*dedupe.Store) error) (err error) {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no store at %s (set CALLPUB_STATE_DIR): %w", path, err)
	}
	ro, err := dedupe.Open(dedupe.Options{Path: path, LockTimeout: lock, ReadOnly: true})
	if err != nil {
		return stateOpenError(path, err)
	}
	if readOnly {
		defer func() { err = errors.Join(err, ro.Close()) }()
		return fn(ro)
	}
	meta, err := ro.Meta()
	loc := ro.Location()
	if err = errors.Join(err, ro.Close()); err != nil {
		return err
	}
	s, err := dedupe.Open(dedupe.Options{Path: path, LockTimeout: lock, CCID: meta.CCID, Shard: meta.Shard,
		Location: loc, Fingerprint: meta.Fingerprint})
	if err != nil {
		return stateOpenError(path, err)
	}
	defer func() { err = errors.Join(err, s.Close()) }()
	return fn(s)
}

func stateOpenError(path string, err error) error {
	if errors.Is(err, dedupe.ErrLocked) {
		return fmt.Errorf("%s is held by a running callpub (stop the service first): %w", path, err)
	}
	return err
}

// stateShow prints the store's summary, its streams and its gaps, as text or
// as JSON. A non-empty only keeps that stream's rows and gaps.
func stateShow(s *dedupe.Store, only string, asJSON bool, out io.Writer) error {
	r, err := readStoreReport(s)
	if err != nil {
		return err
	}
	if only != "" {
		r.keepStream(only)
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"meta": r.meta, "stats": r.stats, "streams": r.streams, "changelog_seq": r.seqs, "gaps": r.gaps})
	}
	fmt.Fprintf(out, "store     %s (format %d, ccId %d, shard %q, day zone %s, created %s)\n", s.Path(), r.meta.Version,
		r.meta.CCID, r.meta.Shard, r.meta.Location, r.meta.Created.UTC().Format(time.RFC3339))
	fmt.Fprintf(out, "contents  %d streams, %d seen calls in %d day buckets, %d pending, %d gaps, file %d bytes\n",
		r.stats.Streams, r.stats.SeenKeys, r.stats.DayBuckets, r.stats.Pending, r.stats.Gaps, r.stats.FileSize)
	if err := printStreams(out, r.streams, r.seqs, time.Now()); err != nil {
		return err
	}
	printGaps(out, r.gaps)
	return nil
}

// storeReport is what `state show` reports about a store.
type storeReport struct {
	meta    dedupe.Meta
	stats   dedupe.Stats
	streams []dedupe.StreamState
	// seqs: each stream's changelog sequence (CALLPUB_KAFKA_STATE_TOPIC):
	// the state record its state is at; 0, never logged.
	seqs map[string]uint64
	gaps []dedupe.Gap
}

// readStoreReport reads the store's meta, statistics, streams and gaps.
func readStoreReport(s *dedupe.Store) (storeReport, error) {
	var r storeReport
	var err error
	if r.meta, err = s.Meta(); err != nil {
		return storeReport{}, err
	}
	if r.stats, err = s.Stats(); err != nil {
		return storeReport{}, err
	}
	if r.streams, err = s.Streams(); err != nil {
		return storeReport{}, err
	}
	if r.gaps, err = s.Gaps(); err != nil {
		return storeReport{}, err
	}
	r.seqs = make(map[string]uint64, len(r.streams))
	for _, st := range r.streams {
		sn, err := s.Snapshot(st.Stream)
		if err != nil {
			return storeReport{}, err
		}
		r.seqs[st.Stream] = sn.Seq
	}
	return r, nil
}

// keepStream drops every stream and gap but those of stream. The statistics
// still cover the whole store.
func (r *storeReport) keepStream(stream string) {
	kept := r.streams[:0]
	for _, st := range r.streams {
		if st.Stream == stream {
			kept = append(kept, st)
		}
	}
	r.streams = kept
	keptGaps := r.gaps[:0]
	for _, g := range r.gaps {
		if g.Stream == stream {
			keptGaps = append(keptGaps, g)
		}
	}
	r.gaps = keptGaps
}

// printStreams prints one table row per stream: cursor, lag behind now,
// pending calls, last sweep, sealed day ("-" for unset) and the changelog
// record its state is at ("-": never logged; a replica that finds a later
// one on the state topic takes that instead).
func printStreams(out io.Writer, streams []dedupe.StreamState, seqs map[string]uint64, now time.Time) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tCURSOR\tLAG\tPENDING\tLAST SWEEP\tSEALED DAY\tCHANGELOG SEQ")
	for _, st := range streams {
		cur, lag := "-", "-"
		if !st.Cursor.IsZero() {
			cur = st.Cursor.UTC().Format(time.RFC3339)
			lag = now.Sub(st.Cursor).Round(time.Second).String()
		}
		sweep := "-"
		if !st.LastSweep.IsZero() {
			sweep = st.LastSweep.UTC().Format(time.RFC3339)
		}
		sealed := st.SealedDay
		if sealed == "" {
			sealed = "-"
		}
		seq := "-"
		if n := seqs[st.Stream]; n > 0 {
			seq = fmt.Sprint(n)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", st.Stream, cur, lag, len(st.Pending), sweep, sealed, seq)
	}
	return tw.Flush()
}

// printGaps prints one line per gap in the log.
func printGaps(out io.Writer, gaps []dedupe.Gap) {
	for _, g := range gaps {
		fmt.Fprintf(out, "gap       %s lost %s .. %s (%s), detected %s\n", g.Stream, g.Start.UTC().Format(time.RFC3339),
			g.End.UTC().Format(time.RFC3339), g.End.Sub(g.Start), g.DetectedAt.UTC().Format(time.RFC3339))
	}
}

// stateCompact rewrites the store into a fresh file and swaps it in, keeping
// the old one as callpub.db.bak.
func stateCompact(path string, lock time.Duration, out io.Writer) error {
	// Take the lock first so a running service is reported clearly.
	if err := withStore(path, lock, true, func(*dedupe.Store) error { return nil }); err != nil {
		return err
	}
	tmp := path + ".compact"
	_ = os.Remove(tmp)
	before, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := dedupe.Compact(path, tmp); err != nil {
		_ = os.Remove(tmp)
		return stateOpenError(path, err)
	}
	if err := os.Rename(path, path+".bak"); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	after, err := os.Stat(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "compacted %s: %d -> %d bytes (previous file kept as %s.bak)\n", path, before.Size(), after.Size(), path)
	return nil
}
