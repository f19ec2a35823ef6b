package ccms

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Path is the querycalls endpoint, appended to Config.URL.
const Path = "/rest/cmsapp/v2/openapi/vdn/querycalls"

// Config is the CC-CMS side. Env names are relative to CALLPUB_CCMS_. Defaults
// live in the tags; for the optional fields a zero value in a Config built in
// code means the same default, as each field's comment says.
type Config struct {
	// URL is the base URL, https://host:port (no path, or the path prefix in
	// front of /rest/...). Its host, exactly as written, is the signed Host
	// unless HostHeader is set (ccms-api.md A8).
	URL string `env:"URL, required"`
	AK  string `env:"AK, required"`
	SK  Secret `env:"SK, required"`

	// CAFile is a PEM bundle trusted in addition to the system roots.
	CAFile string `env:"CA_FILE"`
	// ServerName overrides the TLS server name (and SNI), e.g. when URL names an IP.
	ServerName string `env:"SERVER_NAME"`
	// InsecureSkipVerify disables certificate verification. Off by default;
	// NewClient logs a warning whenever it is on.
	InsecureSkipVerify bool `env:"INSECURE_SKIP_VERIFY, default=false"`

	// Timezone is the IANA zone of the API's day (A10). "" means UTC.
	Timezone string `env:"TIMEZONE, default=UTC"`
	// DayBoundaryMode says whose midnights bound the allowed range (A10):
	// "auto" (ask the server: the service probes at start and daily, and
	// uses both until it has an answer), "both" (the stricter of Timezone's
	// and UTC's at every instant, valid under either reading of the
	// documentation), "tenant" (Timezone's) or "utc". "" means auto. With
	// Timezone UTC all agree.
	DayBoundaryMode string `env:"DAY_BOUNDARY_MODE, default=auto"`
	// Timeout bounds one HTTP attempt. 0 means 30s.
	Timeout time.Duration `env:"TIMEOUT, default=30s"`

	// SignHeaders are the headers signed (A3); must contain host; only host,
	// content-type and content-length are allowed. nil means all three.
	SignHeaders []string `env:"SIGN_HEADERS, default=content-length,content-type,host"`
	// SignTimestamp is "seconds" (2025-01-02T03:04:05Z) or "millis"
	// (2025-01-02T03:04:05.123Z) (A1). "" means seconds.
	SignTimestamp string `env:"SIGN_TIMESTAMP, default=seconds"`
	// SignEmptyQueryLine writes an empty line where the query line would be,
	// as the ports of the C2 demo do (A2). Off: Huawei's code, no line.
	SignEmptyQueryLine bool `env:"SIGN_EMPTY_QUERY_LINE, default=false"`
	// SignBlankLineBeforeBody puts a blank line between the header lines and
	// the body (A4, one port). Off: one newline, Huawei's code.
	SignBlankLineBeforeBody bool `env:"SIGN_BLANK_LINE_BEFORE_BODY, default=false"`
	// SignEncoding is the signature's encoding, "hex" (Huawei's code) or
	// "base64" (A4, one port). "" means hex. A diagnostic switch for a 401.
	SignEncoding string `env:"SIGN_ENCODING, default=hex"`
	// ClockOffset, when not zero, is the server's clock minus ours, used for
	// signature timestamps (A7), window ends and the API's day bounds instead
	// of the offset learned from the server's Date headers.
	ClockOffset time.Duration `env:"CLOCK_OFFSET, default=0s"`
	// ContentType is sent (and signed, if content-type is signed) exactly as
	// written (A6). "" means "application/json; charset=UTF-8".
	ContentType string `env:"CONTENT_TYPE, default=application/json; charset=UTF-8"`
	// HostHeader overrides the Host header sent and signed (A8).
	HostHeader string `env:"HOST_HEADER"`
	// DatesAsStrings sends beginDate/endDate as JSON strings instead of
	// numbers (A13). Off by default.
	DatesAsStrings bool `env:"DATES_AS_STRINGS, default=false"`

	// MaxAttempts is the number of HTTP attempts per page for transient
	// failures (1 = no retry). 0 means 3.
	MaxAttempts int `env:"MAX_ATTEMPTS, default=3"`
	// RetryBaseDelay is the first backoff; it doubles per attempt, jittered.
	// 0 means 500ms.
	RetryBaseDelay time.Duration `env:"RETRY_BASE_DELAY, default=500ms"`
	// RetryMaxDelay caps any wait between attempts, Retry-After included,
	// and the Retry-After the client reports (StatusError, Outcome, and so
	// the poller's backoff of a stream): a larger one is capped, with a
	// warning at most once a minute. 0 means 30s.
	RetryMaxDelay time.Duration `env:"RETRY_MAX_DELAY, default=30s"`
	// MaxBodyBytes limits a response body. 0 means 4 MiB (a full page of 100
	// rows is about 40 KiB).
	MaxBodyBytes int64 `env:"MAX_BODY_BYTES, default=4194304"`

	// Rate is the shared request budget in requests/s (NewBudget's rate).
	// 0 means 10.
	Rate float64 `env:"RATE, default=10"`
	// MaxInFlight caps the requests in flight, 1..256 (every attempt holds
	// one of as many slots), and is the budget's burst. The service runs
	// WorkersPerSlot times as many workers, so that publishing and committing
	// one stream's calls overlaps fetching another's. 0 means 4.
	MaxInFlight int `env:"MAX_IN_FLIGHT, default=4"`
	// PageSize is the rows ReadWindow asks for per page (limit), 1..100.
	// 0 means 100.
	PageSize int `env:"PAGE_SIZE, default=100"`
	// MaxPages is the most pages ReadWindow reads of one window before it
	// splits the window. 0 means 20.
	MaxPages int `env:"MAX_PAGES, default=20"`
	// MinSpan is the shortest window ReadWindow splits down to, at least 1ms.
	// 0 means 1s.
	MinSpan time.Duration `env:"MIN_SPAN, default=1s"`
}

