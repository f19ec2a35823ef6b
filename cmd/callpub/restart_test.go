package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/callpub/callpub/dedupe"
	"github.com/callpub/callpub/poller/ccmssim"
	"github.com/callpub/callpub/publisher/kafkatest"
	"github.com/callpub/callpub/schemas"
)

// child is `callpub <args>` as a separate process: this test binary in
// CALLPUB_E2E_CHILD mode (see TestMain).
type child struct {
	cmd   *exec.Cmd
	lines chan string // stderr and stdout lines
}

func startChild(t *testing.T, vars map[string]string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "CALLPUB_E2E_CHILD=1")
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return c
}

// waitLines reads output until n lines containing marker were seen. It fails
// if the process ends first or nothing arrives for a minute.
func (c *child) waitLines(t *testing.T, marker string, n int) []string {
	t.Helper()
	var seen []string
	for len(seen) < n {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("child exited after %d of %d %q lines", len(seen), n, marker)
			}
			if strings.Contains(l, marker) {
				seen = append(seen, l)
			}
		case <-time.After(time.Minute):
			t.Fatalf("no %q line for a minute (%d of %d seen)", marker, len(seen), n)
		}
	}
	return seen
}

// waitPublished reads the child's debug log until its turns published at
// least n events in all.
func (c *child) waitPublished(t *testing.T, n int) {
	t.Helper()
	total := 0
	for total < n {
		for _, l := range c.waitLines(t, `"published":`, 1) {
			var turn struct{ Published int }
			if err := json.Unmarshal([]byte(l), &turn); err == nil {
				total += turn.Published
			}
		}
	}
}

// exit waits for the process and returns its exit code, draining its output.
func (c *child) exit(t *testing.T) int {
	t.Helper()
	for range c.lines {
	}
	err := c.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// topicCount is the number of records in the topic.
func topicCount(t *testing.T, brokers []string, topic string, partitions int) int64 {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	var reqs []kafka.OffsetRequest
	for p := range partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	res, err := c.ListOffsets(t.Context(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			t.Fatal(po.Error)
		}
		n += po.LastOffset - po.FirstOffset
	}
	return n
}

func seenKeys(t *testing.T, dir string) int64 {
	t.Helper()
	s, err := dedupe.Open(dedupe.Options{Path: filepath.Join(dir, storeFile), LockTimeout: 5 * time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return int64(st.SeenKeys)
}

// 4. Restarts: a child `callpub run` is stopped once with SIGTERM (exit 0,
// everything it published committed) and SIGKILLed three times mid-run; a
// last run finishes. Nothing is missed,
// and the only duplicates are events Kafka acknowledged that their run did not
// get to commit: exactly the batches in flight at each kill.
func TestE2ERestartsAndKillsLoseNothing(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const parts = 6
	topic := kafkatest.Topic(t, brokers, parts)
	f := startSim(t, ccmssim.Options{VDNs: 60, Seed: 5, Traffic: finiteTraffic(0.3, 6)})
	want := oracleIDs(f, nil)
	dir := t.TempDir()
	describe = func(ids []string) string {
		out := ""
		now := f.sim.Now()
		for _, c := range f.sim.Oracle(now.Add(-48*time.Hour), now) {
			for _, id := range ids {
				if schemas.EventID(1, c.VDN, c.Inbound, c.CallID) == id {
					out += fmt.Sprintf("[VDN %d in=%v call %s filter %v end %v] ", c.VDN, c.Inbound, c.CallID, c.FilterTime.UTC(), c.CallEnd.UTC())
				}
			}
		}
		if st, err := dedupe.Open(dedupe.Options{Path: filepath.Join(dir, storeFile), LockTimeout: time.Second, ReadOnly: true}); err == nil {
			streams, _ := st.Streams()
			for i, x := range streams {
				if strings.HasPrefix(x.Stream, "1/5/out") || strings.HasPrefix(x.Stream, "1/24/in") || strings.HasPrefix(x.Stream, "1/56/out") || i < 3 {
					out += fmt.Sprintf("{%s cursor %v pending %d} ", x.Stream, x.Cursor.UTC(), len(x.Pending))
				}
			}
			st.Close()
		} else {
			out += err.Error()
		}
		return out
	}
	vars := f.vars(brokers, topic, dir, "1-60")
	vars["CALLPUB_LOG_LEVEL"] = "debug"
	vars["CALLPUB_CCMS_RATE"] = "300" // slow enough that each run ends mid-backfill

	var lastTopic, lastSeen int64
	for round, stop := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL, syscall.SIGKILL, syscall.SIGKILL} {
		c := startChild(t, vars, "run")
		c.waitPublished(t, 200+round*100)
		if err := c.cmd.Process.Signal(stop); err != nil {
			t.Fatal(err)
		}
		code := c.exit(t)
		switch stop {
		case syscall.SIGTERM:
			if code != 0 {
				t.Fatalf("round %d: SIGTERM exit code %d, want 0", round, code)
			}
		case syscall.SIGKILL:
			if code != -int(syscall.SIGKILL) {
				t.Fatalf("round %d: exit %d, want killed", round, code)
			}
		}
		seen := seenKeys(t, dir)
		total := topicCount(t, brokers, topic, parts)
		acked, committed := total-lastTopic, seen-lastSeen
		if stop == syscall.SIGTERM && acked != committed { // first round: nothing can land late from an earlier kill
			t.Errorf("round %d: a clean stop left %d acknowledged events uncommitted", round, acked-committed)
		}
		t.Logf("round %d (%v): %d events acknowledged, %d committed", round, stop, acked, committed)
		lastTopic, lastSeen = total, seen
	}
	if lastSeen >= int64(len(want)) {
		t.Fatalf("the killed runs already committed all %d calls: the last run proves nothing", len(want))
	}
	// The last run must publish whatever the killed runs did not get onto the topic.
	remaining := map[string]bool{}
	for id := range want {
		remaining[id] = true
	}
	for _, m := range kafkatest.ReadAll(t, brokers, topic, parts, int(lastTopic)) {
		var e schemas.Event
		if err := json.Unmarshal(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		delete(remaining, e.ID)
	}
	// What the killed runs left on the topic and not in the store is what
	// the last run publishes again: exactly the duplicates. Measured now, not
	// at each kill, since a produce request a killed run sent may still be
	// appended after its process is gone.
	inFlight := topicCount(t, brokers, topic, parts) - seenKeys(t, dir)
	s := startService(t, vars)
	s.waitCommitted(t, remaining, 3*time.Minute)
	s.stop(t)
	dups := checkTopic(t, brokers, topic, parts, want)
	if int64(dups) > inFlight {
		t.Errorf("%d duplicates, but only %d events were acknowledged and not committed at the kills", dups, inFlight)
	}
	t.Logf("%d calls, %d duplicates, %d events in flight at the kills", len(want), dups, inFlight)
}

// 6. The README's first command: `callpub demo` prints events, a summary every
// 5 s, and exits 0 on SIGTERM after 20 s.
func TestE2EDemoPrintsEventsAndStopsCleanly(t *testing.T) {
	c := startChild(t, map[string]string{"CALLPUB_KAFKA_BROKERS": ""}, "demo", "-vdns", "10")
	lines := c.waitLines(t, "  VDN ", 5)
	c.waitLines(t, "---- 20s", 1)
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := c.exit(t); code != 0 {
		t.Fatalf("demo exit code %d after SIGTERM, want 0", code)
	}
	t.Logf("first event line: %s", lines[0])
}
