package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/publisher"
	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// BenchmarkRebuildSlot100k times the rebuild of one slot — a VDN's two
// streams on one partition of the event topic — holding 100,000 published
// calls, into an empty store: the state topic read, the records restored,
// the event topic read from the horizon and 100,000 seen marks written.
// Run it against a real broker:
//
//	scripts/kafka/with-broker.sh go test ./cmd/callpub -run '^$' -bench RebuildSlot -benchtime 3x
func BenchmarkRebuildSlot100k(b *testing.B) {
	const calls = 100_000
	brokers := kafkatest.Brokers(b)
	kc := publisher.Config{Brokers: brokers, Topic: kafkatest.Topic(b, brokers, 1), StateTopic: kafkatest.Topic(b, brokers, 1),
		Compression: "lz4", BatchTimeout: 2 * time.Millisecond, WriteTimeout: 10 * time.Second}
	pub, err := publisher.New(kc, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	enc, err := schemas.NewEncoder(schemas.EncoderOptions{PII: schemas.PIIPlain})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	start := now.Add(-20 * time.Hour)
	page := make([]schemas.Event, 0, 1000)
	for i := range calls {
		end := start.Add(time.Duration(i) * 700 * time.Millisecond)
		ev, err := enc.CallCompleted(schemas.Call{CCID: 1, VDN: 25, Inbound: i%2 == 0, CallID: fmt.Sprintf("c-%06d", i),
			CallerNo: "+8613800001234", CalleeNo: "4008001000", MediaType: 5, LeaveReason: 16,
			WaitBegin: end.Add(-time.Minute), AckBegin: end.Add(-50 * time.Second), CallBegin: end.Add(-50 * time.Second),
			CallEnd: end, LogDate: end.Add(time.Second)}, false)
		if err != nil {
			b.Fatal(err)
		}
		if page = append(page, ev); len(page) == cap(page) || i == calls-1 {
			if err := pub.Publish(b.Context(), page...); err != nil {
				b.Fatal(err)
			}
			page = page[:0]
		}
	}
	owned := map[string]bool{"1/25/in": true, "1/25/out": true}
	for stream := range owned {
		sn := dedupe.Snapshot{Seq: 7, State: dedupe.StreamState{Stream: stream, Cursor: now.Add(-time.Minute)}}
		v, err := schemas.EncodeState(recordOf(sn, "bench", now))
		if err != nil {
			b.Fatal(err)
		}
		if err := pub.PublishState(b.Context(), stream, v); err != nil {
			b.Fatal(err)
		}
	}
	horizon := now.Add(-24 * time.Hour)
	var rep rebuildReport
	for b.Loop() {
		b.StopTimer()
		store, err := dedupe.Open(dedupe.Options{Path: filepath.Join(b.TempDir(), storeFile), LockTimeout: time.Second, CCID: 1})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		rep, err = rebuild(b.Context(), kc, store, owned, horizon, partitionSet{0: true}, slog.New(slog.DiscardHandler))
		b.StopTimer()
		if err != nil || rep.marked != calls || len(rep.restored) != 2 {
			b.Fatalf("rebuild: %v; %d marks, %d streams restored; want %d and 2", err, rep.marked, len(rep.restored), calls)
		}
		if err := store.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/100k-calls")
	b.Logf("last rebuild: %d event records read, %d seen marks, %v", rep.events, rep.marked, rep.took.Round(time.Millisecond))
}
