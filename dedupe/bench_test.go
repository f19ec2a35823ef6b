package dedupe

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Benchmarks live inside the package so BenchmarkUnseen can bulk-load its
// file with NoSync during setup; the timed loops use the public API on a
// store opened normally (fsync on).

var benchDay = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)

func benchOpen(b *testing.B, path string) *Store {
	b.Helper()
	s, err := Open(Options{Path: path, LockTimeout: time.Second, CCID: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// benchBatch is a batch of n new calls of stream, numbered from seq.
func benchBatch(stream string, seq, n int) Batch {
	bt := Batch{Stream: stream, Seen: make([]Key, n)}
	for i := range n {
		end := benchDay.Add(time.Duration(seq+i) * time.Millisecond)
		bt.Seen[i] = Key{Stream: stream, CallID: strconv.Itoa(seq + i), CallEnd: end, Hash: uint64(seq + i)}
	}
	c := benchDay.Add(time.Duration(seq) * time.Millisecond)
	bt.Cursor = &c
	return bt
}

// BenchmarkCommit: one goroutine, 100-call batches, fsync on every commit.
func BenchmarkCommit(b *testing.B) {
	s := benchOpen(b, filepath.Join(b.TempDir(), "state.db"))
	const perBatch = 100
	seq := 0
	for b.Loop() {
		if err := s.Commit(benchBatch("1/25/in", seq, perBatch)); err != nil {
			b.Fatal(err)
		}
		seq += perBatch
	}
	b.ReportMetric(float64(seq)/b.Elapsed().Seconds(), "calls/s")
	b.ReportMetric(float64(seq/perBatch)/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkCommitParallel: several goroutines, one stream each, commit
// 100-call batches back to back. With grouping, DB.Batch puts the commits
// that overlap into one transaction, so one fsync covers several; the
// "solo" runs give every commit its own transaction for comparison. One op
// is one commit.
func BenchmarkCommitParallel(b *testing.B) {
	for _, workers := range []int{4, 16} {
		for _, grouped := range []bool{true, false} {
			mode := map[bool]string{true: "batch", false: "solo"}[grouped]
			b.Run(fmt.Sprintf("workers=%d/%s", workers, mode), func(b *testing.B) {
				s := benchOpen(b, filepath.Join(b.TempDir(), "state.db"))
				s.noGrouping = !grouped
				const perBatch = 100
				work := make(chan int)
				var wg sync.WaitGroup
				for w := range workers {
					wg.Go(func() {
						for seq := range work {
							if err := s.Commit(benchBatch(fmt.Sprintf("1/%d/in", w), seq, perBatch)); err != nil {
								b.Error(err)
							}
						}
					})
				}
				commits := 0
				for b.Loop() {
					work <- commits * perBatch
					commits++
				}
				close(work)
				wg.Wait()
				b.ReportMetric(float64(commits*perBatch)/b.Elapsed().Seconds(), "calls/s")
				b.ReportMetric(float64(commits)/b.Elapsed().Seconds(), "commits/s")
			})
		}
	}
}

// BenchmarkUnseen: pages of 100 lookups (90 seen, 10 new) against a store
// holding CALLPUB_BENCH_SEEN_KEYS seen keys (default 5,000,000) over two
// days of 2,000 streams.
func BenchmarkUnseen(b *testing.B) {
	total := 5_000_000
	if v := os.Getenv("CALLPUB_BENCH_SEEN_KEYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 4000 {
			b.Fatalf("CALLPUB_BENCH_SEEN_KEYS=%q: want a number >= 4000", v)
		}
		total = n
	}
	path := filepath.Join(b.TempDir(), "state.db")
	const days, streams = 2, 2000
	perStream := total / (days * streams)
	stream := func(i int) string { return fmt.Sprintf("1/%d/%s", 1000+i/2, [2]string{"in", "out"}[i%2]) }
	callID := func(i int) string { return fmt.Sprintf("%010d", i) }
	callEnd := func(day, i int) time.Time {
		return benchDay.AddDate(0, 0, day).Add(time.Duration(i) * (24 * time.Hour / time.Duration(perStream+1)))
	}

	start := time.Now()
	loadSeen(b, path, days, streams, perStream, stream, callID, callEnd)
	b.Logf("setup: %d seen keys in %v", days*streams*perStream, time.Since(start).Round(time.Millisecond))

	s := benchOpen(b, path)
	rng := rand.New(rand.NewPCG(1, 2))
	const pageSize, fresh = 100, 10
	pages := make([][]Key, 1000)
	for p := range pages {
		st, day := rng.IntN(streams), rng.IntN(days)
		page := make([]Key, pageSize)
		for i := range page {
			n := rng.IntN(perStream)
			page[i] = Key{Stream: stream(st), CallID: callID(n), CallEnd: callEnd(day, n), Hash: uint64(n)}
			if i < fresh {
				page[i].CallID = callID(perStream + n) // never stored
			}
		}
		pages[p] = page
	}
	lookups := 0
	for b.Loop() {
		got, err := s.Unseen(pages[lookups/pageSize%len(pages)])
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != fresh {
			b.Fatalf("Unseen returned %d keys, want %d", len(got), fresh)
		}
		lookups += pageSize
	}
	b.ReportMetric(float64(lookups)/b.Elapsed().Seconds(), "lookups/s")
}

// loadSeen bulk-loads the seen buckets: keys in byte order, large
// transactions, NoSync (setup only), then a normal close.
func loadSeen(b *testing.B, path string, days, streams, perStream int,
	stream func(int) string, callID func(int) string, callEnd func(day, i int) time.Time) {
	b.Helper()
	s, err := Open(Options{Path: path, LockTimeout: time.Second, CCID: 1})
	if err != nil {
		b.Fatal(err)
	}
	s.db.NoSync = true
	const perTx = 200_000
	for day := range days {
		bucket := dayBucket(dayName(callEnd(day, 0), time.UTC))
		st := 0
		for st < streams {
			err := s.db.Update(func(tx *bolt.Tx) error {
				bk, err := tx.CreateBucketIfNotExists(bucket)
				if err != nil {
					return err
				}
				bk.FillPercent = 0.9 // appends in key order
				for n := 0; st < streams && n < perTx; st++ {
					name := stream(st)
					for i := range perStream {
						if err := bk.Put(seenKey(name, callID(i)), seenValue(callEnd(day, i), uint64(i))); err != nil {
							return err
						}
						n++
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	s.db.NoSync = false
	if err := s.db.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkStoreSizeOverAWeek: seven simulated days of 1,000,000 calls a day
// (CALLPUB_BENCH_CALLS_PER_DAY) in 100-call batches, pruned every simulated
// hour as `callpub run` does with its defaults (simulateDays). It logs the
// store's size at the end of each day and reports days 3 and 7, the bytes
// per seen call and the longest prune (one day bucket per transaction: what
// a commit may wait for). Commits skip fsync, which costs time, not pages.
func BenchmarkStoreSizeOverAWeek(b *testing.B) {
	perDay := 1_000_000
	if v := os.Getenv("CALLPUB_BENCH_CALLS_PER_DAY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("CALLPUB_BENCH_CALLS_PER_DAY=%q: want a number >= 1000", v)
		}
		perDay = n
	}
	var week []daySize
	for b.Loop() {
		week = week[:0]
		simulateDays(b, simOpen(b), 7, perDay, func(d daySize) { week = append(week, d) })
	}
	var longest time.Duration
	for _, d := range week {
		b.Log(d)
		longest = max(longest, d.MaxPrune)
	}
	day3, day7 := week[2], week[6]
	b.ReportMetric(mib(day3.File), "MiB-day3")
	b.ReportMetric(mib(day7.File), "MiB-day7")
	b.ReportMetric(float64(day7.Data)/float64(day7.SeenKeys), "bytes/call")
	b.ReportMetric(float64(longest.Milliseconds()), "ms-longest-prune")
}