// ConfigError is one invalid Config field; NewClient returns every one it
// finds, joined. Field is the Go field name (SignTimestamp), which callers map
// to their own variable names. The SK never appears in Err.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Deps are the client's collaborators. Every field is optional.
type Deps struct {
	Logger *slog.Logger // nil: discard
	// Limiter is waited on before every HTTP attempt (the shared request budget).
	Limiter Limiter
	// Observe is called after every HTTP attempt, retries included.
	Observe func(Outcome)
	// Now is the clock for signatures and the API's allowed range. nil: time.Now.
	Now func() time.Time
	// Transport replaces the client's own TLS transport; CAFile, ServerName
	// and InsecureSkipVerify then do not apply. For tests and the demo.
	Transport http.RoundTripper
}

// Limiter is a request budget: Wait blocks until one request may be sent or
// ctx ends.
type Limiter interface {
	Wait(ctx context.Context) error
}

// Outcome describes one HTTP attempt.
type Outcome struct {
	Class      Class
	RetryAfter time.Duration // the server's Retry-After capped at Config.RetryMaxDelay, 0 when none
	Status     int           // HTTP status; 0 when no response arrived
	Duration   time.Duration
}

// Client queries CC-CMS. It is safe for concurrent use.
type Client struct {
	endpoint    string // URL + Path
	host        string // signed and sent as Host
	path        string // URI path as sent and signed
	contentType string
	datesAsStr  bool
	sign        signer
	loc         *time.Location
	reach       Reach
	timeout     time.Duration
	attempts    int
	baseDelay   time.Duration
	maxDelay    time.Duration
	maxBody     int64
	clock       *serverClock
	maxInFlight int
	pageSize    int           // ReadWindow's rows per page
	maxPages    int           // ReadWindow splits a window needing more pages
	minSpan     time.Duration // ReadWindow never splits below this span
	http        *http.Client
	log         *slog.Logger
	limiter     Limiter
	observe     func(Outcome)
	now         func() time.Time
	capped      *capNotice    // says when a Retry-After was capped
	pages       *pageSizes    // what ReadWindow learnt of the server's pages
	slots       chan struct{} // one per request in flight (MaxInFlight)
}

