package publisher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// waitFor is how long a test waits for what should take about a second.
const waitFor = 30 * time.Second

// signalValue is a signal of kind with id, as schemas.EncodeSignal writes it.
func signalValue(t testing.TB, kind, id string) []byte {
	t.Helper()
	from := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	s := schemas.ReplaySignal{Kind: kind, ID: id, Stream: "1/25/in", From: from, To: from.Add(time.Hour), By: "test"}
	if kind == schemas.SignalReplayDone {
		s.Published = 7
	}
	b, err := schemas.EncodeSignal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tailed is one record TailSignals handed to take.
type tailed struct {
	key   string
	value []byte
}

// startTail runs tailSignals until the test ends or stop is called, and
// returns once the tail has the partitions' ends: whatever is acknowledged
// after that must reach take. stop ends the tail and returns its error.
func startTail(t *testing.T, cfg Config, take func(key string, value []byte) error) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	started, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- tailSignals(ctx, cfg, func() { close(started) }, take) }()
	var result error
	ended := false
	stop = func() error {
		cancel()
		if !ended {
			select {
			case result = <-done:
				ended = true
			case <-time.After(waitFor):
				t.Fatalf("TailSignals did not return within %v of its context's end", waitFor)
			}
		}
		return result
	}
	t.Cleanup(func() { _ = stop() })
	select {
	case <-started:
	case err := <-done:
		result, ended = err, true
		t.Fatalf("TailSignals ended before it started: %v", err)
	case <-time.After(waitFor):
		t.Fatalf("TailSignals did not start within %v", waitFor)
	}
	return stop
}

// receive takes n records from got, failing the test after waitFor.
func receive(t *testing.T, got <-chan tailed, n int) []tailed {
	t.Helper()
	var out []tailed
	deadline := time.After(waitFor)
	for len(out) < n {
		select {
		case r := <-got:
			out = append(out, r)
		case <-deadline:
			t.Fatalf("take got %d of %d records within %v: %v", len(out), n, waitFor, keysOf(out))
		}
	}
	return out
}

func keysOf(recs []tailed) []string {
	keys := make([]string, len(recs))
	for i, r := range recs {
		keys[i] = r.key
	}
	return keys
}

// On one partition, records come in offset order: by the time the last
// signal arrives, everything written before it was offered to take, so
// what take did not get was skipped.
func TestTailSignalsHandsOverOnlySignalsWrittenAfterItStarted(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := stateConfig(brokers, compactedTopic(t, brokers, 1))
	p := newStatePublisher(t, cfg)
	before := schemas.SignalKey(schemas.SignalReplay, "before")
	if err := p.PublishSignal(t.Context(), before, signalValue(t, schemas.SignalReplay, "before")); err != nil {
		t.Fatal(err)
	}
	if err := p.PublishState(t.Context(), "1/25/in", stateValue(t, "1/25/in", 1)); err != nil {
		t.Fatal(err)
	}

	got := make(chan tailed, 10)
	stop := startTail(t, cfg, func(key string, value []byte) error {
		got <- tailed{key, value}
		return nil
	})
	want := []tailed{
		{schemas.SignalKey(schemas.SignalReplay, "after"), signalValue(t, schemas.SignalReplay, "after")},
		{schemas.SignalKey(schemas.SignalReplayDone, "after"), signalValue(t, schemas.SignalReplayDone, "after")},
	}
	if err := p.PublishState(t.Context(), "1/25/in", stateValue(t, "1/25/in", 2)); err != nil {
		t.Fatal(err)
	}
	if err := p.PublishSignal(t.Context(), before, nil); err != nil { // a tombstone
		t.Fatal(err)
	}
	for _, r := range want {
		if err := p.PublishSignal(t.Context(), r.key, r.value); err != nil {
			t.Fatal(err)
		}
	}

	recs := receive(t, got, len(want))
	if err := stop(); err != nil {
		t.Errorf("TailSignals = %v after its context ended, want nil", err)
	}
	recs = append(recs, drain(got)...)
	if !slices.EqualFunc(recs, want, func(a, b tailed) bool { return a.key == b.key && string(a.value) == string(b.value) }) {
		t.Errorf("take got %v, want %v", keysOf(recs), keysOf(want))
	}
}

func drain(got <-chan tailed) []tailed {
	var out []tailed
	for {
		select {
		case r := <-got:
			out = append(out, r)
		default:
			return out
		}
	}
}

