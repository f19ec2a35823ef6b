package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/callpub/callpub/schemas"
)

// startServiceWith is startService with hooks: h.transport replaces the
// CC-CMS transport, and h.onPublished, when set, is called after the
// service's own bookkeeping of each commit.
func startServiceWith(t testing.TB, vars map[string]string, h hooks) *service {
	t.Helper()
	cfg, err := loadConfig(t.Context(), envconfig.MapLookuper(vars))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	s := &service{cancel: cancel, done: make(chan error, 1), ids: map[string]int{}, vdns: map[int]bool{},
		more: make(chan struct{}, 1)}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	also := h.onPublished
	h.onPublished = func(events []schemas.Event) {
		s.mu.Lock()
		for _, e := range events {
			if s.ids[e.ID] == 0 {
				s.events = append(s.events, e)
			}
			s.ids[e.ID]++
			v, _ := strconv.Atoi(e.PartitionKey)
			s.vdns[v] = true
		}
		s.mu.Unlock()
		if also != nil {
			also(events)
		}
		select {
		case s.more <- struct{}{}:
		default:
		}
	}
	go func() { s.done <- serve(ctx, cfg, logger, h) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// upstreamOutage is a CC-CMS transport that answers 503 to every request
// while the upstream is down, without passing it on, and otherwise passes
// requests through. It notes when the first request after the upstream's
// recovery was sent that the upstream then answered with 200.
type upstreamOutage struct {
	next http.RoundTripper

	mu        sync.Mutex
	down      bool
	upAt      time.Time // the last recovery
	firstOK   time.Time // send time of the first request after upAt answered 200
	refused   int       // requests answered 503 during the outage
	recovered chan struct{}
}

// newUpstreamOutage passes requests on over TLS trusting the PEM in caFile.
func newUpstreamOutage(t testing.TB, caFile string) *upstreamOutage {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	t.Cleanup(tr.CloseIdleConnections)
	return &upstreamOutage{next: tr, recovered: make(chan struct{})}
}

func (o *upstreamOutage) RoundTrip(req *http.Request) (*http.Response, error) {
	sent := time.Now()
	o.mu.Lock()
	if o.down {
		o.refused++
		o.mu.Unlock()
		if req.Body != nil {
			_ = req.Body.Close()
		}
		body := "<html><body>503 Service Unavailable</body></html>"
		return &http.Response{
			Status: "503 Service Unavailable", StatusCode: http.StatusServiceUnavailable,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:        http.Header{"Content-Type": {"text/html"}},
			Body:          io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), Request: req,
		}, nil
	}
	o.mu.Unlock()
	resp, err := o.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusOK {
		o.mu.Lock()
		if !o.upAt.IsZero() && o.firstOK.IsZero() && !sent.Before(o.upAt) {
			o.firstOK = sent
			close(o.recovered)
		}
		o.mu.Unlock()
	}
	return resp, err
}

// goDown makes the upstream answer 503 from now on.
func (o *upstreamOutage) goDown() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.down = true
}

// comeBack passes requests on again and returns the moment it did.
func (o *upstreamOutage) comeBack() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.down = false
	o.upAt = time.Now()
	return o.upAt
}

// firstSuccess waits until a request sent after the recovery succeeded and
// returns its send time, or fails the test after timeout.
func (o *upstreamOutage) firstSuccess(t testing.TB, timeout time.Duration) time.Time {
	t.Helper()
	select {
	case <-o.recovered:
	case <-time.After(timeout):
		t.Fatalf("no successful CC-CMS request within %v of the upstream's recovery", timeout)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.firstOK
}

func (o *upstreamOutage) refusedCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.refused
}

// tcpProxy forwards TCP connections from its address to a target. cut
// closes its listener and every connection, so dials are refused as if the
// process behind it had died; restore listens on the same address again.
type tcpProxy struct {
	addr string

	mu     sync.Mutex
	target string
	ln     net.Listener // nil while cut
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// startProxy listens on a loopback port below the kernel's ephemeral range,
// so no outgoing connection takes the port while the proxy is cut.
func startProxy(t testing.TB) *tcpProxy {
	t.Helper()
	ln, err := listenLow()
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	t.Cleanup(func() {
		p.cut()
		p.wg.Wait()
	})
	return p
}

// setTarget names where connections go from now on.
func (p *tcpProxy) setTarget(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = addr
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.pipe(c) })
		}
	})
}

// pipe copies between c and a new connection to the target until either
// side closes or the proxy is cut.
func (p *tcpProxy) pipe(c net.Conn) {
	p.mu.Lock()
	target, up := p.target, p.ln != nil
	p.mu.Unlock()
	if !up || target == "" {
		_ = c.Close()
		return
	}
	u, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // cut meanwhile
		p.mu.Unlock()
		_ = c.Close()
		_ = u.Close()
		return
	}
	p.conns[c], p.conns[u] = struct{}{}, struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = io.Copy(u, c); _ = u.Close() })
	_, _ = io.Copy(c, u)
	_ = c.Close()
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	p.mu.Unlock()
}

// cut refuses new connections and breaks every open one.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
}

// restore listens on the proxy's address again.
func (p *tcpProxy) restore() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("proxy: listen on %s again: %w", p.addr, err)
	}
	p.serve(ln)
	return nil
}

// listenLow listens on a random free loopback port between 10000 and the
// first port of the kernel's ephemeral range.
func listenLow() (net.Listener, error) {
	first := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				first = n
			}
		}
	}
	if first <= 11000 {
		return net.Listen("tcp", "127.0.0.1:0") // no room below: take any
	}
	for range 100 {
		var b [4]byte
		_, _ = rand.Read(b[:])
		port := 10000 + int(binary.BigEndian.Uint32(b[:])%uint32(first-10000))
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			return ln, nil
		}
	}
	return nil, errors.New("no free loopback port below the ephemeral range")
}
