package ccms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// QueryCalls reads one page. The query is validated first (*ValidationError).
// Transient failures are retried up to Config.MaxAttempts attempts with
// jittered exponential backoff honouring Retry-After (capped at
// Config.RetryMaxDelay): a 429 or a 5xx delays only this page, never other
// requests. Every attempt, retries included, waits on Deps.Limiter, so
// retries take their turn in the shared request budget rather than adding
// load to it; is re-signed with a fresh timestamp; and is reported to
// Deps.Observe. Other failures are returned at once; use ClassOf to branch on
// them.
func (c *Client) QueryCalls(ctx context.Context, q Query) (Page, error) {
	p, _, err := c.queryCalls(ctx, q)
	return p, err
}

// queryCalls is QueryCalls that also returns the number of HTTP attempts.
func (c *Client) queryCalls(ctx context.Context, q Query) (Page, int, error) {
	if err := q.validate(c.Now(), c.reach); err != nil {
		return Page{}, 0, fmt.Errorf("query calls %v: %w", q, err)
	}
	body, err := q.body(c.datesAsStr)
	if err != nil {
		return Page{}, 0, fmt.Errorf("query calls %v: encode body: %w", q, err)
	}
	for attempt := 1; ; attempt++ {
		if err := c.acquire(ctx); err != nil {
			return Page{}, attempt - 1, fmt.Errorf("query calls %v: wait for request budget: %w", q, err)
		}
		page, out, err := c.attempt(ctx, body)
		<-c.slots
		c.observe(out)
		if err == nil {
			return page, attempt, nil
		}
		if !out.Class.Retryable() || attempt >= c.attempts {
			if attempt > 1 {
				return Page{}, attempt, fmt.Errorf("query calls %v: attempt %d of %d: %w", q, attempt, c.attempts, err)
			}
			return Page{}, attempt, fmt.Errorf("query calls %v: %w", q, err)
		}
		wait := c.backoff(attempt, out.RetryAfter)
		c.log.Debug("ccms: retrying page", "query", q.String(), "attempt", attempt,
			"class", out.Class.String(), "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return Page{}, attempt, fmt.Errorf("query calls %v: waiting to retry after %v: %w", q, err, ctx.Err())
		case <-t.C:
		}
	}
}

// acquire takes a request slot (MaxInFlight), then a budget token; the
// caller sends one attempt and frees the slot. It fails only when ctx ends.
func (c *Client) acquire(ctx context.Context) error {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			<-c.slots
			return err
		}
	}
	return nil
}

// backoff is the wait after a failed attempt (1-based): Backoff over the
// retry delays, and never more than the max delay, Retry-After included.
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	return min(Backoff(attempt, c.baseDelay, c.maxDelay, retryAfter), c.maxDelay)
}

// attempt sends the body once, freshly signed, and classifies the result.
func (c *Client) attempt(ctx context.Context, body []byte) (Page, Outcome, error) {
	start := time.Now()
	out := func(status int, err error) Outcome {
		return Outcome{Class: ClassOf(err), RetryAfter: RetryAfter(err), Status: status, Duration: time.Since(start)}
	}
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	signedAt := c.Now()
	req, err := c.newRequest(actx, body, signedAt)
	if err != nil {
		return Page{}, out(0, err), err
	}
	sent := c.now()
	resp, err := c.http.Do(req)
	if err != nil {
		err = c.transportError(ctx, err)
		return Page{}, out(0, err), err
	}
	defer resp.Body.Close()
	c.clock.observe(c.log, resp.Header.Get("Date"), sent, c.now())
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		// Headers arrived but the body broke off: a cut connection or a timeout.
		err = c.transportError(ctx, fmt.Errorf("read body (http %d): %w", resp.StatusCode, err))
		return Page{}, out(resp.StatusCode, err), err
	}
	if int64(len(raw)) > c.maxBody {
		err := bodyError(resp.StatusCode, raw, 0, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, c.maxBody))
		return Page{}, out(resp.StatusCode, err), err
	}
	if resp.StatusCode != http.StatusOK {
		err := c.statusError(resp, raw, signedAt)
		return Page{}, out(resp.StatusCode, err), err
	}
	page, err := decodeResponse(resp.StatusCode, raw, c.loc)
	return page, out(resp.StatusCode, err), err
}

// statusError describes a response other than HTTP 200. Its Retry-After is
// capped at Config.RetryMaxDelay: the page's retry waits for it, and one
// gateway's "come back tomorrow" must not stop a stream for a day.
func (c *Client) statusError(resp *http.Response, raw []byte, signedAt time.Time) *StatusError {
	err := &StatusError{
		Code:       resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.now()),
		Excerpt:    excerpt(raw),
		Host:       c.host,
		Date:       resp.Header.Get("Date"),
	}
	if err.RetryAfter > c.maxDelay {
		c.capped.note(c.log, c.host, resp.StatusCode, err.RetryAfter, c.maxDelay)
		err.RetryAfter = c.maxDelay
	}
	if resp.StatusCode == http.StatusUnauthorized {
		err.SignedAt, err.Signing = signedAt, c.sign.describe()
	}
	return err
}

// capNotice says that the client capped a server's Retry-After: at the
// first cap, then at most once per capNoticeEvery, with the number of
// answers capped since it last said so. An upstream that answers every
// request "Retry-After: 86400" thus costs one log line a minute, not one per
// request.
type capNotice struct {
	mu     sync.Mutex
	said   time.Time // when it last said so
	capped int       // answers capped since
}

const capNoticeEvery = time.Minute

func (n *capNotice) note(log *slog.Logger, host string, status int, asked, limit time.Duration) {
	n.mu.Lock()
	n.capped++
	now := time.Now()
	if !n.said.IsZero() && now.Sub(n.said) < capNoticeEvery {
		n.mu.Unlock()
		return
	}
	capped := n.capped
	n.said, n.capped = now, 0
	n.mu.Unlock()
	log.Warn("ccms: capped the server's Retry-After at the longest retry delay (RetryMaxDelay); the request that got it retries after the cap, other requests never wait for it",
		"host", host, "status", status, "retry_after", asked.String(), "cap", limit.String(), "capped", capped)
}

// newRequest builds one signed request around body. The signed host is the
// Host header sent, and the signed Content-Length is the body's length.
func (c *Client) newRequest(ctx context.Context, body []byte, at time.Time) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Host = c.host
	req.Header.Set("Content-Type", c.contentType)
	values := map[string]string{
		"host":           c.host,
		"content-type":   c.contentType,
		"content-length": strconv.Itoa(len(body)),
	}
	req.Header.Set("Authorization", c.sign.authorization(at, http.MethodPost, c.path, values, body))
	return req, nil
}

// transportError types an error from the round trip. The caller's own
// cancellation is returned as the bare context error (ClassCanceled).
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ne net.Error
	timeout := errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
	if timeout {
		return &TransportError{Timeout: true, Err: fmt.Errorf("no complete response within %v: %w", c.timeout, err)}
	}
	return &TransportError{Err: err}
}
