package publisher

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/callpub/callpub/publisher/kafkatest"
)

const (
	saslUser     = "alice"
	saslPassword = "alice-kafka-secret-7"
)

// secureBroker is an Apache Kafka broker with an SSL and a SASL_SSL listener
// (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 for one user) besides PLAINTEXT,
// whose certificate a private CA signed: what managed Kafka offerings look
// like. It is started once for the tests below.
type secureBroker struct {
	plain, ssl, saslSSL string // addresses
	caFile              string // PEM of the CA that signed the broker's certificate
}

var (
	secureOnce sync.Once
	secure     *secureBroker
	secureErr  error
	secureStop func()
)

func startSecureBroker(t *testing.T) *secureBroker {
	t.Helper()
	secureOnce.Do(func() {
		dir, err := os.MkdirTemp("", "callpub-secure-kafka-")
		if err != nil {
			secureErr = err
			return
		}
		caFile, keystore, err := writeBrokerPKI(dir)
		if err != nil {
			secureErr = err
			return
		}
		jaas := func(module, opts string) string {
			return "org.apache.kafka.common.security." + module + " required" + opts + ";"
		}
		b, err := kafkatest.StartJar(kafkatest.JarOptions{
			JVMOpts:        []string{"-Xms256m", "-Xmx512m"},
			ExtraListeners: map[string]string{"SSL": "SSL", "SASL_SSL": "SASL_SSL"},
			ExtraProps: map[string]string{
				"ssl.keystore.type":                                     "PEM",
				"ssl.keystore.location":                                 keystore,
				"listener.name.sasl_ssl.sasl.enabled.mechanisms":        "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
				"listener.name.sasl_ssl.plain.sasl.jaas.config":         jaas("plain.PlainLoginModule", ` user_`+saslUser+`="`+saslPassword+`"`),
				"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": jaas("scram.ScramLoginModule", ""),
				"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas("scram.ScramLoginModule", ""),
			},
			FormatArgs: []string{
				"--add-scram", "SCRAM-SHA-256=[name=" + saslUser + ",password=" + saslPassword + "]",
				"--add-scram", "SCRAM-SHA-512=[name=" + saslUser + ",password=" + saslPassword + "]",
			},
		})
		if err != nil {
			secureErr = err
			return
		}
		secureStop = func() { b.Stop(); _ = os.RemoveAll(dir) }
		secure = &secureBroker{plain: b.Addrs[0], ssl: b.Listeners["SSL"], saslSSL: b.Listeners["SASL_SSL"], caFile: caFile}
	})
	if secureErr != nil {
		if os.Getenv(kafkatest.EnvMode) == "real" {
			t.Fatalf("a TLS/SASL broker from jars is required (%s=real): %v", kafkatest.EnvMode, secureErr)
		}
		t.Skipf("no TLS/SASL broker from jars (java and the jars are needed; make test has both): %v", secureErr)
	}
	return secure
}

// writeBrokerPKI writes a CA certificate and a PEM keystore (PKCS#8 key and
// the certificate chain) for a broker on 127.0.0.1 and localhost.
func writeBrokerPKI(dir string) (caFile, keystore string, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "callpub test Kafka CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		return "", "", err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	caFile, keystore = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "broker.pem")
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	ks := append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	ks = append(ks, caPEM...)
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		return "", "", err
	}
	return caFile, keystore, os.WriteFile(keystore, ks, 0o600)
}

