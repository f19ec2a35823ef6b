package ccmssim

import (
	"cmp"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// QueryCallsPath is the API's path; OraclePath serves Sim.Oracle as JSON.
const (
	QueryCallsPath = "/rest/cmsapp/v2/openapi/vdn/querycalls"
	OraclePath     = "/sim/oracle"
)

const maxBody = 1 << 20

// Sim is the simulated CC-CMS. Create it with New; it starts nothing.
type Sim struct {
	set   settings
	cache slotCache

	mu     sync.Mutex // guards faults, forced and rng
	faults Faults
	forced map[FaultKind]int
	rng    *rand.Rand

	requests atomic.Int64
	invalid  atomic.Int64 // requests refused with 0100002
}

// New checks o and returns a simulator. It starts nothing.
func New(o Options) (*Sim, error) {
	set, err := resolve(o)
	if err != nil {
		return nil, err
	}
	return &Sim{set: set, faults: o.Faults.withDefaults(), forced: make(map[FaultKind]int), rng: newFaultRNG(o.Seed)}, nil
}

// Location is the simulator's API time zone.
func (s *Sim) Location() *time.Location { return s.set.loc }

// Invalid is how many requests the simulator refused as invalid (0100002:
// a window outside its range, a bad parameter), ProbeBoundary's one
// question included.
func (s *Sim) Invalid() int64 { return s.invalid.Load() }

// Now is the simulator clock's time.
func (s *Sim) Now() time.Time { return s.set.clock.Now() }

// Busy reports whether vdn is one of the busy VDNs (VDN 1 always is, unless
// Traffic.BusyShare is negative).
func (s *Sim) Busy(vdn int) bool { return s.set.busy(vdn) }

// Requests is the number of querycalls requests received so far.
func (s *Sim) Requests() int64 { return s.requests.Load() }

// AllowedRange is the window the simulator accepts at now: 00:00:00 of
// yesterday to 23:59:59.999 of today in its time zone.
func (s *Sim) AllowedRange(now time.Time) (earliest, latest time.Time) {
	return allowedRange(now, s.set.loc)
}

// ServeHTTP serves the API and the oracle; any other path is 404.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case QueryCallsPath:
		s.serveQuery(w, r)
	case OraclePath:
		s.serveOracle(w, r)
	default:
		http.NotFound(w, r)
	}
}

// outcome is what the request log line reports.
type outcome struct {
	status int
	code   string
	rows   int
	count  int
	faults []FaultKind
	reason string
}

func (s *Sim) serveQuery(w http.ResponseWriter, r *http.Request) {
	started := time.Now()
	s.requests.Add(1)
	var q query
	out := outcome{status: http.StatusOK}
	defer func() { s.logRequest(r, q, out, time.Since(started)) }()
	// The Date of every answer is the simulator's clock, as a real server's
	// is its own: clients learn the server's clock from it.
	w.Header().Set("Date", s.set.clock.Now().UTC().Format(http.TimeFormat))

	q, ok := s.admit(w, r, &out)
	if !ok {
		return
	}
	p := s.planFaults()
	out.faults = p.kinds
	if !s.hold(r, p, &out) || s.fail(w, p, &out) {
		return
	}
	s.writePage(w, q, s.set.clock.Now().UnixMilli(), p, &out)
}

// admit reads, authenticates and checks a request, answering it when it
// does not pass.
func (s *Sim) admit(w http.ResponseWriter, r *http.Request, out *outcome) (query, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		out.status, out.reason = http.StatusRequestEntityTooLarge, "body too large"
		http.Error(w, "request body too large", out.status)
		return query{}, false
	}
	now := s.set.clock.Now()
	if err := verify(r, body, s.set.ak, s.set.sk, now, s.set.maxSkew, s.set.sign); err != nil {
		out.status, out.reason = http.StatusUnauthorized, err.Error()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return query{}, false
	}
	q, perr := s.set.checkRequest(r, body, now)
	if perr != nil {
		out.code, out.reason = resultInvalidParam, perr.desc
		s.invalid.Add(1)
		writeJSON(w, http.StatusOK, appendFailure(nil, resultInvalidParam, perr.desc))
		return q, false
	}
	return q, true
}

// hold waits out a slow or timeout fault; false means the client gave up.
func (s *Sim) hold(r *http.Request, p plan, out *outcome) bool {
	if !p.slow && p.terminal != FaultTimeout {
		return true
	}
	d := p.faults.SlowDelay
	if p.terminal == FaultTimeout {
		d = p.faults.TimeoutDelay
	}
	t := time.NewTimer(d)
	select {
	case <-r.Context().Done():
		t.Stop()
		out.status, out.reason = 0, "client gave up"
		return false
	case <-t.C:
		return true
	}
}

