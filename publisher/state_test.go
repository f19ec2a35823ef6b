package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// stateConfig is a config whose state topic is state. Its call topic need
// not exist: nothing here publishes events.
func stateConfig(brokers []string, state string) Config {
	return Config{
		Brokers: brokers, Topic: "cc.calls.completed", StateTopic: state, Compression: "lz4",
		BatchTimeout: 2 * time.Millisecond, WriteTimeout: 10 * time.Second,
	}
}

func newStatePublisher(t testing.TB, cfg Config) *Publisher {
	t.Helper()
	p, err := New(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// compactedTopic creates a topic as the state topic should be created
// (cleanup.policy=compact), plus the given topic configs.
func compactedTopic(t testing.TB, brokers []string, partitions int, configs ...kafka.ConfigEntry) string {
	t.Helper()
	return kafkatest.Topic(t, brokers, partitions,
		append([]kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}}, configs...)...)
}

// stateStream is the i-th of the test's streams.
func stateStream(i int) string {
	dir := schemas.In
	if i%2 == 1 {
		dir = schemas.Out
	}
	return schemas.Stream{CCID: 1 + i%3, VDN: 1 + i/2, Dir: dir}.Key()
}

// stateValue is the record of stream at seq.
func stateValue(t testing.TB, stream string, seq uint64) []byte {
	t.Helper()
	at := time.Date(2026, 3, 29, 8, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Second)
	b, err := schemas.EncodeState(schemas.StateRecord{
		Stream: stream, Seq: seq, Cursor: at.Add(-time.Minute), LastSweep: at.Add(-time.Hour), SealedDay: "20260328",
		Pending: []schemas.StatePending{{CallID: fmt.Sprintf("%d-1", seq), FilterTime: at.Add(-2 * time.Minute), FirstSeen: at}},
		Owner:   "callpub-0", WrittenAt: at,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readRecord is one record ReadState handed over.
type readRecord struct {
	key       string
	value     []byte
	offset    int64
	partition int
}

// readState runs ReadState and returns what it handed to take, checking on
// the way that partitions come in ascending order and offsets in ascending
// order within each.
func readState(t testing.TB, cfg Config) []readRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var got []readRecord
	n, err := ReadState(ctx, cfg, func(key string, value []byte, offset int64, partition int) error {
		if l := len(got); l > 0 {
			last := got[l-1]
			if partition < last.partition || (partition == last.partition && offset <= last.offset) {
				return fmt.Errorf("%s[%d]@%d after [%d]@%d", key, partition, offset, last.partition, last.offset)
			}
		}
		got = append(got, readRecord{key, value, offset, partition})
		return nil
	})
	if err != nil {
		t.Fatalf("ReadState: %v", err)
	}
	if n != len(got) {
		t.Errorf("ReadState says %d records, take saw %d", n, len(got))
	}
	return got
}

// seqsByStream decodes what ReadState read into each stream's sequence
// numbers in the order read; a tombstone is 0.
func seqsByStream(t testing.TB, recs []readRecord, partitions int) map[string][]uint64 {
	t.Helper()
	out := map[string][]uint64{}
	for _, r := range recs {
		if want := javaPartition(r.key, partitions); r.partition != want {
			t.Fatalf("%s on partition %d, Java's murmur2 says %d", r.key, r.partition, want)
		}
		if r.value == nil {
			out[r.key] = append(out[r.key], 0)
			continue
		}
		rec, err := schemas.DecodeState(r.value)
		if err != nil {
			t.Fatalf("%s[%d]@%d: %v", r.key, r.partition, r.offset, err)
		}
		if rec.Stream != r.key {
			t.Fatalf("record of %s under key %s", rec.Stream, r.key)
		}
		out[r.key] = append(out[r.key], rec.Seq)
	}
	return out
}

// 40 streams, 5 records each, written by 4 goroutines (each owning ten
// streams, as the poller gives a stream to one worker at a time), one stream
// forgotten by a tombstone: ReadState returns every record, each stream's on
// the partition Java would choose, in the order written, the latest last.
func TestPublishStateThenReadStateGivesEveryStreamsRecordsInOrder(t *testing.T) {
	const streams, perStream, partitions, workers = 40, 5, 3, 4
	brokers := kafkatest.Brokers(t)
	cfg := stateConfig(brokers, compactedTopic(t, brokers, partitions))
	p := newStatePublisher(t, cfg)

	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for seq := uint64(1); seq <= perStream; seq++ {
				for i := w; i < streams; i += workers {
					if err := p.PublishState(t.Context(), stateStream(i), stateValue(t, stateStream(i), seq)); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	forgotten := stateStream(7)
	if err := p.PublishState(t.Context(), forgotten, nil); err != nil {
		t.Fatalf("tombstone: %v", err)
	}

	got := seqsByStream(t, readState(t, cfg), partitions)
	if len(got) != streams {
		t.Errorf("read records of %d streams, want %d", len(got), streams)
	}
	for i := range streams {
		want := []uint64{1, 2, 3, 4, 5}
		if stateStream(i) == forgotten {
			want = append(want, 0)
		}
		if s := got[stateStream(i)]; fmt.Sprint(s) != fmt.Sprint(want) {
			t.Errorf("%s: read seqs %v, want %v", stateStream(i), s, want)
		}
	}
}

// A writer keeps writing while ReadState reads: ReadState returns, having
// read everything acknowledged before it began and nothing written after it
// returned.
func TestReadStateStopsAtTheEndItSawWhileAnotherGoroutineWrites(t *testing.T) {
	const prefill, partitions = 20_000, 3
	brokers := kafkatest.Brokers(t)
	cfg := stateConfig(brokers, compactedTopic(t, brokers, partitions))
	fillState(t, cfg, prefill, 1000)
	p := newStatePublisher(t, cfg)

	live := "9/9/in"
	var acked atomic.Uint64
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		for seq := uint64(1); ; seq++ {
			if err := p.PublishState(ctx, live, stateValue(t, live, seq)); err != nil {
				if ctx.Err() != nil {
					err = nil
				}
				done <- err
				return
			}
			acked.Store(seq)
		}
	}()
	for acked.Load() < 20 { // the writer is under way
		time.Sleep(5 * time.Millisecond)
	}

	before := acked.Load()
	recs := readState(t, cfg)
	after := acked.Load() + 1 // one more may have been in flight
	stop()
	if err := <-done; err != nil {
		t.Fatalf("the writer failed: %v", err)
	}

	seqs := seqsByStream(t, recs, partitions)[live]
	n := uint64(len(seqs))
	if n < before || n > after {
		t.Errorf("ReadState read %d records of the live stream: acknowledged were %d when it began, %d when it returned",
			n, before, after)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("live stream: record %d has seq %d", i, s)
		}
	}
	if got := len(recs) - len(seqs); got != prefill {
		t.Errorf("read %d prefilled records, want %d", got, prefill)
	}
	t.Logf("read %d records (%d of the live stream, %d acknowledged when the read began, %d when it ended)",
		len(recs), n, before, after)
}

// fillState writes n records, seq 1.. of 1000 streams in turn, through a
// writer of its own in batches (PublishState writes one record at a time),
// keyed and partitioned as PublishState does.
func fillState(t testing.TB, cfg Config, n, batch int) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(cfg.Brokers...), Topic: cfg.StateTopic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchSize: batch, BatchTimeout: 5 * time.Millisecond, Compression: kafka.Lz4}
	defer w.Close()
	msgs := make([]kafka.Message, 0, batch)
	for i := range n {
		stream := stateStream(i % 1000)
		msgs = append(msgs, kafka.Message{Key: []byte(stream), Value: stateValue(t, stream, uint64(i/1000+1))})
		if len(msgs) == batch || i == n-1 {
			if err := w.WriteMessages(t.Context(), msgs...); err != nil {
				t.Fatalf("fill %s: %v", cfg.StateTopic, err)
			}
			msgs = msgs[:0]
		}
	}
}

