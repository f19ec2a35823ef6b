// Package ccms is the production client for Huawei CC-CMS's
// "(V2) query calls in a VDN" API (POST /rest/cmsapp/v2/openapi/vdn/querycalls),
// with its C2 auth-v2 request signing.
//
// QueryCalls reads one page of one (ccId, vdn, direction) window; ReadWindow
// reads a whole window page by page, checks that the pages agree with each
// other and splits the window in halves when they do not; a span that still
// disagrees is read as far as the server gives it and reported as suspect.
// AllowedRange is the API's reach (00:00 of yesterday to the end of today in
// the API's time zone).
//
// Config holds every CC-CMS setting (CALLPUB_CCMS_*), the read settings
// (page size, max pages, min span) and the request budget's rate and
// requests in flight included; NewClient checks them all, once. Budget is the
// one request budget all streams share: a token bucket whose rate is halved
// only when most recent answers push back (congestion), never for a random
// 429 or 5xx (a fault), and doubled back within seconds once they stop; no
// answer pauses every request. Backoff is the one backoff rule, used by the
// client's retries and by the poller's rescheduling of failed streams.
//
// Invariants:
//   - The request body is marshalled once; exactly those bytes are signed and
//     sent (bytes.NewReader, so Content-Length is set). The Host header sent is
//     the host that was signed. Every attempt, retries included, is re-signed
//     with a fresh timestamp.
//   - A query is validated before anything is sent; a *ValidationError names
//     the field and the rule it broke.
//   - Every error is typed (*StatusError, *ResultError, *DecodeError,
//     *TransportError, *ValidationError) and ClassOf is the one place that
//     maps an error to its retry class. QueryCalls retries only the transient
//     classes, a few times, with Backoff (jittered, exponential, honouring
//     Retry-After); auth, blocked, misconfigured and permanent failures are
//     returned at once. A Retry-After delays only the page that got it, and
//     is capped at Config.RetryMaxDelay before it is waited or reported
//     (StatusError, Outcome), so one answer cannot stop a stream for a day.
//   - Deps.Limiter.Wait runs before every HTTP attempt and Deps.Observe after
//     it, so a shared request budget sees every request, retries included.
//   - No error, log line or excerpt contains the SK, a signature or the
//     Authorization header, and fmt prints a Client, its signer or a Secret
//     without the SK whatever the verb. Secret.Reveal is called only by the
//     signer.
//   - No error text quotes an HTTP 200 body, which may hold phone numbers: a
//     *DecodeError says what is wrong and where (offset, length), a bad row's
//     reason names the field, not its value, and a failure's resultDesc has
//     its long digit runs masked. Only non-200 (gateway) bodies keep an
//     excerpt.
//   - Responses are decoded tolerantly (numbers or numeric strings, null and ""
//     as absent, resultDesc as an object or a string, unknown fields ignored),
//     and row by row: a row that cannot be used (null or not an object, no
//     callId or one over MaxCallIDBytes, a time that is not a number, is
//     negative or after 9999, a code beyond 32 bits) is a BadRow of its page,
//     and the rows around it are kept. A body that is not JSON, or whose
//     success resultDesc is not an object of rows and a count >= 0, is a
//     *DecodeError.
//   - A nil error from ReadWindow means every call in the window was read as
//     far as the server gives it: consistently, except the spans in
//     Read.Suspect. A bad row counts as a row received in every paging check.
//   - Epoch milliseconds exist only in this package's wire types; the API's
//     inclusive endDate is derived from a half-open Window only here.
package ccms
