package dedupe_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/callpub/callpub/dedupe"
)

// A step asks which calls are new, publishes them, and only after Kafka's
// ack commits the seen-marks and the cursor in one transaction.
func ExampleStore_Commit() {
	dir, _ := os.MkdirTemp("", "dedupe-example")
	defer os.RemoveAll(dir)
	s, err := dedupe.Open(dedupe.Options{
		Path:        filepath.Join(dir, "state.db"),
		LockTimeout: time.Second,
		CCID:        1,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	end := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	page := []dedupe.Key{{Stream: "1/25/in", CallID: "a", CallEnd: end, Hash: 1}}
	fresh, _ := s.Unseen(page)
	fmt.Println("to publish:", len(fresh))
	// ... publish fresh and wait for the ack ...
	cursor := end.Add(time.Minute)
	if err := s.Commit(dedupe.Batch{Stream: "1/25/in", Seen: fresh, Cursor: &cursor}); err != nil {
		fmt.Println(err)
		return
	}
	fresh, _ = s.Unseen(page)
	fmt.Println("to publish again:", len(fresh))
	changed := []dedupe.Key{{Stream: "1/25/in", CallID: "a", CallEnd: end, Hash: 2}}
	fresh, _ = s.Unseen(changed)
	fmt.Println("changed call is an update:", fresh[0].Update)
	st, _ := s.State("1/25/in")
	fmt.Println("cursor:", st.Cursor.Format(time.RFC3339))
	// Output:
	// to publish: 1
	// to publish again: 0
	// changed call is an update: true
	// cursor: 2026-03-10T09:01:00Z
}
