package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/callpub/callpub/poller"
	"github.com/callpub/callpub/publisher"
	"github.com/callpub/callpub/schemas"
)

const replayUsage = `Usage: callpub replay -stream 1/25/in | -vdn 25  -from T1 -to T2  [-wait 2m]

Asks the replica that runs the stream (or both streams of the VDN), whoever it
is, to read [T1, T2) of its filter times again and publish every completed call
in it again, with the ids they were first published with, while it goes on
polling. The request is a record on CALLPUB_KAFKA_STATE_TOPIC; the owner
answers there, in /status (replays) and in its log. -wait prints the answers.
Times are RFC 3339. Needs CALLPUB_KAFKA_BROKERS and CALLPUB_KAFKA_STATE_TOPIC
(and CALLPUB_CC_ID with -vdn).

`

// replayFlags are replay's command-line settings.
type replayFlags struct {
	streams  []string
	from, to time.Time
	wait     time.Duration
}

func parseReplayFlags(args []string, ccID int, out io.Writer) (*replayFlags, error) {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { fmt.Fprint(out, replayUsage); fs.PrintDefaults() }
	stream := fs.String("stream", "", "the stream, ccId/VDN/in|out")
	vdn := fs.Int("vdn", 0, "both streams of this VDN (of CALLPUB_CC_ID)")
	from := fs.String("from", "", "start of the span, RFC 3339 (inclusive)")
	to := fs.String("to", "", "end of the span, RFC 3339 (exclusive)")
	wait := fs.Duration("wait", 0, "wait this long for the owners' answers and print them (0: do not wait)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil
		}
		return nil, usagef("replay: %v", err)
	}
	f := &replayFlags{wait: *wait}
	switch {
	case (*stream == "") == (*vdn == 0):
		return nil, usagef("replay: give -stream or -vdn, one of them")
	case *stream != "":
		if _, err := schemas.ParseStream(*stream); err != nil {
			return nil, usagef("replay: -stream: %v", err)
		}
		f.streams = []string{*stream}
	case ccID == 0:
		return nil, usagef("replay: -vdn needs CALLPUB_CC_ID")
	default:
		for _, d := range []schemas.Direction{schemas.In, schemas.Out} {
			f.streams = append(f.streams, schemas.Stream{CCID: ccID, VDN: *vdn, Dir: d}.Key())
		}
	}
	var err1, err2 error
	f.from, err1 = time.Parse(time.RFC3339, *from)
	f.to, err2 = time.Parse(time.RFC3339, *to)
	if err := errors.Join(err1, err2); err != nil {
		return nil, usagef("replay: -from and -to must be RFC 3339 times: %v", err)
	}
	if !f.from.Before(f.to) {
		return nil, usagef("replay: -from %s is not before -to %s", *from, *to)
	}
	return f, nil
}

// replayCommand is `callpub replay`.
func replayCommand(ctx context.Context, args []string, env envconfig.Lookuper, out io.Writer) error {
	var cfg struct {
		CCID  int              `env:"CC_ID"`
		Kafka publisher.Config `env:", prefix=KAFKA_"`
	}
	if err := loadReadConfig(ctx, env, &cfg); err != nil {
		return err
	}
	f, err := parseReplayFlags(args, cfg.CCID, out)
	if f == nil || err != nil {
		return err
	}
	switch {
	case len(cfg.Kafka.Brokers) == 0:
		return configError(errors.New("CALLPUB_KAFKA_BROKERS: missing required value"))
	case cfg.Kafka.StateTopic == "":
		return configError(errors.New("CALLPUB_KAFKA_STATE_TOPIC: not set: replay requests travel on the state topic"))
	}
	answers := make(chan schemas.ReplaySignal, 16)
	tailCtx, stopTail := context.WithCancel(ctx)
	defer stopTail()
	tailed := make(chan error, 1)
	if f.wait > 0 {
		go func() { tailed <- tailAnswers(tailCtx, cfg.Kafka, answers) }()
	}
	ids := map[string]string{} // id → stream
	for _, stream := range f.streams {
		sig := schemas.ReplaySignal{Kind: schemas.SignalReplay, ID: schemas.NewReplayID(time.Now()), Stream: stream,
			From: f.from, To: f.to, By: hostname(), At: time.Now()}
		v, err := schemas.EncodeSignal(sig)
		if err != nil {
			return usagef("replay: %v", err)
		}
		if err := publisher.WriteSignal(ctx, cfg.Kafka, schemas.SignalKey(sig.Kind, sig.ID), v); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		ids[sig.ID] = stream
		fmt.Fprintf(out, "asked   %s  %s  [%s, %s)\n", sig.ID, stream, f.from.Format(time.RFC3339), f.to.Format(time.RFC3339))
	}
	if f.wait <= 0 {
		return nil
	}
	return awaitAnswers(ctx, cfg.Kafka, ids, answers, tailed, f.wait, out)
}

// tailAnswers sends the replay answers on the state topic to answers.
func tailAnswers(ctx context.Context, kc publisher.Config, answers chan<- schemas.ReplaySignal) error {
	return publisher.TailSignals(ctx, kc, func(key string, value []byte) error {
		sig, err := schemas.DecodeSignal(value)
		if err == nil && sig.Kind == schemas.SignalReplayDone {
			select {
			case answers <- sig:
			case <-ctx.Done():
			}
		}
		return nil
	})
}

