package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/callpub/callpub/dedupe"
)

func TestStateCommandsOnAStoppedService(t *testing.T) {
	dir := t.TempDir()
	s, err := dedupe.Open(dedupe.Options{Path: filepath.Join(dir, storeFile), LockTimeout: time.Second, CCID: 7})
	if err != nil {
		t.Fatal(err)
	}
	cursor := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	old := time.Now().AddDate(0, 0, -10)
	for _, b := range []dedupe.Batch{
		{Stream: "7/25/in", Cursor: &cursor, Seen: []dedupe.Key{{Stream: "7/25/in", CallID: "c1", CallEnd: cursor, Hash: 1}},
			Pending: []dedupe.Pending{{CallID: "p1", FilterTime: cursor, FirstSeen: cursor}}},
		{Stream: "7/26/out", Cursor: &cursor, Seen: []dedupe.Key{{Stream: "7/26/out", CallID: "c2", CallEnd: old, Hash: 2}},
			Gaps: []dedupe.Gap{{Stream: "7/26/out", Start: old, End: cursor, DetectedAt: cursor}}},
	} {
		if err := s.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	env := envconfig.MapLookuper(map[string]string{"CALLPUB_STATE_DIR": dir})
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := state(args, env, &out); err != nil {
			t.Fatalf("state %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	show := run("show")
	for _, want := range []string{"ccId 7", "2 streams", "2 seen calls", "1 pending", "1 gaps", "7/25/in", cursor.Format(time.RFC3339), "gap       7/26/out lost"} {
		if !strings.Contains(show, want) {
			t.Errorf("state show lacks %q:\n%s", want, show)
		}
	}
	if out := run("show", "-stream", "7/25/in", "-json"); !strings.Contains(out, `"Stream": "7/25/in"`) || strings.Contains(out, `"Stream": "7/26/out"`) {
		t.Errorf("state show -stream -json:\n%s", out)
	}
	if out := run("check"); !strings.Contains(out, ": ok") {
		t.Errorf("state check: %s", out)
	}
	run("reset", "-stream", "7/25/in")
	if out := run("show", "-stream", "7/25/in"); strings.Contains(out, cursor.Format(time.RFC3339)) {
		t.Errorf("the cursor survived a reset:\n%s", out)
	}
	to := "2026-11-24T08:00:00Z"
	run("reset", "-stream", "7/26/out", "-to", to)
	if out := run("show", "-stream", "7/26/out"); !strings.Contains(out, to) {
		t.Errorf("reset -to did not set the cursor:\n%s", out)
	}
	if out := run("prune"); !strings.Contains(out, "pruned 1 day buckets") {
		t.Errorf("prune dropped the wrong buckets: %s", out)
	}
	if out := run("compact"); !strings.Contains(out, "compacted") {
		t.Errorf("compact: %s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, storeFile+".bak")); err != nil {
		t.Errorf("compact kept no backup: %v", err)
	}
	if out := run("show"); !strings.Contains(out, "1 seen calls") {
		t.Errorf("after prune and compact:\n%s", out)
	}
}