// Signals spread over three partitions all arrive, each partition's in the
// order written, and take is never called concurrently: it appends to a
// slice without a lock, which the race detector would report.
func TestTailSignalsHandsOverEveryPartitionsSignalsInOrderOneAtATime(t *testing.T) {
	const partitions, signals = 3, 30
	brokers := kafkatest.Brokers(t)
	cfg := stateConfig(brokers, compactedTopic(t, brokers, partitions))
	p := newStatePublisher(t, cfg)
	var seen []string
	arrived := make(chan tailed, signals)
	stop := startTail(t, cfg, func(key string, value []byte) error {
		seen = append(seen, key)
		arrived <- tailed{key, value}
		return nil
	})
	written := make([][]string, partitions)
	for i := range signals {
		key := schemas.SignalKey(schemas.SignalReplay, fmt.Sprintf("s%02d", i))
		if err := p.PublishSignal(t.Context(), key, signalValue(t, schemas.SignalReplay, key[len("replay/"):])); err != nil {
			t.Fatal(err)
		}
		part := javaPartition(key, partitions)
		written[part] = append(written[part], key)
	}
	receive(t, arrived, signals)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for part, keys := range written {
		if len(keys) == 0 {
			t.Fatalf("no signal on partition %d: the test needs other ids", part)
		}
		var order []string
		for _, k := range seen {
			if javaPartition(k, partitions) == part {
				order = append(order, k)
			}
		}
		if !slices.Equal(order, keys) {
			t.Errorf("partition %d: take got %v, written were %v", part, order, keys)
		}
	}
}

func TestTailSignalsEndsAtTakesErrorAndReturnsItWrapped(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := stateConfig(brokers, compactedTopic(t, brokers, 1))
	p := newStatePublisher(t, cfg)
	enough := errors.New("enough")
	calls := 0
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	started, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- tailSignals(ctx, cfg, func() { close(started) }, func(string, []byte) error {
			calls++
			return enough
		})
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("TailSignals ended before it started: %v", err)
	}
	for _, id := range []string{"a", "b"} {
		if err := p.PublishSignal(t.Context(), schemas.SignalKey(schemas.SignalReplay, id), signalValue(t, schemas.SignalReplay, id)); err != nil {
			t.Fatal(err)
		}
	}
	err := <-done // the tail's ctx ends after waitFor at the latest: then err is nil
	if !errors.Is(err, enough) || calls != 1 {
		t.Fatalf("TailSignals = %v after %d calls of take, want take's error after 1", err, calls)
	}
	if want := fmt.Sprintf("tail signals: state record %s[0] at 0: enough", cfg.StateTopic); err.Error() != want {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
}

func TestTailSignalsReturnsNilWhenItsContextEnds(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := stateConfig(brokers, compactedTopic(t, brokers, 3))
	stop := startTail(t, cfg, func(key string, _ []byte) error {
		t.Errorf("take got %s from an empty topic", key)
		return nil
	})
	start := time.Now()
	if err := stop(); err != nil {
		t.Errorf("TailSignals = %v, want nil", err)
	}
	// Printed, not asserted: a held fetch (signalFetchWait) bounds it.
	t.Logf("TailSignals returned %v after its context ended", time.Since(start).Round(time.Millisecond))
}

// An ended context is a normal stop, also before the tail has started: the
// brokers of validConfig do not exist.
func TestTailSignalsWithAnEndedContextReturnsNil(t *testing.T) {
	cfg := validConfig()
	cfg.StateTopic = "cc.calls.state"
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := TailSignals(ctx, cfg, func(string, []byte) error { return nil }); err != nil {
		t.Errorf("TailSignals = %v, want nil", err)
	}
}

// Brokers that refuse connections are retried for WriteTimeout at the
// start, then reported.
func TestTailSignalsReportsBrokersItCannotReach(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	cfg := stateConfig([]string{addr}, "cc.calls.state")
	cfg.WriteTimeout = 500 * time.Millisecond
	start := time.Now()
	err = TailSignals(t.Context(), cfg, func(string, []byte) error { return nil })
	if want := "tail signals: kafka metadata from brokers " + addr + ": "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("TailSignals = %v, want an error starting %q", err, want)
	}
	if took := time.Since(start); took < cfg.WriteTimeout/2 || took > waitFor {
		t.Errorf("TailSignals gave up after %v, want about %v", took, cfg.WriteTimeout)
	}
}

func TestTailSignalsOnAMissingTopicSaysItIsMissing(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := stateConfig(brokers, kafkatest.Name(t)) // never created
	err := TailSignals(t.Context(), cfg, func(string, []byte) error { return nil })
	var te *TopicError
	if !errors.As(err, &te) || !te.Missing || te.Topic != cfg.StateTopic || !strings.HasPrefix(err.Error(), "tail signals: ") {
		t.Errorf("TailSignals = %v, want a *TopicError saying the topic is missing", err)
	}
}

// WriteSignal needs no Publisher of the caller's: one record, read back.
func TestWriteSignalWritesOneRecordUnderItsKey(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := stateConfig(brokers, compactedTopic(t, brokers, 2))
	key, value := schemas.SignalKey(schemas.SignalReplay, "w1"), signalValue(t, schemas.SignalReplay, "w1")
	if err := WriteSignal(t.Context(), cfg, key, value); err != nil {
		t.Fatal(err)
	}
	recs := readState(t, cfg)
	if len(recs) != 1 || recs[0].key != key || string(recs[0].value) != string(value) ||
		recs[0].partition != javaPartition(key, 2) {
		t.Errorf("read %+v, want one record %s on partition %d", recs, key, javaPartition(key, 2))
	}
}

