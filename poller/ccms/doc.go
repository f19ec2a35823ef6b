// Package ccms is the production client for Huawei CC-CMS's
// "(V2) query calls in a VDN" API (POST /rest/cmsapp/v2/openapi/vdn/querycalls),
// with its C2 auth-v2 request signing.
//
// QueryCalls reads one page of one (ccId, vdn, direction) window; ReadWindow
// reads a whole window page by page, checks that the pages agree with each
// other and splits the window in halves when they do not. AllowedRange is the
// API's reach (00:00 of yesterday to the end of today in the API's time zone).
//
// Config holds every CC-CMS setting (CALLPUB_CCMS_*), the read settings
// (page size, max pages, min span) and the request budget's rate and
// requests in flight included; NewClient checks them all, once. Budget is the
// one request budget all streams share (AIMD on push-back, Retry-After
// pauses every request). Backoff is the one backoff rule, used by the
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
//     *TransportError, *ValidationError, ErrInconsistent) and ClassOf is the one
//     place that maps an error to its retry class. QueryCalls retries only the
//     transient classes, a few times, with Backoff (jittered, exponential,
//     honouring Retry-After, capped at Config.RetryMaxDelay); auth, blocked,
//     misconfigured and permanent failures are returned at once.
//   - Deps.Limiter.Wait runs before every HTTP attempt and Deps.Observe after
//     it, so a shared request budget sees every request, retries included.
//   - No error, log line or excerpt contains the SK, a signature or the
//     Authorization header. Secret.Reveal is called only by the signer.
//   - Responses are decoded tolerantly (numbers or numeric strings, null and ""
//     as absent, resultDesc as an object or a string, unknown fields ignored),
//     but whatever decodes holds a non-empty callId per row, a count >= 0 and
//     timestamps between 1970 and 9999; anything else is a *DecodeError.
//   - A nil error from ReadWindow means every call in the window was read
//     consistently.
//   - Epoch milliseconds exist only in this package's wire types; the API's
//     inclusive endDate is derived from a half-open Window only here.
package ccms
