package ccmssim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// ServerOptions says where and how StartServer listens.
type ServerOptions struct {
	Addr string // host:port; default "127.0.0.1:0" (a free port)
	TLS  bool   // HTTPS with a self-signed certificate generated at start
	// CertDir receives ccms-sim-cert.pem, the certificate's PEM (the CA for
	// clients). Default: a new temporary directory, removed by Close.
	CertDir string
	// Hosts are extra DNS names or IPs for the certificate, besides
	// localhost, 127.0.0.1, ::1 and the host of Addr.
	Hosts []string
}

// Server is a Sim on a real listener, like httptest.Server.
type Server struct {
	URL    string // "http://host:port" or "https://host:port", no trailing slash
	CAFile string // PEM of the self-signed certificate when TLS; "" otherwise

	srv      *http.Server
	done     chan struct{} // closed when Serve returned
	serveErr error
	tempDir  string
}

// CertFileName is the name of the certificate file StartServer writes.
const CertFileName = "ccms-sim-cert.pem"

// StartServer listens on o.Addr and serves s in a goroutine until Close or
// Shutdown.
func StartServer(s *Sim, o ServerOptions) (*Server, error) {
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ccmssim: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	out := &Server{srv: srv, done: make(chan struct{})}
	host := urlHost(ln.Addr().(*net.TCPAddr))
	scheme := "http"
	if o.TLS {
		scheme = "https"
		dir := o.CertDir
		if dir == "" {
			if dir, err = os.MkdirTemp("", "ccms-sim-"); err != nil {
				return nil, errors.Join(fmt.Errorf("ccmssim: cert dir: %w", err), ln.Close())
			}
			out.tempDir = dir
		}
		reqHost, _, _ := net.SplitHostPort(addr)
		cert, pemBytes, err := selfSigned(append([]string{reqHost}, o.Hosts...))
		if err != nil {
			return nil, errors.Join(err, ln.Close(), out.removeTemp())
		}
		out.CAFile = filepath.Join(dir, CertFileName)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, errors.Join(fmt.Errorf("ccmssim: certificate folder: %w", err), ln.Close(), out.removeTemp())
		}
		if err := os.WriteFile(out.CAFile, pemBytes, 0o644); err != nil {
			return nil, errors.Join(fmt.Errorf("ccmssim: write certificate: %w", err), ln.Close(), out.removeTemp())
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	out.URL = scheme + "://" + host
	go func() {
		out.serveErr = srv.Serve(ln)
		close(out.done)
	}()
	return out, nil
}

func urlHost(a *net.TCPAddr) string {
	ip := a.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(a.Port))
}

// Shutdown stops accepting, waits for requests in flight until ctx ends,
// and removes a temporary certificate directory.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.finish(s.srv.Shutdown(ctx))
}

// Close stops the server at once, cutting requests in flight.
func (s *Server) Close() error {
	return s.finish(s.srv.Close())
}

// finish waits for Serve to return. Calling Close or Shutdown twice is fine.
func (s *Server) finish(err error) error {
	<-s.done
	if !errors.Is(s.serveErr, http.ErrServerClosed) {
		err = errors.Join(err, s.serveErr)
	}
	return errors.Join(err, s.removeTemp())
}

func (s *Server) removeTemp() error {
	if s.tempDir == "" {
		return nil
	}
	return os.RemoveAll(s.tempDir)
}

// selfSigned makes an ECDSA P-256 certificate, valid for a year, for
// localhost, the loopback addresses and hosts.
func selfSigned(hosts []string) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("ccmssim: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("ccmssim: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "ccms-sim", Organization: []string{"callpub simulator"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so clients can use the file as their CA bundle
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		switch ip := net.ParseIP(h); {
		case h == "" || h == "localhost":
		case ip != nil:
			if !ip.IsUnspecified() {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("ccmssim: create certificate: %w", err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pemBytes, nil
}
