// Package dedupe is callpub's durable state: one bbolt file holding, per
// stream, the calls already published (the seen set), the cursor, the calls
// still running (pending), and a log of gaps the API's horizon cost us.
//
// Layout (design.md §5): bucket "meta" (format version, ccId, shard, time
// zone, config fingerprint), "cursors" (stream → cursor, last sweep, sealed
// day, last-chance day, and the changelog seq when one was recorded),
// "pending" (stream NUL callId → filter time, first seen), "gaps"
// (start, end, stream → detected at) and one bucket "seen/YYYYMMDD" per day of
// callEnd in the configured zone (stream "/" callId → callEnd ms, content
// hash). Retention drops whole day buckets (Prune).
//
// Invariants:
//
//   - Nothing is marked seen before Kafka has acknowledged it. This is the
//     caller's duty: call Commit only after the publish returned nil. The
//     store cannot check it.
//   - One Commit is one read-write transaction: seen-marks, pending changes,
//     the cursor and gap entries land together or not at all. Concurrent
//     commits may share a transaction (bbolt's DB.Batch), so the work done
//     inside the transaction is idempotent and prepared before it starts.
//   - One file belongs to one process. Open takes bbolt's exclusive file lock
//     with a timeout and reports ErrLocked rather than waiting forever;
//     read-only opens take a shared lock.
//   - Bytes read from bbolt are decoded or copied before the transaction
//     ends; nothing returned by this package points into the memory map.
//   - A store belongs to one ccId, shard and time zone; opening it for
//     another is a *MismatchError, an unknown format version is ErrFormat.
//   - Retention that is too short causes duplicates, never loss.
//   - A stream's changelog seq (Batch.Seq, Snapshot.Seq) never goes
//     backwards through Commit; only Restore sets it lower.
package dedupe