var defaultSignHeaders = []string{"content-length", "content-type", "host"}

// NewClient validates cfg and builds a client. It sends nothing. Every
// invalid field is reported as a *ConfigError, all of them joined.
func NewClient(cfg Config, deps Deps) (*Client, error) {
	c := newClient(cfg, deps)
	var bad problems
	c.setEndpoint(cfg, deps, &bad)
	c.sign = newSigner(cfg, c.contentType, &bad)
	c.loc, c.reach = newReach(cfg, &bad)
	c.checkLimits(cfg, &bad)
	c.checkReadSettings(cfg, &bad)
	rt, err := newTransport(cfg, deps)
	if err != nil {
		bad = append(bad, err)
	}
	if err := errors.Join(bad...); err != nil {
		return nil, fmt.Errorf("ccms config: %w", err)
	}
	if cfg.InsecureSkipVerify && deps.Transport == nil {
		c.log.Warn("ccms: TLS certificate verification is OFF (INSECURE_SKIP_VERIFY); anyone on the path can read the AK, the call data and forge responses",
			"host", c.host)
	}
	c.http = &http.Client{
		Transport: rt,
		Timeout:   c.timeout, // the per-attempt context also bounds it
		// Never follow redirects: a redirect would send the signed request to
		// another host, and the signature would not match anyway.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// problems collects the invalid fields NewClient finds.
type problems []error

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, &ConfigError{Field: field, Err: fmt.Errorf(format, args...)})
}