// awaitAnswers prints the answer to each of ids, until all came or wait
// passed (an error then).
func awaitAnswers(ctx context.Context, kc publisher.Config, ids map[string]string, answers <-chan schemas.ReplaySignal,
	tailed <-chan error, wait time.Duration, out io.Writer) error {
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	var failed []string
	take := func(sig schemas.ReplaySignal) {
		if _, ok := ids[sig.ID]; !ok || sig.Kind != schemas.SignalReplayDone {
			return
		}
		delete(ids, sig.ID)
		if sig.Error != "" {
			failed = append(failed, sig.ID)
			fmt.Fprintf(out, "failed  %s  %s  by %s: %s\n", sig.ID, sig.Stream, sig.By, sig.Error)
			return
		}
		fmt.Fprintf(out, "done    %s  %s  by %s: %d calls published again\n", sig.ID, sig.Stream, sig.By, sig.Published)
	}
	for len(ids) > 0 {
		select {
		case sig := <-answers:
			take(sig)
			continue
		case err := <-tailed:
			return fmt.Errorf("replay: reading the answers: %w", err)
		case <-timeout.C:
		case <-ctx.Done():
			return nil
		}
		// An answer written before the tail was live is on the topic all the
		// same: read it once from the beginning.
		if err := answersOnTopic(ctx, kc, take); err != nil {
			return fmt.Errorf("replay: reading the answers: %w", err)
		}
		if len(ids) > 0 {
			var left []string
			for id, s := range ids {
				left = append(left, id+" ("+s+")")
			}
			sort.Strings(left)
			return fmt.Errorf("replay: no answer within %v to %v: is a replica running the stream? (its log and /status say)", wait, left)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("replay: %d failed: %v", len(failed), failed)
	}
	return nil
}

// answersOnTopic hands every replay answer on the state topic to take.
func answersOnTopic(ctx context.Context, kc publisher.Config, take func(schemas.ReplaySignal)) error {
	_, err := publisher.ReadState(ctx, kc, func(key string, value []byte, _ int64, _ int) error {
		if value == nil || !schemas.IsSignalKey(key) {
			return nil
		}
		if sig, err := schemas.DecodeSignal(value); err == nil {
			take(sig)
		}
		return nil
	})
	return err
}

// replays is the service's side: it tails the state topic for replay
// requests, hands each to the poller that runs its stream (static: the one
// poller; group mode: the current generation's, again after each rebalance),
// and answers each on the state topic once done. A replica that does not run
// a request's stream keeps it until some replica answers it. Requests
// written while no replica ran are not seen: the tail starts at the topic's
// end when the service starts.
type replays struct {
	kc     publisher.Config
	pub    *publisher.Publisher
	log    *slog.Logger
	mu     sync.Mutex
	target *poller.Poller                  // the poller requests go to; nil between generations
	open   map[string]schemas.ReplaySignal // requests not answered yet
	handed map[string]bool                 // open requests target has
}

func newReplays(kc publisher.Config, pub *publisher.Publisher, log *slog.Logger) *replays {
	return &replays{kc: kc, pub: pub, log: log, open: map[string]schemas.ReplaySignal{}, handed: map[string]bool{}}
}

// run tails the state topic until ctx ends.
func (r *replays) run(ctx context.Context) error {
	err := publisher.TailSignals(ctx, r.kc, func(key string, value []byte) error {
		sig, err := schemas.DecodeSignal(value)
		if err != nil {
			r.log.Warn("replay signal cannot be read; skipped", "key", key, "err", err)
			return nil
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		switch sig.Kind {
		case schemas.SignalReplayDone:
			delete(r.open, sig.ID)
			delete(r.handed, sig.ID)
		case schemas.SignalReplay:
			r.open[sig.ID] = sig
			r.offerLocked()
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("replay signals on %s: %w", r.kc.StateTopic, err)
	}
	return nil
}

// use makes p the poller requests go to (nil: none, between generations),
// and hands it the open requests of its streams.
func (r *replays) use(p *poller.Poller) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.target, r.handed = p, map[string]bool{}
	r.offerLocked()
}

// offerLocked hands the open requests to the target; callers hold r.mu.
func (r *replays) offerLocked() {
	if r.target == nil {
		return
	}
	for id, sig := range r.open {
		if r.handed[id] {
			continue
		}
		err := r.target.Replay(poller.ReplayRequest{ID: id, Stream: sig.Stream, From: sig.From, To: sig.To, Done: r.answer(sig)})
		switch {
		case errors.Is(err, poller.ErrNotOwned):
		case err != nil:
			go r.answer(sig)(0, err)
		default:
			r.handed[id] = true
		}
	}
}

// answer returns the Done of a request: its answer on the state topic.
func (r *replays) answer(sig schemas.ReplaySignal) func(int, error) {
	return func(n int, err error) {
		done := schemas.ReplaySignal{Kind: schemas.SignalReplayDone, ID: sig.ID, Stream: sig.Stream, From: sig.From, To: sig.To,
			Published: n, By: hostname(), At: time.Now()}
		if err != nil {
			done.Error = err.Error()
		}
		r.mu.Lock()
		delete(r.open, sig.ID)
		delete(r.handed, sig.ID)
		r.mu.Unlock()
		v, encErr := schemas.EncodeSignal(done)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if encErr == nil {
			encErr = r.pub.PublishSignal(ctx, done.Key(), v)
		}
		if encErr == nil { // the request is answered: compaction may forget it
			encErr = r.pub.PublishSignal(ctx, sig.Key(), nil)
		}
		if encErr != nil {
			r.log.Warn("replay answer not published (the replay itself is done)", "id", sig.ID, "err", encErr)
		}
	}
}
