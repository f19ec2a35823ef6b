package dedupe_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callpub/callpub/dedupe"
)

// residentKiB is how much of the store's file this process has resident,
// from /proc/self/smaps; -1 where there is no such file.
func residentKiB(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return -1
	}
	kib, in := 0, false
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-"):
			in = len(f) >= 6 && f[5] == path
		case in && len(f) == 3 && f[0] == "Rss:":
			n, _ := strconv.Atoi(f[1])
			kib += n
		}
	}
	return kib
}

// Lookups map the store's pages into the process; ReleaseMapped lets them
// go, and the store reads the same afterwards.
func TestReleaseMappedDropsTheStoresPagesFromTheResidentSet(t *testing.T) {
	s := open(t, options(t))
	day := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	var keys []dedupe.Key
	for i := range 20000 {
		keys = append(keys, dedupe.Key{Stream: "1/25/in", CallID: fmt.Sprintf("c-%06d", i), CallEnd: day, Hash: uint64(i)})
	}
	if err := s.MarkSeen(keys); err != nil {
		t.Fatal(err)
	}
	path, _ := filepath.Abs(s.Path())
	if _, err := s.Unseen(keys); err != nil { // touches every leaf
		t.Fatal(err)
	}
	before := residentKiB(t, path)
	if before < 0 {
		t.Skip("no /proc/self/smaps on this system: nothing to measure")
	}
	if err := s.ReleaseMapped(); err != nil {
		t.Fatal(err)
	}
	after := residentKiB(t, path)
	if before < 256 || after > before/4 {
		t.Errorf("the store's resident pages: %d KiB before, %d KiB after ReleaseMapped; want most of them gone", before, after)
	}
	fresh, err := s.Unseen(keys)
	if err != nil || len(fresh) != 0 {
		t.Errorf("after the release %d keys read as unseen, %v; want none", len(fresh), err)
	}
	t.Logf("resident: %d KiB before, %d KiB after", before, after)
}