// newClient is the client with cfg's zero values replaced by their defaults
// and deps' nil fields by their no-op stand-ins. Nothing is validated yet.
func newClient(cfg Config, deps Deps) *Client {
	c := &Client{
		contentType: cmp.Or(cfg.ContentType, "application/json; charset=UTF-8"),
		datesAsStr:  cfg.DatesAsStrings,
		timeout:     cmp.Or(cfg.Timeout, 30*time.Second),
		attempts:    cmp.Or(cfg.MaxAttempts, 3),
		baseDelay:   cmp.Or(cfg.RetryBaseDelay, 500*time.Millisecond),
		maxDelay:    cmp.Or(cfg.RetryMaxDelay, 30*time.Second),
		maxBody:     cmp.Or(cfg.MaxBodyBytes, 4<<20),
		clock:       &serverClock{manual: cfg.ClockOffset},
		maxInFlight: cmp.Or(cfg.MaxInFlight, 4),
		capped:      &capNotice{},
		pages:       &pageSizes{},
		slots:       make(chan struct{}, max(cmp.Or(cfg.MaxInFlight, 4), 1)),
		pageSize:    cmp.Or(cfg.PageSize, 100),
		maxPages:    cmp.Or(cfg.MaxPages, 20),
		minSpan:     cmp.Or(cfg.MinSpan, time.Second),
		log:         deps.Logger,
		limiter:     deps.Limiter,
		observe:     deps.Observe,
		now:         deps.Now,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.observe == nil {
		c.observe = func(Outcome) {}
	}
	return c
}

// setEndpoint sets the URL the client posts to, the path it signs and the
// host it signs and sends: the URL's host as written, or HostHeader.
func (c *Client) setEndpoint(cfg Config, deps Deps, bad *problems) {
	u, err := url.Parse(cfg.URL)
	switch {
	case cfg.URL == "":
		bad.add("URL", "missing")
	case err != nil:
		bad.add("URL", "%v", err)
	case u.Scheme != "https" && u.Scheme != "http":
		bad.add("URL", "scheme must be https (the API is HTTPS only), got %q", u.Scheme)
	case u.Host == "":
		bad.add("URL", "no host in %q", cfg.URL)
	case u.RawQuery != "" || u.Fragment != "":
		bad.add("URL", "must not have a query or fragment")
	default:
		c.path = strings.TrimSuffix(u.EscapedPath(), "/") + Path
		c.endpoint = u.Scheme + "://" + u.Host + c.path
		c.host = u.Host
		if u.Scheme == "http" && deps.Transport == nil {
			// Only for simulators; the real API is HTTPS only.
			c.log.Warn("ccms: URL is plain http; the real CC-CMS API is HTTPS only", "url", cfg.URL)
		}
	}
	if cfg.HostHeader != "" {
		if strings.TrimSpace(cfg.HostHeader) != cfg.HostHeader || strings.ContainsAny(cfg.HostHeader, "/ \t\r\n") {
			bad.add("HostHeader", "must be host or host:port without whitespace, got %q", cfg.HostHeader)
		}
		c.host = cfg.HostHeader
	}
}

// newSigner checks the credentials and the signing switches (A1–A6) and
// builds the signer. contentType is the value sent, which may be signed.
func newSigner(cfg Config, contentType string, bad *problems) signer {
	if cfg.AK == "" {
		bad.add("AK", "missing")
	} else if strings.ContainsAny(cfg.AK, "/ \t\r\n") {
		bad.add("AK", "must not contain '/' or whitespace")
	}
	if cfg.SK == "" {
		bad.add("SK", "missing")
	}
	if contentType != strings.TrimSpace(contentType) {
		bad.add("ContentType", "must not have leading or trailing whitespace")
	}
	signed := signHeaders(cfg.SignHeaders, bad)
	switch cfg.SignTimestamp {
	case "", "seconds", "millis":
	default:
		bad.add("SignTimestamp", "must be seconds or millis, got %q", cfg.SignTimestamp)
	}
	switch cfg.SignEncoding {
	case "", "hex", "base64":
	default:
		bad.add("SignEncoding", "must be hex or base64, got %q", cfg.SignEncoding)
	}
	return signer{ak: cfg.AK, sk: cfg.SK, headers: signed, millis: cfg.SignTimestamp == "millis",
		variant: variant{
			emptyQueryLine: cfg.SignEmptyQueryLine,
			blankLine:      cfg.SignBlankLineBeforeBody,
			base64:         cfg.SignEncoding == "base64",
		}}
}

// signHeaders normalises Config.SignHeaders (nil: all three) to the
// lower-case, sorted, distinct names to sign, which must include host.
func signHeaders(headers []string, bad *problems) []string {
	if headers == nil {
		headers = defaultSignHeaders
	}
	var signed []string
	for _, h := range headers {
		h = strings.ToLower(strings.TrimSpace(h))
		switch h {
		case "host", "content-type", "content-length":
			if !slices.Contains(signed, h) {
				signed = append(signed, h)
			}
		default:
			bad.add("SignHeaders", "%q cannot be signed; choose from host, content-type, content-length", h)
		}
	}
	slices.Sort(signed)
	if !slices.Contains(signed, "host") {
		bad.add("SignHeaders", "must contain host, got %q", strings.Join(headers, ","))
	}
	return signed
}

// newReach is the API's day zone and the rule for its allowed range (A10).
func newReach(cfg Config, bad *problems) (*time.Location, Reach) {
	tz := cmp.Or(cfg.Timezone, "UTC")
	loc, err := time.LoadLocation(tz)
	if err != nil {
		bad.add("Timezone", "unknown IANA zone %q: %v", tz, err)
	} else if tz == "Local" {
		bad.add("Timezone", "must be an IANA name, not Local")
	}
	reach := Reach{Loc: loc, Boundary: DayBoundary(cmp.Or(cfg.DayBoundaryMode, string(BoundaryAuto))), detected: new(atomic.Value)}
	switch reach.Boundary {
	case BoundaryAuto, BoundaryBoth, BoundaryTenant, BoundaryUTC:
	default:
		bad.add("DayBoundaryMode", "must be auto, both, tenant or utc, got %q", cfg.DayBoundaryMode)
	}
	return loc, reach
}

// checkLimits checks the per-attempt limits and the retry delays. Only the
// first problem among them is reported.
func (c *Client) checkLimits(cfg Config, bad *problems) {
	switch {
	case c.timeout < 0:
		bad.add("Timeout", "must be > 0, got %v", cfg.Timeout)
	case c.attempts < 1 || c.attempts > 10:
		bad.add("MaxAttempts", "must be 1..10, got %d", cfg.MaxAttempts)
	case c.baseDelay < 0 || c.maxDelay < 0:
		bad.add("RetryBaseDelay", "delays must be >= 0")
	case c.maxBody < 1024:
		bad.add("MaxBodyBytes", "must be >= 1024, got %d", cfg.MaxBodyBytes)
	}
}

// checkReadSettings checks the request budget and ReadWindow's settings.
func (c *Client) checkReadSettings(cfg Config, bad *problems) {
	if rate := cmp.Or(cfg.Rate, 10); rate <= 0 {
		bad.add("Rate", "must be positive requests/s, got %v", rate)
	}
	if c.maxInFlight < 1 || c.maxInFlight > 256 {
		bad.add("MaxInFlight", "%d is outside 1..256", c.maxInFlight)
	}
	if c.pageSize < 1 || c.pageSize > 100 {
		bad.add("PageSize", "%d is outside 1..100", c.pageSize)
	}
	if c.maxPages < 1 {
		bad.add("MaxPages", "must be at least 1, got %d", c.maxPages)
	}
	if c.minSpan < time.Millisecond {
		bad.add("MinSpan", "%v is below 1ms", c.minSpan)
	}
}

// newTransport is deps.Transport, or the client's own TLS transport built
// from CAFile, ServerName and InsecureSkipVerify.
func newTransport(cfg Config, deps Deps) (http.RoundTripper, error) {
	if deps.Transport != nil {
		return deps.Transport, nil
	}
	tc, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tc
	t.MaxIdleConnsPerHost = 16
	return t, nil
}

// Location is the API's day zone (Config.Timezone).
func (c *Client) Location() *time.Location { return c.loc }

// Reach is the rule for the API's allowed range (Config.Timezone and
// Config.DayBoundaryMode); the poller plans its windows with the same rule.
func (c *Client) Reach() Reach { return c.reach }

// Host is the host that is signed and sent as the Host header.
func (c *Client) Host() string { return c.host }

// MaxInFlight is Config.MaxInFlight: how many requests may be in flight at
// once.
func (c *Client) MaxInFlight() int { return c.maxInFlight }

// WorkersPerSlot is how many poller workers the service runs per request
// slot: a worker spends much of a turn publishing and committing, holding
// no slot, and the slots stay busy only when other workers fetch meanwhile.
const WorkersPerSlot = 4

// Workers is how many poller workers to run: WorkersPerSlot × MaxInFlight.
func (c *Client) Workers() int { return WorkersPerSlot * c.maxInFlight }

// PageSize is Config.PageSize: the rows ReadWindow asks for in one page.
func (c *Client) PageSize() int { return c.pageSize }

func tlsConfig(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         cfg.ServerName,
		InsecureSkipVerify: cfg.InsecureSkipVerify, // off unless explicitly configured; warned about in NewClient
	}
	if cfg.CAFile == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, &ConfigError{Field: "CAFile", Err: err}
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, &ConfigError{Field: "CAFile", Err: fmt.Errorf("no PEM certificate in %s", cfg.CAFile)}
	}
	tc.RootCAs = pool
	return tc, nil
}
