package dedupe_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/callpub/callpub/dedupe"
)

// The crash test re-executes this test binary as a child that commits one
// batch after another and prints each committed sequence number. The
// parent kills it with SIGKILL after reading some lines, reopens the file,
// and checks that every batch is there completely or not at all, and that
// every acknowledged batch is there.

const (
	crashEnv      = "CALLPUB_DEDUPE_CRASH_STORE"
	crashPerBatch = 20
	crashAcks     = 25 // lines read before each kill
	crashRounds   = 3
)

var crashBase = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)

// crashBatch is batch i of the child's stream: 20 calls whose callEnds walk
// across day buckets, one new pending call replacing the previous one, the
// cursor at minute i, and a gap every fifth batch.
func crashBatch(i int) dedupe.Batch {
	b := dedupe.Batch{
		Stream:  testStream,
		Pending: []dedupe.Pending{{CallID: fmt.Sprintf("p%d", i), FilterTime: crashBase.Add(time.Duration(i) * time.Minute)}},
		Cursor:  ptr(crashBase.Add(time.Duration(i) * time.Minute)),
	}
	for j := range crashPerBatch {
		end := crashBase.Add(time.Duration(i*37+j) * time.Minute)
		b.Seen = append(b.Seen, dedupe.Key{Stream: testStream, CallID: fmt.Sprintf("c%d-%d", i, j), CallEnd: end, Hash: uint64(i)})
	}
	if i > 0 {
		b.Resolved = []string{fmt.Sprintf("p%d", i-1)}
	}
	if i%5 == 0 {
		b.Gaps = []dedupe.Gap{{Start: crashBase.Add(time.Duration(i) * time.Hour), End: crashBase.Add(time.Duration(i+1) * time.Hour)}}
	}
	return b
}

// TestCrashHelperProcess is the child; it does nothing unless started by
// TestCrashKeepsEveryCommitWholeAndEveryAckedCommit.
func TestCrashHelperProcess(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for the crash test")
	}
	s, err := dedupe.Open(dedupe.Options{Path: path, LockTimeout: 10 * time.Second, CCID: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	st, err := s.State(testStream)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	next := 0
	if !st.Cursor.IsZero() {
		next = int(st.Cursor.Sub(crashBase)/time.Minute) + 1
	}
	for i := next; i < next+100000; i++ {
		if err := s.Commit(crashBatch(i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("committed %d\n", i) // os.Stdout is unbuffered: the ack is out before the next commit
	}
	os.Exit(3) // never reached in time: the parent kills us
}

func TestCrashKeepsEveryCommitWholeAndEveryAckedCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := options(t).Path
	onDisk := 0
	for round := range crashRounds {
		// The child resumes after the last batch on disk, which may lie
		// beyond the last acknowledgement the parent read before the kill.
		acked := runAndKill(t, path, onDisk-1)
		onDisk = verifyCrashState(t, path, acked)
		t.Logf("round %d: %d batches acknowledged, %d on disk", round, acked+1, onDisk)
	}
}

// runAndKill starts the child, reads crashAcks acknowledgements and kills
// it. It returns the last acknowledged sequence number.
func runAndKill(t *testing.T, path string, prevAck int) int {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	last, lines := prevAck, 0
	for lines < crashAcks && sc.Scan() {
		seq, ok := strings.CutPrefix(sc.Text(), "committed ")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(seq)
		if err != nil || n != last+1 {
			t.Fatalf("child acknowledged %q after %d", sc.Text(), last)
		}
		last, lines = n, lines+1
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred cleanup, no Close
		t.Fatal(err)
	}
	_ = cmd.Wait() // "signal: killed" is expected
	if lines < crashAcks {
		t.Fatalf("child stopped after %d acknowledgements: %v\n%s", lines, sc.Err(), stderr.String())
	}
	return last
}

// verifyCrashState reopens the store read-write, as a restarted service
// would, and returns how many batches it holds.
func verifyCrashState(t *testing.T, path string, acked int) int {
	t.Helper()
	s, err := dedupe.Open(dedupe.Options{Path: path, LockTimeout: 10 * time.Second, CCID: 1})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatalf("Check after kill: %v", err)
	}
	// Batches are committed in order, so the file must hold a prefix of them:
	// each batch whole or absent, none absent before one present.
	n := 0
	for i := 0; ; i++ {
		unseen, err := s.Unseen(crashBatch(i).Seen)
		if err != nil {
			t.Fatal(err)
		}
		switch len(unseen) {
		case 0:
			if n != i {
				t.Fatalf("batch %d is on disk but batch %d is not", i, n)
			}
			n = i + 1
			continue
		case crashPerBatch:
		default:
			t.Fatalf("batch %d is on disk in part: %d of %d calls missing", i, len(unseen), crashPerBatch)
		}
		if i > n+5 {
			break
		}
	}
	if n <= acked {
		t.Fatalf("acknowledged batch %d is missing: only %d batches on disk", acked, n)
	}
	last := crashBatch(n - 1)
	st, err := s.State(testStream)
	if err != nil {
		t.Fatal(err)
	}
	want := dedupe.StreamState{Stream: testStream, Cursor: *last.Cursor, Pending: last.Pending}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("state does not match batch %d, the last on disk (-want +got):\n%s", n-1, diff)
	}
	gaps, err := s.Gaps()
	if err != nil {
		t.Fatal(err)
	}
	if want := (n-1)/5 + 1; len(gaps) != want {
		t.Errorf("%d gaps on disk, want %d for %d batches", len(gaps), want, n)
	}
	return n
}
