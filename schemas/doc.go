// Package schemas is callpub's wire contract: the CloudEvents it puts on Kafka,
// the JSON Schemas that describe them, and the AsyncAPI document of its topics.
//
// Every event is a CloudEvents 1.0 event on Kafka by the CloudEvents Kafka
// protocol binding (binding.go), in the content mode configured: structured
// (content type application/cloudevents+json: the whole event, attributes
// and data, is the record's value, and the routing attributes are repeated
// as ce_ headers) or binary (the data is the value, every attribute a ce_
// header). Either way the record key is the partitionkey extension, the VDN
// as a decimal string ("25", never "025"). DecodeRecord reads both.
//
// Types:
//
//	com.huawei.ccms.call.completed.v1       one completed call (call topic)
//	com.huawei.ccms.call.unended.v1         a call whose end was never reported (call topic)
//	com.huawei.ccms.stream.gap.v1           a span lost to the API's horizon (control topic)
//	com.huawei.ccms.stream.day.sealed.v2    a (stream, day) as a sealing pass read it: count, span read,
//	                                        complete or why not (control topic)
//	com.huawei.ccms.stream.day.sealed.v1    the same with the count alone; no longer written, still valid
//	com.huawei.ccms.stream.heartbeat.v1     a stream's cursor: everything before it is published (control topic)
//	com.huawei.ccms.row.quarantined.v1      a row that could not be decoded or used (dead-letter topic)
//
// Invariants:
//
//   - An event id is a pure function of the call's identity (ccId, vdn,
//     direction, callId) and, for an update, of its content hash (EventID,
//     UpdateEventID). The same call gets the same id across retries, restarts,
//     replicas and backfills, so consumers may drop repeats by (source, id).
//     Changing these functions breaks every consumer's dedupe; golden tests pin them.
//     An unended call has its own id (UnendedEventID), so the completed event
//     of a call that reports its end after all is not taken for a repeat.
//   - A day-sealed record says complete only when nothing it lists
//     contradicts it: no gap, no suspect span, no quarantined row, and a
//     non-empty span read. Its id covers what the sealing pass found, not
//     when or by which pass (sealedAt, lastChance) it was sealed.
//   - ContentHash covers the normalised call (times at millisecond precision,
//     logDate excluded) before the phone-number policy is applied, so changing
//     the policy never turns old calls into updates.
//   - A quarantine record's id covers the stream, the window and RowSum of
//     the raw row; its phone numbers follow the same policy as a call's, and
//     a row that is not a JSON object has every digit masked unless the
//     policy is plain.
//   - Event.Size is the length of the record value the publisher writes.
//   - Times on the wire are RFC 3339 in UTC with exactly three fractional
//     digits; absent times are null.
//   - A record's mode is told by its headers alone, as the binding says; a
//     structured record is read from its value, never from its ce_ headers,
//     which carry only attributes up to MaxStructuredHeader bytes.
//   - Every produced event validates against the embedded JSON Schema of its
//     type (Validate); the golden files in testdata pin the format, and a diff in
//     them is a wire-format change.
//
// The package imports nothing from this module.
package schemas