// Refusals that need no broker: the brokers of validConfig do not exist.
func TestPublishSignalRefusesAStreamKeyAndSendsNothing(t *testing.T) {
	cfg := validConfig()
	cfg.StateTopic, cfg.MaxMessageBytes = "cc.calls.state", 4096
	p, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	value := signalValue(t, schemas.SignalReplay, "x")
	for _, key := range []string{"1/25/in", "25", "", "replay/", "replay/a b", "snapshot/x", "replay-done"} {
		err := p.PublishSignal(t.Context(), key, value)
		if want := fmt.Sprintf("publish signal: key %q is not a signal key (replay/<id> or replay-done/<id>)", key); err == nil || err.Error() != want {
			t.Errorf("key %q: PublishSignal = %v", key, err)
		}
		if err := WriteSignal(t.Context(), cfg, key, value); err == nil || !strings.Contains(err.Error(), "is not a signal key") {
			t.Errorf("key %q: WriteSignal = %v", key, err)
		}
	}
	err = p.PublishSignal(t.Context(), "replay/x", make([]byte, 4096))
	if want := "publish signal replay/x: a record of 4360 bytes with its framing, the topic takes 4096: " + ErrTooLarge.Error(); !errors.Is(err, ErrTooLarge) || err.Error() != want {
		t.Errorf("PublishSignal of a large value = %v\nwant %s", err, want)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.PublishSignal(t.Context(), "replay/x", value); !errors.Is(err, ErrClosed) {
		t.Errorf("PublishSignal after Close = %v, want ErrClosed", err)
	}
}

func TestSignalsWithoutAStateTopicAreErrNoStateTopic(t *testing.T) {
	p, err := New(validConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	value := signalValue(t, schemas.SignalReplay, "x")
	if err := p.PublishSignal(t.Context(), "replay/x", value); !errors.Is(err, ErrNoStateTopic) {
		t.Errorf("PublishSignal = %v, want ErrNoStateTopic", err)
	}
	if err := WriteSignal(t.Context(), validConfig(), "replay/x", value); !errors.Is(err, ErrNoStateTopic) {
		t.Errorf("WriteSignal = %v, want ErrNoStateTopic", err)
	}
	err = TailSignals(t.Context(), validConfig(), func(string, []byte) error {
		t.Error("take called")
		return nil
	})
	if !errors.Is(err, ErrNoStateTopic) {
		t.Errorf("TailSignals = %v, want ErrNoStateTopic", err)
	}
}

func TestTransientTellsFetchErrorsWorthRetryingFromFinalOnes(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"a leader that moved", fmt.Errorf("fetch: %w", kafka.NotLeaderForPartition), true},
		{"a leader being elected", kafka.LeaderNotAvailable, true},
		{"a request that timed out in the broker", kafka.RequestTimedOut, true},
		{"a refused connection", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{"the client's own timeout", fmt.Errorf("fetch: %w", context.DeadlineExceeded), true},
		{"a connection closed mid-answer", io.ErrUnexpectedEOF, true},
		{"a denied topic", kafka.TopicAuthorizationFailed, false},
		{"a failed SASL login", kafka.SASLAuthenticationFailed, false},
		{"an offset the partition no longer has", kafka.OffsetOutOfRange, false},
		{"a corrupt answer", errors.New("kafka: invalid record batch"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := transient(tt.err); got != tt.want {
				t.Errorf("transient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// The tail over SASL_SSL (SCRAM-SHA-512, a private CA) uses the config's
// TLS and SASL, as the writer does.
func TestTailSignalsOverSASLAndTLS(t *testing.T) {
	b := startSecureBroker(t)
	cfg := stateConfig([]string{b.saslSSL}, compactedTopic(t, []string{b.plain}, 2))
	cfg.TLS, cfg.CAFile = true, b.caFile
	cfg.SASLMechanism, cfg.Username, cfg.Password = "SCRAM-SHA-512", saslUser, Secret(saslPassword)
	got := make(chan tailed, 1)
	startTail(t, cfg, func(key string, value []byte) error {
		got <- tailed{key, value}
		return nil
	})
	key := schemas.SignalKey(schemas.SignalReplay, "secure")
	if err := WriteSignal(t.Context(), cfg, key, signalValue(t, schemas.SignalReplay, "secure")); err != nil {
		t.Fatal(err)
	}
	if r := receive(t, got, 1); r[0].key != key {
		t.Errorf("take got %s, want %s", r[0].key, key)
	}
	wrong := cfg
	wrong.Password = "not-the-password-42"
	err := TailSignals(t.Context(), wrong, func(string, []byte) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "SASL Authentication failed") || strings.Contains(err.Error(), "not-the-password-42") {
		t.Errorf("TailSignals with a wrong password = %v", err)
	}
}
