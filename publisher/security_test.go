package publisher

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeCA writes a self-signed CA certificate as PEM and returns its path.
func writeCA(t *testing.T) (string, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "callpub test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, cert
}

func TestTLSTrustsTheCAFile(t *testing.T) {
	path, ca := writeCA(t)
	cfg := validConfig()
	cfg.TLS, cfg.CAFile, cfg.TLSServerName = true, path, "kafka.internal"
	p, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tc := p.transport.TLS
	if tc == nil {
		t.Fatal("TLS is on but the transport has no TLS config")
	}
	if tc.MinVersion != tls.VersionTLS12 || tc.InsecureSkipVerify || tc.ServerName != "kafka.internal" {
		t.Errorf("TLS config: min %x, skip verify %v, server name %q", tc.MinVersion, tc.InsecureSkipVerify, tc.ServerName)
	}
	if _, err := ca.Verify(x509.VerifyOptions{Roots: tc.RootCAs}); err != nil {
		t.Errorf("the CA from CALLPUB_KAFKA_CA_FILE is not trusted: %v", err)
	}
}

func TestPlaintextHasNoTLS(t *testing.T) {
	p, err := New(validConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.transport.TLS != nil || p.transport.SASL != nil {
		t.Error("plaintext config got TLS or SASL")
	}
}

func TestSASLMechanismIsTheOneConfigured(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			cfg := validConfig()
			cfg.TLS, cfg.SASLMechanism, cfg.Username, cfg.Password = true, mech, "callpub", testPassword
			p, err := New(cfg, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if p.transport.SASL == nil || p.transport.SASL.Name() != mech {
				t.Errorf("SASL mechanism = %v, want %s", p.transport.SASL, mech)
			}
		})
	}
}