// Publishing over TLS and over SASL_SSL with each mechanism: the event is
// acknowledged, CheckTopic sees the topic, and a reader built from
// Config.Dialer (what `callpub tail` uses) reads it back over the same
// secured listener.
func TestPublishOverTLSAndSASL(t *testing.T) {
	b := startSecureBroker(t)
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{"TLS with a private CA", func(c *Config) { c.Brokers = []string{b.ssl} }},
		{"SASL_SSL with PLAIN", func(c *Config) { c.Brokers, c.SASLMechanism = []string{b.saslSSL}, "PLAIN" }},
		{"SASL_SSL with SCRAM-SHA-256", func(c *Config) { c.Brokers, c.SASLMechanism = []string{b.saslSSL}, "SCRAM-SHA-256" }},
		{"SASL_SSL with SCRAM-SHA-512", func(c *Config) { c.Brokers, c.SASLMechanism = []string{b.saslSSL}, "SCRAM-SHA-512" }},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topic := kafkatest.Topic(t, []string{b.plain}, 1)
			cfg := Config{Topic: topic, Compression: "lz4", BatchTimeout: 2 * time.Millisecond, WriteTimeout: 10 * time.Second,
				TLS: true, CAFile: b.caFile}
			tc.change(&cfg)
			if cfg.SASLMechanism != "" {
				cfg.Username, cfg.Password = saslUser, Secret(saslPassword)
			}
			p, err := New(cfg, slog.New(slog.DiscardHandler), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			info, err := p.CheckTopic(t.Context())
			if err != nil {
				t.Fatalf("CheckTopic: %v", err)
			}
			if info.Partitions != 1 {
				t.Errorf("CheckTopic saw %d partitions, want 1", info.Partitions)
			}
			want := callEvent(t, 7, i)
			if err := p.Publish(t.Context(), want); err != nil {
				t.Fatalf("Publish: %v", err)
			}

			dialer, err := cfg.Dialer()
			if err != nil {
				t.Fatal(err)
			}
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: topic, Partition: 0, Dialer: dialer, MaxWait: 100 * time.Millisecond})
			defer r.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("read back over %s: %v", cfg.Brokers[0], err)
			}
			if string(m.Key) != "7" || !strings.Contains(string(m.Value), want.ID) {
				t.Errorf("read key %q value %.80q, want key 7 and event %s", m.Key, m.Value, want.ID)
			}
		})
	}
}

// A wrong password or an untrusted certificate fails CheckTopic (which
// `callpub run` and `callpub check` call first) with an error that says what
// is wrong and never holds the password.
func TestSecuredBrokerRefusalsAreClearAndHoldNoSecret(t *testing.T) {
	b := startSecureBroker(t)
	topic := kafkatest.Topic(t, []string{b.plain}, 1)
	otherCA, _ := writeCA(t)
	const wrong = "not-the-password-42"
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"a wrong SCRAM password", func(c *Config) {
			c.Brokers, c.SASLMechanism, c.Username, c.Password = []string{b.saslSSL}, "SCRAM-SHA-512", saslUser, wrong
		}, "SASL Authentication failed"},
		{"a wrong PLAIN password", func(c *Config) {
			c.Brokers, c.SASLMechanism, c.Username, c.Password = []string{b.saslSSL}, "PLAIN", saslUser, wrong
		}, "SASL Authentication failed"},
		{"a certificate from another CA", func(c *Config) { c.Brokers, c.CAFile = []string{b.ssl}, otherCA },
			"certificate signed by unknown authority"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Topic: topic, Compression: "lz4", BatchTimeout: 2 * time.Millisecond, WriteTimeout: 5 * time.Second,
				TLS: true, CAFile: b.caFile}
			tc.change(&cfg)
			p, err := New(cfg, slog.New(slog.DiscardHandler), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			_, err = p.CheckTopic(t.Context())
			if err == nil {
				t.Fatal("CheckTopic succeeded")
			}
			t.Logf("CheckTopic: %v", err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), saslPassword) {
				t.Errorf("error holds a password: %q", err)
			}
			var pe *PublishError
			if err := p.Publish(t.Context(), callEvent(t, 7, 1)); !errors.As(err, &pe) || len(pe.Failed) != 1 {
				t.Errorf("Publish: %v, want a PublishError naming the event", err)
			} else if strings.Contains(err.Error(), wrong) {
				t.Errorf("publish error holds the password: %q", err)
			}
		})
	}
}
