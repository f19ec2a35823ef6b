package publisher

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// tlsConfig is nil without TLS. With TLS it trusts the system roots plus
// CAFile, requires TLS 1.2 or newer, and verifies every broker (there is no
// switch to skip verification).
func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, &ConfigError{Field: "CAFile", Err: errors.New(unwrapPathError(err))}
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, &ConfigError{Field: "CAFile", Err: fmt.Errorf("%s holds no PEM certificate", c.CAFile)}
		}
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    roots,
		ServerName: c.TLSServerName, // "": kafka-go sets each broker's host
	}, nil
}

// saslMechanism is nil without SASL. This is the one place the password is
// revealed.
func (c Config) saslMechanism() (sasl.Mechanism, error) {
	switch c.SASLMechanism {
	case "":
		return nil, nil
	case "PLAIN":
		return plain.Mechanism{Username: c.Username, Password: c.Password.Reveal()}, nil
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		algo := scram.SHA256
		if c.SASLMechanism == "SCRAM-SHA-512" {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, c.Username, c.Password.Reveal())
		if err != nil { // stringprep rejected the username or password; never echo them
			return nil, &ConfigError{Field: "Username", Err: errors.New("username or password is not valid for SCRAM (SASLprep)")}
		}
		return m, nil
	}
	return nil, &ConfigError{Field: "SASLMechanism", Err: fmt.Errorf("%q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", c.SASLMechanism)}
}

// Dialer returns a kafka-go Dialer with the same TLS and SASL settings as the
// publisher, for readers of the topic (`callpub tail`).
func (c Config) Dialer() (*kafka.Dialer, error) {
	tlsCfg, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	mech, err := c.saslMechanism()
	if err != nil {
		return nil, err
	}
	return &kafka.Dialer{Timeout: c.WriteTimeout, DualStack: true, ClientID: clientID, TLS: tlsCfg, SASLMechanism: mech}, nil
}
