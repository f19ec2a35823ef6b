// Package ccmssim is a faithful stand-in for Huawei CC-CMS's
// "(V2) query calls in a VDN" API, for unit tests, end-to-end tests,
// benchmarks, the demo and cmd/ccms-sim.
//
// A *Sim is an http.Handler. It serves
//
//	POST /rest/cmsapp/v2/openapi/vdn/querycalls   the API (docs/ccms-api.md)
//	GET  /sim/oracle?from=<ms>&to=<ms>            every completed call it holds (JSON)
//
// StartServer puts it on a real listener, over HTTP or HTTPS with a
// self-signed certificate written to a PEM file for clients.
//
// It imports nothing from this module: it writes its own JSON and verifies
// auth-v2 signatures with its own code, so a client bug cannot hide in a
// simulator built from the client's code. Both sides pass the same test
// vectors (ccms-api.md §2.5).
//
// Invariants:
//   - Every querycalls request is authenticated first: a missing, malformed,
//     wrongly signed or stale (|timestamp - clock| > MaxSkew) Authorization
//     header is HTTP 401. Timestamps with or without milliseconds are accepted,
//     and so is any signed-header set that includes host; the host signed is
//     the Host header received.
//   - Then every documented rule is checked (POST, Content-Type
//     application/json with charset UTF-8, ccId, vdn, isCallIn as a JSON
//     string, limit 1..100, offset >= 0, beginDate <= endDate, the
//     yesterday-00:00 .. today-23:59:59.999 window in Options.Location). A
//     broken rule is HTTP 200 with resultCode "0100002" and a string
//     resultDesc, like the real server.
//   - Traffic is a pure function of (Seed, Traffic, Location, VDN, direction,
//     hour slot): generated lazily per slot, so any number of VDNs and days
//     costs memory only for the slots asked for, and the oracle and the server
//     agree exactly. Fault injection never changes the traffic.
//   - A call's rows become visible by the Clock: an in-progress row (callEnd
//     0) from its first write when Traffic.ListInProgress is set, and the
//     completed row from its logDate (callEnd plus an ingestion delay) on.
//     Rows are returned sorted by filter time, then callId, so paging with
//     limit/offset is stable while nothing new becomes visible; count is the
//     number of rows matching the whole query.
//   - callIds are unique across every VDN, direction and time.
//   - Traffic.NeverEndShare makes a share of answered calls never end: they
//     are listed in progress (callEnd 0) forever, and the oracle lists them
//     with NeverEnds set.
//   - Faults apply only to requests that passed authentication and
//     validation. Slow and timeout faults wait on real timers (so they work
//     inside testing/synctest) and give up when the request's ctx ends.
//   - Besides failures, Faults can make the server lie the ways a real one
//     might: poison rows of each PoisonKind (unusable rows slipped in after
//     good ones, counted and paged like any row, never calls of the oracle,
//     placed by a pure function of (Seed, callId) so paging stays stable), a
//     count per page instead of a total, pages capped below the limit, a
//     count that drifts, an ignored offset. None of them changes the calls.
//   - Every exported method is safe for concurrent use. The Authorization
//     header and the SK never appear in a log line or a response.
package ccmssim