// fail answers a request whose plan ends it without a page.
func (s *Sim) fail(w http.ResponseWriter, p plan, out *outcome) bool {
	switch p.terminal {
	case FaultTimeout:
		out.status = http.StatusGatewayTimeout
		http.Error(w, "upstream timed out", out.status)
	case FaultServerError:
		out.status = p.status
		http.Error(w, http.StatusText(p.status), p.status)
	case FaultRateLimit:
		out.status = http.StatusTooManyRequests
		secs := int64((p.faults.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		http.Error(w, "too many requests", out.status)
	case FaultResultError:
		out.code = resultFailed
		writeJSON(w, http.StatusOK, appendFailure(nil, resultFailed, "Call failed"))
	default:
		return false
	}
	return true
}

// writePage answers with the page of q at now, as p shapes it.
func (s *Sim) writePage(w http.ResponseWriter, q query, now int64, p plan, out *outcome) {
	entries := s.set.listing(s.rows(q, now), p.faults)
	from := q.offset
	if p.ignore {
		from = 0
	}
	page := entries[min(from, len(entries)):]
	if q.limit > 0 && len(page) > q.limit {
		page = page[:q.limit]
	}
	if c := p.faults.PageCap; c > 0 && len(page) > c {
		page = page[:c]
	}
	count := len(entries)
	if p.faults.CountPerPage {
		count = len(page)
	}
	count = max(count+p.drift, 0)
	out.code, out.rows, out.count = resultSuccess, len(page), count
	b := appendSuccess(make([]byte, 0, 64+len(page)*330), page, q.vdn, count, p.strings)
	switch p.rewrite {
	case FaultMalformed:
		b = malform(b)
	case FaultTruncate:
		if p.cutEarly {
			// Declare the whole body, send half: the client sees the connection cut.
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		}
		b = b[:len(b)/2]
	}
	writeJSON(w, http.StatusOK, b)
}

func writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(status)
	_, _ = w.Write(b) // the client went away; nothing to do
}

// rows are the visible rows of a query at now, sorted by filter time then
// callId.
func (s *Sim) rows(q query, now int64) []row {
	var out []row
	first := floorDiv(q.begin-ms(s.set.lookback()), slotMillis)
	last := floorDiv(min(q.end, now), slotMillis)
	for slot := first; slot <= last; slot++ {
		calls := s.slot(slotKey{vdn: q.vdn, inbound: q.inbound, slot: slot})
		for i := range calls {
			c := &calls[i]
			r, ok := s.set.visible(c, now)
			if !ok || r.ft < q.begin || r.ft > q.end {
				continue
			}
			if q.callerNo != "" && c.callerNo != q.callerNo || q.calleeNo != "" && c.calleeNo != q.calleeNo {
				continue
			}
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.ft, b.ft), cmp.Compare(a.c.id, b.c.id))
	})
	return out
}

// visible is c's row at now, if it has one that can match a window.
func (s *settings) visible(c *call, now int64) (row, bool) {
	r := row{c: c}
	switch {
	case now >= c.logDate:
		r.done = true
	case c.progressAt != 0 && now >= c.progressAt:
	default:
		return r, false
	}
	switch s.filterOn {
	case FilterWaitBegin:
		r.ft = c.waitBegin
	case FilterCallEnd:
		if !r.done {
			return r, false
		}
		r.ft = c.callEnd
	case FilterLogDate:
		r.ft = r.logDate()
	default:
		r.ft = c.callBegin
		if r.ft == 0 {
			r.ft = c.waitBegin
		}
	}
	return r, true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// logRequest writes one line per request. It never logs headers.
func (s *Sim) logRequest(r *http.Request, q query, o outcome, d time.Duration) {
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.Int("status", o.status),
		slog.Duration("duration", d),
	}
	if q.vdn != 0 {
		dir := "out"
		if q.inbound {
			dir = "in"
		}
		attrs = append(attrs, slog.Int("vdn", q.vdn), slog.String("direction", dir),
			slog.Time("window_start", time.UnixMilli(q.begin).In(s.set.loc)),
			slog.Time("window_end", time.UnixMilli(q.end).In(s.set.loc)),
			slog.Int("offset", q.offset), slog.Int("limit", q.limit))
	}
	if o.code != "" {
		attrs = append(attrs, slog.String("result_code", o.code))
	}
	if o.code == resultSuccess {
		attrs = append(attrs, slog.Int("rows", o.rows), slog.Int("count", o.count))
	}
	if len(o.faults) > 0 {
		names := make([]string, len(o.faults))
		for i, k := range o.faults {
			names[i] = string(k)
		}
		attrs = append(attrs, slog.Any("faults", names))
	}
	if o.reason != "" {
		attrs = append(attrs, slog.String("reason", o.reason))
	}
	s.set.logger.LogAttrs(r.Context(), slog.LevelInfo, "querycalls", attrs...)
}

var errBadOracleQuery = errors.New("from and to must be epoch milliseconds with from <= to")