// What a rebuild reads: 100,000 records (1000 streams, 100 records each,
// about 340 bytes a record) over 6 partitions, every one read, each
// stream's in order.
func TestReadStateReads100000RecordsEachStreamsInOrder(t *testing.T) {
	const records, partitions = 100_000, 6
	brokers := kafkatest.Brokers(t)
	cfg := stateConfig(brokers, compactedTopic(t, brokers, partitions))
	fillState(t, cfg, records, 2000)

	var last map[string]int64
	start := time.Now()
	n, err := ReadState(t.Context(), cfg, func(key string, value []byte, offset int64, partition int) error {
		if last == nil {
			last = map[string]int64{}
		}
		if prev, ok := last[key]; ok && offset <= prev {
			return fmt.Errorf("%s at %d after %d", key, offset, prev)
		}
		last[key] = offset
		if len(value) == 0 {
			return fmt.Errorf("%s at %d: empty value", key, offset)
		}
		return nil
	})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if n != records || len(last) != 1000 {
		t.Errorf("read %d records of %d streams, want %d of 1000", n, len(last), records)
	}
	// Printed, not asserted: speed is for benchmarks (the rebuild's is
	// BenchmarkRebuildSlot100k in cmd/callpub).
	t.Logf("ReadState read %d records in %v (%.0f records/s)", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
}

// Compaction leaves holes in the offsets: ReadState skips them, hands over
// what is left (each stream's latest record at least), and ends.
func TestReadStateSkipsOffsetsCompactionRemoved(t *testing.T) {
	brokers := kafkatest.RequireReal(t) // kfake does not compact
	t.Parallel()
	cfg := stateConfig(brokers, compactedTopic(t, brokers, 1,
		kafka.ConfigEntry{ConfigName: "segment.ms", ConfigValue: "100"},
		kafka.ConfigEntry{ConfigName: "min.cleanable.dirty.ratio", ConfigValue: "0.01"},
		kafka.ConfigEntry{ConfigName: "delete.retention.ms", ConfigValue: "86400000"}))
	p := newStatePublisher(t, cfg)
	const streams, perStream = 5, 20
	for seq := uint64(1); seq <= perStream; seq++ {
		for i := range streams {
			if err := p.PublishState(t.Context(), stateStream(i), stateValue(t, stateStream(i), seq)); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(200 * time.Millisecond) // past segment.ms: the next record rolls the segment
	if err := p.PublishState(t.Context(), "9/9/out", stateValue(t, "9/9/out", 1)); err != nil {
		t.Fatal(err)
	}

	// The log cleaner runs every 15 s (log.cleaner.backoff.ms) at most.
	deadline := time.Now().Add(60 * time.Second)
	for {
		recs := readState(t, cfg)
		if len(recs) < streams*perStream+1 {
			seqs := seqsByStream(t, recs, 1)
			for i := range streams {
				s := seqs[stateStream(i)]
				if len(s) == 0 || s[len(s)-1] != perStream {
					t.Errorf("%s: read seqs %v after compaction, want the last to be %d", stateStream(i), s, perStream)
				}
			}
			if fmt.Sprint(seqs["9/9/out"]) != "[1]" {
				t.Errorf("9/9/out: read seqs %v, want [1]", seqs["9/9/out"])
			}
			t.Logf("compaction left %d of %d records; ReadState read them all", len(recs), streams*perStream+1)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the topic was not compacted within 60s (%d records)", len(recs))
		}
		time.Sleep(time.Second)
	}
}

func TestReadStateOfAnEmptyTopicReadsNothing(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := stateConfig(brokers, compactedTopic(t, brokers, 2))
	if recs := readState(t, cfg); len(recs) != 0 {
		t.Errorf("read %d records", len(recs))
	}
}

func TestReadStateEndsAtTakesErrorAndReturnsIt(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := stateConfig(brokers, compactedTopic(t, brokers, 1))
	p := newStatePublisher(t, cfg)
	for seq := uint64(1); seq <= 3; seq++ {
		if err := p.PublishState(t.Context(), "1/25/in", stateValue(t, "1/25/in", seq)); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("enough")
	calls := 0
	n, err := ReadState(t.Context(), cfg, func(string, []byte, int64, int) error {
		if calls++; calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 || calls != 2 {
		t.Errorf("ReadState = %d, %v after %d calls; want 2 and an error wrapping take's", n, err, calls)
	}
	if want := fmt.Sprintf("state record %s[0] at 1: enough", cfg.StateTopic); err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

// A read that ctx ends mid-way fails with ctx's error: what was handed
// over is not the whole topic.
func TestReadStateEndsWithItsContext(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := stateConfig(brokers, compactedTopic(t, brokers, 2))
	fillState(t, cfg, 5000, 1000)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	n, err := ReadState(ctx, cfg, func(string, []byte, int64, int) error {
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || n == 0 || n == 5000 {
		t.Errorf("ReadState = %d, %v; want some records and an error wrapping context.Canceled", n, err)
	}
}

func TestStateOnAMissingTopicSaysItIsMissing(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := stateConfig(brokers, kafkatest.Name(t)) // never created
	_, err := ReadState(t.Context(), cfg, func(string, []byte, int64, int) error { return nil })
	var te *TopicError
	if !errors.As(err, &te) || !te.Missing || te.Topic != cfg.StateTopic {
		t.Errorf("ReadState = %v, want a *TopicError saying the topic is missing", err)
	}
	p := newStatePublisher(t, cfg)
	err = p.PublishState(t.Context(), "1/25/in", stateValue(t, "1/25/in", 1))
	if !errors.As(err, &te) || !te.Missing || !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Errorf("PublishState = %v, want a *TopicError saying the topic is missing", err)
	}
	if _, err := p.CheckTopic(t.Context()); err == nil || !strings.Contains(err.Error(), cfg.StateTopic) {
		t.Errorf("CheckTopic = %v, want it to name the missing state topic", err)
	}
}

// Without a state topic nothing is sent or read: the brokers of
// validConfig do not exist.
func TestStateWithoutAStateTopicIsErrNoStateTopic(t *testing.T) {
	p, err := New(validConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.PublishState(t.Context(), "1/25/in", []byte(`{}`)); !errors.Is(err, ErrNoStateTopic) {
		t.Errorf("PublishState = %v, want ErrNoStateTopic", err)
	}
	n, err := ReadState(t.Context(), validConfig(), func(string, []byte, int64, int) error {
		t.Error("take called")
		return nil
	})
	if !errors.Is(err, ErrNoStateTopic) || n != 0 {
		t.Errorf("ReadState = %d, %v, want ErrNoStateTopic", n, err)
	}
	if want := "no state topic (CALLPUB_KAFKA_STATE_TOPIC is not set)"; ErrNoStateTopic.Error() != want {
		t.Errorf("ErrNoStateTopic = %q", ErrNoStateTopic)
	}
}

// Refusals that need no broker: the brokers of validConfig do not exist.
func TestPublishStateRefusesBeforeSending(t *testing.T) {
	cfg := validConfig()
	cfg.StateTopic, cfg.MaxMessageBytes = "cc.calls.state", 4096
	p, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", "25", "1/025/in", "1/25/IN"} {
		if err := p.PublishState(t.Context(), key, []byte(`{}`)); err == nil || !strings.HasPrefix(err.Error(), "publish state: key: stream ") {
			t.Errorf("key %q: PublishState = %v", key, err)
		}
	}
	err = p.PublishState(t.Context(), "1/25/in", make([]byte, 4096))
	if want := "publish state of 1/25/in: a record of 4359 bytes with its framing, the topic takes 4096: " + ErrTooLarge.Error(); !errors.Is(err, ErrTooLarge) || err.Error() != want {
		t.Errorf("PublishState of a large value = %v\nwant %s", err, want)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.PublishState(t.Context(), "1/25/in", []byte(`{}`)); !errors.Is(err, ErrClosed) {
		t.Errorf("PublishState after Close = %v, want ErrClosed", err)
	}
}

// The changelog over SASL_SSL (SCRAM-SHA-512, a private CA): ReadState uses
// the config's TLS and SASL as the writer does.
func TestStateOverSASLAndTLS(t *testing.T) {
	b := startSecureBroker(t)
	cfg := stateConfig([]string{b.saslSSL}, compactedTopic(t, []string{b.plain}, 2))
	cfg.TLS, cfg.CAFile = true, b.caFile
	cfg.SASLMechanism, cfg.Username, cfg.Password = "SCRAM-SHA-512", saslUser, Secret(saslPassword)
	p := newStatePublisher(t, cfg)
	for i := range 4 {
		if err := p.PublishState(t.Context(), stateStream(i), stateValue(t, stateStream(i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	if recs := readState(t, cfg); len(recs) != 4 {
		t.Errorf("read %d records over SASL_SSL, want 4", len(recs))
	}
	wrong := cfg
	wrong.Password = "not-the-password-42"
	_, err := ReadState(t.Context(), wrong, func(string, []byte, int64, int) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "SASL Authentication failed") || strings.Contains(err.Error(), "not-the-password-42") {
		t.Errorf("ReadState with a wrong password = %v", err)
	}
}
