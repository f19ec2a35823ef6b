package ccms

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testAK = "test-ak"
	testSK = "test-sk-do-not-print"
)

// testNow is the fixed clock of the tests: every window below lies inside
// AllowedRange(testNow, UTC) = [2025-01-01 00:00, 2025-01-02 23:59:59.999].
var testNow = time.Date(2025, 1, 2, 12, 0, 0, 0, time.UTC)

// tickingClock returns testNow plus one second more on each call, so that
// consecutive signatures carry different timestamps.
func tickingClock() func() time.Time {
	var mu sync.Mutex
	n := 0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		n++
		return testNow.Add(time.Duration(n) * time.Second)
	}
}

// recorder collects what the client reports through Deps.
type recorder struct {
	mu       sync.Mutex
	outcomes []Outcome
	waits    int
}

func (r *recorder) Wait(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits++
	return ctx.Err()
}

func (r *recorder) observe(o Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcomes = append(r.outcomes, o)
}

func (r *recorder) classes() []Class {
	r.mu.Lock()
	defer r.mu.Unlock()
	var cs []Class
	for _, o := range r.outcomes {
		cs = append(cs, o.Class)
	}
	return cs
}

// caFile writes the TLS server's certificate as a PEM bundle.
func caFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, block, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testConfig is a config for srv over real TLS, trusting its certificate,
// with fast retries.
func testConfig(t *testing.T, srv *httptest.Server) Config {
	return Config{
		URL: srv.URL, AK: testAK, SK: testSK, CAFile: caFile(t, srv), Timezone: "UTC",
		Timeout: 5 * time.Second, MaxAttempts: 3, RetryBaseDelay: time.Millisecond, RetryMaxDelay: 20 * time.Millisecond,
	}
}

