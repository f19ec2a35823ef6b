package dedupe_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	bolt "go.etcd.io/bbolt"

	"github.com/callpub/callpub/dedupe"
)

// fill commits n calls per day for days days, in batches of 100, with a
// pending call and a gap per stream.
func fill(t *testing.T, s *dedupe.Store, streams []string, days, n int) {
	t.Helper()
	for _, stream := range streams {
		for d := range days {
			var seen []dedupe.Key
			for i := range n {
				end := at(0, 0).AddDate(0, 0, d).Add(time.Duration(i) * time.Second)
				seen = append(seen, dedupe.Key{Stream: stream, CallID: fmt.Sprintf("c%d-%d", d, i), CallEnd: end, Hash: uint64(i)})
				if len(seen) == 100 || i == n-1 {
					commit(t, s, dedupe.Batch{Stream: stream, Seen: seen})
					seen = nil
				}
			}
		}
		commit(t, s, dedupe.Batch{Stream: stream, Cursor: ptr(at(12, 0)),
			Pending: []dedupe.Pending{{CallID: "p", FilterTime: at(11, 0)}},
			Gaps:    []dedupe.Gap{{Start: at(1, 0), End: at(2, 0), DetectedAt: at(3, 0)}}})
	}
}

func TestStats(t *testing.T) {
	s := open(t, options(t))
	fill(t, s, []string{"1/1/in", "1/1/out"}, 3, 250)
	got, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := dedupe.Stats{Streams: 2, Cursors: 2, Pending: 2, Gaps: 2, SeenKeys: 1500, DayBuckets: 3,
		Days: []dedupe.DayStats{{"20260310", 500}, {"20260311", 500}, {"20260312", 500}}}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(dedupe.Stats{}, "DataSize", "FileSize")); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	if got.FileSize < got.DataSize || got.DataSize <= 0 {
		t.Errorf("FileSize %d, DataSize %d: want 0 < data <= file", got.FileSize, got.DataSize)
	}
}

func TestCheckFindsMalformedValues(t *testing.T) {
	o := options(t)
	s, err := dedupe.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, s, dedupe.Batch{Stream: testStream, Seen: []dedupe.Key{key("a", at(9, 0), 1)}, Cursor: ptr(at(10, 0))})
	if err := s.Check(); err != nil {
		t.Fatalf("Check of a sound file = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(o.Path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return errors.Join(
			tx.Bucket([]byte("seen/20260310")).Put([]byte(testStream+"/a"), []byte("bad")),
			tx.Bucket([]byte("cursors")).Put([]byte("x"), []byte("short")),
		)
	})
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
	r, err := dedupe.Open(dedupe.Options{Path: o.Path, ReadOnly: true, LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.Check()
	if err == nil || !strings.Contains(err.Error(), "2 problems") {
		t.Errorf("Check = %v, want 2 problems", err)
	}
}

func TestCompact(t *testing.T) {
	o := options(t)
	s, err := dedupe.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s, []string{"1/1/in", "1/2/in"}, 4, 500)
	if _, err := s.Prune(at(0, 0).AddDate(0, 0, 3)); err != nil { // free most pages
		t.Fatal(err)
	}
	wantStreams, _ := s.Streams()
	wantGaps, _ := s.Gaps()
	wantStats, _ := s.Stats()
	dst := filepath.Join(t.TempDir(), "compact.db")

	if err := dedupe.Compact(o.Path, dst); !errors.Is(err, dedupe.ErrLocked) {
		t.Fatalf("Compact while the store is open = %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := dedupe.Compact(o.Path, dst); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	if err := dedupe.Compact(o.Path, dst); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("Compact onto an existing file = %v, want a refusal", err)
	}

	o.Path = dst
	c := open(t, o)
	streams, _ := c.Streams()
	gaps, _ := c.Gaps()
	stats, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantStreams, streams); diff != "" {
		t.Errorf("streams after compaction (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantGaps, gaps); diff != "" {
		t.Errorf("gaps after compaction (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantStats, stats, cmpopts.IgnoreFields(dedupe.Stats{}, "DataSize", "FileSize")); diff != "" {
		t.Errorf("stats after compaction (-want +got):\n%s", diff)
	}
	if stats.FileSize >= wantStats.FileSize {
		t.Errorf("compacted file has %d bytes, the source %d", stats.FileSize, wantStats.FileSize)
	}
	if unseen, _ := c.Unseen([]dedupe.Key{{Stream: "1/1/in", CallID: "c3-0", CallEnd: at(0, 0).AddDate(0, 0, 3), Hash: 0}}); len(unseen) != 0 {
		t.Errorf("a seen call was lost by compaction: %+v", unseen)
	}
}

func TestConcurrentCommitsAllLand(t *testing.T) {
	o := options(t)
	o.BatchDelay = time.Millisecond
	s := open(t, o)
	const workers, batches, perBatch = 8, 20, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*batches)
	for w := range workers {
		stream := fmt.Sprintf("1/%d/in", w)
		wg.Go(func() {
			for b := range batches {
				var seen []dedupe.Key
				for i := range perBatch {
					seen = append(seen, dedupe.Key{Stream: stream, CallID: fmt.Sprintf("%d-%d", b, i), CallEnd: at(9, b), Hash: 1})
				}
				errs <- s.Commit(dedupe.Batch{Stream: stream, Seen: seen, Cursor: ptr(at(10, b))})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.SeenKeys != workers*batches*perBatch || st.Streams != workers {
		t.Errorf("Stats = %+v, want %d seen keys in %d streams", st, workers*batches*perBatch, workers)
	}
	for w := range workers {
		got, _ := s.State(fmt.Sprintf("1/%d/in", w))
		if !got.Cursor.Equal(at(10, batches-1)) {
			t.Errorf("stream %d cursor %v, want %v", w, got.Cursor, at(10, batches-1))
		}
	}
}