// newTestClient builds a client for cfg that reports into a new recorder.
func newTestClient(t *testing.T, cfg Config) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	c, err := NewClient(cfg, Deps{Limiter: rec, Observe: rec.observe, Now: tickingClock(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

func startTLS(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected in some tests
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// verifySignature recomputes the auth-v2 signature of r with the test
// secret from what arrived on the wire (Host header, Content-Type, the body
// bytes). It returns the reason it does not match, or "".
func verifySignature(r *http.Request, body []byte) string {
	parts := strings.Split(r.Header.Get("Authorization"), "/")
	if len(parts) != 5 || parts[0] != "auth-v2" || parts[1] != testAK {
		return "malformed authorization"
	}
	layout := timestampSeconds
	if strings.Contains(parts[2], ".") {
		layout = timestampMillis
	}
	at, err := time.Parse(layout, parts[2])
	if err != nil {
		return "bad timestamp"
	}
	headers := strings.Split(parts[3], ";")
	if !slices.Contains(headers, "host") {
		return "host not signed"
	}
	values := map[string]string{
		"host":           r.Host,
		"content-type":   r.Header.Get("Content-Type"),
		"content-length": strconv.FormatInt(r.ContentLength, 10),
	}
	if r.ContentLength != int64(len(body)) {
		return "content-length differs from the body"
	}
	s := signer{ak: testAK, sk: testSK, headers: headers, millis: layout == timestampMillis}
	if s.authorization(at, r.Method, r.URL.Path, values, body) != r.Header.Get("Authorization") {
		return "signature mismatch"
	}
	return ""
}

// wireQuery is the request body as the fake server reads it.
type wireQuery struct {
	CCID, VDN          int
	BeginDate, EndDate int64
	IsCallIn           string
	Limit, Offset      int
}

func readQuery(r *http.Request) (wireQuery, []byte, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return wireQuery{}, nil, err
	}
	var q wireQuery
	err = json.Unmarshal(body, &q)
	return q, body, err
}

// fakeCCMS serves querycalls over a fixed set of calls, filtered on
// callBegin. Its quirks are switched on by its fields.
type fakeCCMS struct {
	t     *testing.T
	mu    sync.Mutex
	calls []fakeCall // sorted by begin, then id

	ignoreOffset  bool
	ignoreLimit   bool
	numberStrings bool
	countDrift    func(request int) int    // added to count on the n-th request (1-based)
	beforeServe   func(f *fakeCCMS, n int) // runs under the lock before the n-th request is answered
	countPerPage  bool                     // count is the rows of the page, not the total
	pageCap       int                      // > 0: no page holds more rows, whatever the limit
	queryCap      int                      // > 0: no query reaches more rows, whatever the offset (count stays the total)

	requests int
	queries  []wireQuery
}

type fakeCall struct {
	id    string
	begin int64  // ms
	raw   string // when set, the row is sent as these bytes (a bad row); id is then only a label
	end   int64  // callEnd, ms; 0: begin + 60s
}

// addRaw adds a row sent verbatim at begin.
func (f *fakeCCMS) addRaw(label, raw string, begin time.Time) {
	f.calls = append(f.calls, fakeCall{id: label, raw: raw, begin: begin.UnixMilli()})
	f.sort()
}

// addCalls adds n calls spread evenly over [from, to).
func (f *fakeCCMS) addCalls(prefix string, n int, from, to time.Time) {
	step := to.Sub(from) / time.Duration(n)
	for i := range n {
		f.calls = append(f.calls, fakeCall{id: fmt.Sprintf("%s-%d", prefix, i), begin: from.Add(time.Duration(i) * step).UnixMilli()})
	}
	f.sort()
}

func (f *fakeCCMS) sort() {
	slices.SortFunc(f.calls, func(a, b fakeCall) int {
		if a.begin != b.begin {
			return int(a.begin - b.begin)
		}
		return strings.Compare(a.id, b.id)
	})
}

func (f *fakeCCMS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q, body, err := readQuery(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if why := verifySignature(r, body); why != "" {
		f.t.Errorf("fake ccms: %s", why)
		http.Error(w, why, http.StatusUnauthorized)
		return
	}
	f.mu.Lock()
	f.requests++
	n := f.requests
	f.queries = append(f.queries, q)
	if f.beforeServe != nil {
		f.beforeServe(f, n)
	}
	var match []fakeCall
	for _, c := range f.calls {
		if c.begin >= q.BeginDate && c.begin <= q.EndDate {
			match = append(match, c)
		}
	}
	page, count := f.page(match, q, n)
	numberStrings := f.numberStrings
	f.mu.Unlock()

	var b bytes.Buffer
	b.WriteString(`{"resultCode":"0100000","resultDesc":{"data":[`)
	for i, c := range page {
		if i > 0 {
			b.WriteByte(',')
		}
		end := c.end
		if end == 0 {
			end = c.begin + 60_000
		}
		switch {
		case c.raw != "":
			b.WriteString(c.raw)
		case numberStrings:
			fmt.Fprintf(&b, `{"callId":"%s","vdn":"%d","callBegin":"%d","callEnd":"%d","logDate":"%d","mediaType":"5","callType":"0"}`,
				c.id, q.VDN, c.begin, end, end+1_000)
		default:
			fmt.Fprintf(&b, `{"callId":"%s","vdn":%d,"callBegin":%d,"callEnd":%d,"logDate":%d,"mediaType":5,"callType":0}`,
				c.id, q.VDN, c.begin, end, end+1_000)
		}
	}
	if numberStrings {
		fmt.Fprintf(&b, `],"count":"%d"}}`, count)
	} else {
		fmt.Fprintf(&b, `],"count":%d}}`, count)
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Write(b.Bytes())
}

// page is the n-th request's page of the matching rows, and the count it
// reports, with the server's quirks applied. Called with f.mu held.
func (f *fakeCCMS) page(match []fakeCall, q wireQuery, n int) ([]fakeCall, int) {
	count := len(match)
	if f.queryCap > 0 {
		match = match[:min(f.queryCap, len(match))]
	}
	off := q.Offset
	if f.ignoreOffset {
		off = 0
	}
	page := match[min(off, len(match)):]
	if !f.ignoreLimit && len(page) > q.Limit {
		page = page[:q.Limit]
	}
	if f.pageCap > 0 && len(page) > f.pageCap {
		page = page[:f.pageCap]
	}
	if f.countPerPage {
		count = len(page)
	}
	if f.countDrift != nil {
		count += f.countDrift(n)
	}
	return page, count
}

func (f *fakeCCMS) requestCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}
